# cluster.sh - a makuo test cluster: N network namespaces on one bridge, one makuosan each.
# Source it; then: cluster_up N, node_msync I ARGS..., node_stop I, node_kill I, node_start I,
# node_loss I PCT, node_rate I MBIT, cluster_down. Everything is torn down by cluster_down,
# which callers register with `trap cluster_down EXIT`. The bridge and the bridge-side veth ends
# live in a switch namespace of their own (switch.sh; swx runs a command there).
# Env: MK_PREFIX (netns prefix, default mk$$), MK_WORK (scratch dir), MK_SUBNET (10.213.x),
#      MAKUO_BIN (dir holding makuosan and msync), MK_GROUP (multicast group), MK_DAEMON_ARGS,
#      MK_DAEMON_WRAP (a command the daemon runs under, e.g. "faketime -f -1h"),
#      MK_START_TIMEOUT (seconds a daemon may take to answer its console, default 10).
# Daemons are keyed with the cluster's own key ($MK_WORK/cluster.key, made by cluster_net)
# unless MK_DAEMON_ARGS gives a -k or says --insecure.
: "${MK_PREFIX:=mk$$}"
: "${MK_WORK:=$(mktemp -d /tmp/makuo-cluster.XXXXXX)}"
: "${MK_SUBNET:=10.213.$(( $$ % 200 + 20 ))}"
: "${MK_GROUP:=239.255.10.$(( $$ % 200 + 20 ))}"
: "${MAKUO_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build" 2>/dev/null && pwd)}"
. "$(dirname "${BASH_SOURCE[0]}")/switch.sh"
MK_BR="${MK_PREFIX}br"
MK_SW="${MK_PREFIX}sw"
MK_N=0

mk_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
node_ns() { echo "${MK_PREFIX}n$1"; }
node_ip() { echo "${MK_SUBNET}.$(( $1 + 1 ))"; }
node_base() { echo "$MK_WORK/nodes/$1/base"; }
node_sock() { echo "$MK_WORK/nodes/$1/console.sock"; }
node_logf() { echo "$MK_WORK/nodes/$1/makuosan.log"; }
node_name() { echo "node$1"; }
# Run a command in node I's network namespace only: the mount namespace stays shared.
nsx() { local i=$1; shift; nsenter --net="/run/netns/$(node_ns "$i")" "$@"; }
# Run a command in the switch's namespace, where node I's link ends in "${MK_PREFIX}vI".
swx() { nsenter --net="/run/netns/$MK_SW" "$@"; }
node_msync() { local i=$1; shift; "$MAKUO_BIN/msync" -c "unix:$(node_sock "$i")" "$@"; }

node_key_args() {  # the -k a node starts with, unless MK_DAEMON_ARGS has its own or none
  case " ${MK_DAEMON_ARGS:-} " in
    *" -k "*|*" --insecure "*) ;;
    *) echo "-k $MK_WORK/cluster.key" ;;
  esac
}

node_start() {
  local i=$1
  mkdir -p "$(node_base "$i")" "$MK_WORK/nodes/$i/state"
  [ -f "$MK_WORK/cluster.key" ] || (umask 077 && head -c 32 /dev/urandom > "$MK_WORK/cluster.key")
  # shellcheck disable=SC2086
  # nsenter execs the daemon, so $! is the daemon itself (node_signal checks its name)
  nsenter --net="/run/netns/$(node_ns "$i")" ${MK_DAEMON_WRAP:-} "$MAKUO_BIN/makuosan" -n -b "$(node_base "$i")" -U "$(node_sock "$i")" \
    -m "$MK_GROUP" --name "$(node_name "$i")" --state-dir "$MK_WORK/nodes/$i/state" \
    $(node_key_args) ${MK_DAEMON_ARGS:-} >>"$(node_logf "$i")" 2>&1 &
  echo $! > "$MK_WORK/nodes/$i/pid"
  local t=$((SECONDS + ${MK_START_TIMEOUT:-10}))
  until [ -S "$(node_sock "$i")" ] && node_msync "$i" --status >/dev/null 2>&1; do
    if [ $SECONDS -ge $t ]; then mk_log "node $i did not start"; cat "$(node_logf "$i")" >&2; return 1; fi
    kill -0 "$(cat "$MK_WORK/nodes/$i/pid")" 2>/dev/null || { mk_log "node $i died"; cat "$(node_logf "$i")" >&2; return 1; }
    sleep 0.05
  done
}

