# lib.sh - shared helpers for the multicast/unicast tree-push benchmark.
# Source it; it computes its own location and never hard-codes host paths.
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

: "${BENCH_WORK:=/dev/shm/makuo-bench}"   # scratch (tmpfs keeps disk out of the measurement)
: "${NS_PREFIX:=mkb}"                 # netns names: mkb0 (sender) .. mkbN, mkbsw (switch)
: "${BR:=${NS_PREFIX}br0}"            # bridge, in the switch netns (no IP address on it)
: "${SUBNET:=10.78.0}"                # /24 used only inside our namespaces
RUN="$BENCH_WORK/run"                 # pids, logs, cluster state

log()  { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die()  { log "ERROR: $*"; exit 1; }

ns_name()  { echo "${NS_PREFIX}$1"; }
node_ip()  { echo "${SUBNET}.$(( $1 + 1 ))"; }      # node0 = .1, node i = .(i+1)
node_dir() { echo "$BENCH_WORK/nodes/$1"; }         # base dir of node i
node_uid() { printf '0x%08x\n' $(( $1 + 1 )); }        # numeric id (used by uftp -U/-H)

# nsx I CMD...   run CMD in node I's *network* namespace only (same mount ns,
# so every node sees the same filesystem).  Foreground.
nsx() { local i=$1; shift; nsenter --net="/run/netns/$(ns_name "$i")" "$@"; }

# nsbg I LOGFILE CMD...   start CMD in background inside node I; sets LAST_PID and
# records "pid comm" in $RUN/pids so kill_ours can stop exactly what we started.
nsbg() {
  local i=$1 logf=$2; shift 2
  mkdir -p "$RUN"
  nsenter --net="/run/netns/$(ns_name "$i")" "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  echo "$LAST_PID $(basename "$1")" >> "$RUN/pids"
}

# kill_ours: stop every process recorded by nsbg (checks comm to avoid pid reuse).
kill_ours() {
  [ -f "$RUN/pids" ] || return 0
  local pid comm live=()
  while read -r pid comm; do
    [ -r "/proc/$pid/comm" ] || continue
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${comm:0:15}" ] || continue
    kill "$pid" 2>/dev/null && live+=("$pid")
  done < "$RUN/pids"
  for _ in $(seq 100); do  # up to 2 s
    local any=0; for pid in "${live[@]}"; do [ -d "/proc/$pid" ] && any=1; done
    [ $any = 0 ] && break; sleep 0.02
  done
  for pid in "${live[@]}"; do [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null; done
  rm -f "$RUN/pids"
}

# CPU time of everything one tool run starts, measured with a cgroup of its own: cgroup v2's
# cpu.stat, or v1's cpuacct. cg_enter NAME moves this shell (and its future children) in;
# cg_cpu_us prints the group's CPU microseconds so far ("" without cgroups); cg_leave removes it.
CG_DIR=
cg_enter() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CG_DIR=/sys/fs/cgroup/$1; mkdir -p "$CG_DIR" && echo $$ > "$CG_DIR/cgroup.procs" || CG_DIR=
  elif [ -d /sys/fs/cgroup/cpuacct ]; then
    CG_DIR=/sys/fs/cgroup/cpuacct/$1; mkdir -p "$CG_DIR" && echo $$ > "$CG_DIR/tasks" || CG_DIR=
  fi
}
cg_cpu_us() {
  [ -n "$CG_DIR" ] || return 0
  if [ -f "$CG_DIR/cpu.stat" ]; then awk '/^usage_usec/{print $2}' "$CG_DIR/cpu.stat"
  else echo $(( $(cat "$CG_DIR/cpuacct.usage") / 1000 )); fi
}
cg_leave() {
  [ -n "$CG_DIR" ] || return 0
  if [ -f "$CG_DIR/cgroup.procs" ]; then echo $$ > "${CG_DIR%/*}/cgroup.procs"
  else echo $$ > "${CG_DIR%/*}/tasks"; fi
  rmdir "$CG_DIR" 2>/dev/null || true
  CG_DIR=
}

cluster_n() { [ -f "$RUN/cluster.env" ] && . "$RUN/cluster.env" && echo "$C_N"; }

# tree_sums DIR -> "sha256  ./path" listing, sorted, for byte-level comparison
tree_sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum); }
# tree_sizes DIR -> cheap "size path" listing (used for polling convergence)
tree_sizes() { (cd "$1" && find . -type f -printf '%s %p\n' | LC_ALL=C sort); }

# verify_all N REF_SUMS_FILE -> 0 if every receiver 1..N matches the reference listing
verify_all() {
  local n=$1 ref=$2 i ok=0
  for i in $(seq 1 "$n"); do
    if ! tree_sums "$(node_dir "$i")" | cmp -s - "$ref"; then
      log "verify: node $i differs"; ok=1
    fi
  done
  return $ok
}

# wait_converged N TIMEOUT_S : poll until every receiver's size listing equals node0's,
# then confirm with checksums.  For plugins whose push returns before data lands.
wait_converged() {
  local n=$1 t_end=$(( $(date +%s) + $2 )) i ref
  ref=$(tree_sizes "$(node_dir 0)")
  while [ "$(date +%s)" -lt "$t_end" ]; do
    local all=1
    for i in $(seq 1 "$n"); do
      [ "$(tree_sizes "$(node_dir "$i")")" = "$ref" ] || { all=0; break; }
    done
    if [ $all = 1 ]; then
      tree_sums "$(node_dir 0)" > "$RUN/converge.ref"
      verify_all "$n" "$RUN/converge.ref" && return 0
    fi
    sleep "${POLL_S:-0.2}"
  done
  return 1
}