node_pid() { cat "$MK_WORK/nodes/$1/pid" 2>/dev/null || true; }

# makuofs runs in the root mount namespace (it needs no network), so every shell sees the mount.
node_mnt() { echo "$MK_WORK/nodes/$1/mnt"; }
node_fs_pid() { cat "$MK_WORK/nodes/$1/fs.pid" 2>/dev/null || true; }
is_mounted() { awk -v m="$1" '$2 == m {f=1} END {exit !f}' /proc/self/mounts; }
node_mount() {  # node_mount I [OPTS]: node I's base mounted with makuofs at node_mnt I
  local i=$1 mp t
  mp=$(node_mnt "$i")
  mkdir -p "$mp" "$(node_base "$i")" "$MK_WORK/nodes/$i/state"
  "$MAKUO_BIN/makuofs" -f "$(node_base "$i")" "$mp" \
    -o "state_dir=$MK_WORK/nodes/$i/state${2:+,$2}" >>"$MK_WORK/nodes/$i/makuofs.log" 2>&1 &
  echo $! > "$MK_WORK/nodes/$i/fs.pid"
  t=$((SECONDS + 10))
  until is_mounted "$mp"; do
    kill -0 "$(node_fs_pid "$i")" 2>/dev/null || { mk_log "makuofs $i died"; cat "$MK_WORK/nodes/$i/makuofs.log" >&2; return 1; }
    [ $SECONDS -lt $t ] || { mk_log "makuofs $i did not mount"; return 1; }
    sleep 0.05
  done
}
node_umount() {  # unmounts (also a mount whose makuofs was killed) and reaps our makuofs
  local i=$1 mp pid t
  mp=$(node_mnt "$i")
  pid=$(node_fs_pid "$i")
  if is_mounted "$mp"; then fusermount3 -u "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true; fi
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = makuofs ]; then
    t=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $t ]; do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$MK_WORK/nodes/$i/fs.pid"
}
node_fs_kill() {  # SIGKILL to node I's makuofs (the mount stays, disconnected, until node_umount)
  local pid
  pid=$(node_fs_pid "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = makuofs ] && kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
}

# Stops only the daemon we started (pid checked against its command name).
node_signal() {
  local i=$1 sig=$2 pid
  pid=$(node_pid "$i") || return 0
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = makuosan ] || return 0
  kill "-$sig" "$pid" 2>/dev/null
  local t=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $t ]; do sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$MK_WORK/nodes/$i/pid"
}
node_stop() { node_signal "$1" TERM; }
node_kill() { node_signal "$1" KILL; }

node_loss() {  # node_loss I PCT: drop PCT% of packets arriving at node I (nftables, random)
  local i=$1 pct=$2 thr
  thr=$(awk "BEGIN{print int($pct*100+0.5)}")
  nsx "$i" nft delete table netdev mkloss 2>/dev/null || true
  [ "$thr" -gt 0 ] || return 0
  nsx "$i" nft -f - <<NFT
table netdev mkloss {
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    meta protocol ip numgen random mod 10000 < $thr counter drop
  }
}
NFT
}

node_rate() {  # node_rate I MBIT: tbf on both ends of node I's link
  local i=$1 r=$2
  swx tc qdisc replace dev "${MK_PREFIX}v$i" root tbf rate "${r}mbit" burst 32kb latency 20ms
  nsx "$i" tc qdisc replace dev eth0 root tbf rate "${r}mbit" burst 32kb latency 20ms
}

node_link() {  # node_link I up|down
  swx ip link set "${MK_PREFIX}v$1" "$2"
}

cluster_up() {  # cluster_up N: namespaces, bridge, daemons
  cluster_net "$1" || return 1
  local i
  for i in $(seq 1 "$1"); do node_start "$i" || return 1; done
  wait_members "$1" && wait_catchup "$1"
}

# wait_catchup N: polls until no node of 1..N has a catch-up pending or running (the one every
# node does when it starts), so that tests begin from a quiet cluster. Deadline 20 s.
wait_catchup() {
  local i t=$((SECONDS + 20))
  for i in $(seq 1 "$1"); do
    [ -f "$MK_WORK/nodes/$i/pid" ] || continue
    until node_msync "$i" --status 2>/dev/null | grep -q '^catch-up  : idle'; do
      [ $SECONDS -lt $t ] || { mk_log "node $i: catch-up did not finish"; return 1; }
      sleep 0.1
    done
  done
}

# cluster_quiet N: polls until, on two rounds in a row, no running node of 1..N sends or
# receives a push, has a recorded change waiting or a catch-up under way, and no node started a
# push in between: the cluster stopped sending (no echo, no ping-pong). Deadline 30 s.
cluster_quiet() {
  local i t=$((SECONDS + 30)) st sig prev="" calm
  while [ $SECONDS -lt $t ]; do
    sig="" calm=1
    for i in $(seq 1 "$1"); do
      [ -f "$MK_WORK/nodes/$i/pid" ] || continue
      st=$(node_msync "$i" --status 2>/dev/null) || { calm=0; break; }
      grep -q '^send op : 0$' <<<"$st" && grep -q '^recv op : 0$' <<<"$st" &&
        grep -q '^journal   : backlog 0 bytes, 0 path(s) waiting$' <<<"$st" &&
        grep -q '^catch-up  : idle' <<<"$st" || { calm=0; break; }
      sig+="$(grep '^sessions:' <<<"$st");"
    done
    if [ $calm = 1 ] && [ "$sig" = "$prev" ]; then return 0; fi
    [ $calm = 1 ] && prev=$sig || prev=""
    sleep 0.2
  done
  mk_log "the cluster did not go quiet"
  return 1
}

cluster_net() {  # cluster_net N: namespaces and bridge only (start daemons with node_start)
  local n=$1 i ns
  MK_N=$n
  mkdir -p "$MK_WORK"
  echo "$MK_PREFIX" > "$MK_WORK/prefix"
  switch_up "$MK_SW" "$MK_BR" || return 1
  for i in $(seq 1 "$n"); do net_add_node "$i"; done
}

net_add_node() {  # net_add_node I: node I's namespace, wired into the bridge
  local i=$1 ns
  ns=$(node_ns "$i")
  ip netns add "$ns"
  swx ip link add "${MK_PREFIX}v$i" type veth peer name "${MK_PREFIX}p$i" netns "$ns"
  nsx "$i" ip link set "${MK_PREFIX}p$i" name eth0
  nsx "$i" ip link set lo up
  nsx "$i" ip addr add "$(node_ip "$i")/24" dev eth0
  nsx "$i" ip link set eth0 up
  nsx "$i" ip route add 224.0.0.0/4 dev eth0
  swx ip link set "${MK_PREFIX}v$i" master "$MK_BR" up
  swx ethtool -K "${MK_PREFIX}v$i" tso off gso off gro off >/dev/null 2>&1 || true
  nsx "$i" ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true
}

cluster_add_node() {  # cluster_add_node I: a new node joins the running cluster
  net_add_node "$1" && node_start "$1"
}

# wait_members N [WANT]: polls until each of nodes 1..N sees WANT members (default: every
# other running node), deadline 15 s.
wait_members() {
  local n=$1 i t=$((SECONDS + 15))
  for i in $(seq 1 "$n"); do
    [ -f "$MK_WORK/nodes/$i/pid" ] || continue
    local want=${2:-$(( $(ls "$MK_WORK"/nodes/*/pid 2>/dev/null | wc -l) - 1 ))}
    until node_msync "$i" --members 2>/dev/null | grep -q "^Total: $want members"; do
      [ $SECONDS -lt $t ] || { mk_log "node $i: members did not converge"; node_msync "$i" --members >&2; return 1; }
      sleep 0.1
    done
  done
}

cluster_down() {
  local i d
  for d in "$MK_WORK"/nodes/*/; do
    [ -d "$d" ] || continue
    i=$(basename "$d")
    node_umount "$i"
    node_stop "$i"
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${MK_PREFIX}n[0-9]+$"); do
    ip netns del "$ns" 2>/dev/null || true
  done
  # The bridge and the switch-side veth ends go with their namespace.
  [ -e "/run/netns/$MK_SW" ] && ip netns del "$MK_SW"
  # Never delete through a mount that is still there.
  if [ -z "${MK_KEEP:-}" ] && ! grep -q " $MK_WORK/" /proc/self/mounts; then rm -rf "$MK_WORK"; fi
}

# tree_sig DIR [--no-owner]: type, mode, owner, size, mtime (ns), link target and content
# hash of everything below DIR, one line each, sorted: equal output = identical trees.
tree_sig() { python3 "$(dirname "${BASH_SOURCE[0]}")/treesig.py" "$@"; }
