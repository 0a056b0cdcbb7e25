# makuo - makuosan in every node (node0 included), one `msync -r` on node0 (timed); msync
# returns when every receiver has verified, fsynced and renamed every file. Keyed, as makuosan
# runs by default (every datagram sealed with AES-256-GCM); tools/makuo_keyless.sh is the same
# with --insecure, to measure what the keys cost.
: "${MAKUO_BIN:=$(cd "$BENCH_DIR/../build" && pwd)}"
# --no-catch-up: the daemons would otherwise push node0's tree by themselves as they meet,
# before the timed msync.
: "${MAKUO_ARGS:=--no-catch-up}"
MAKUO_GROUP=239.77.4.1
: "${MAKUO_KEY_ARGS:=-k \$RUN/makuo.key}"
TOOL_DESC="makuosan -n -b node_i -m $MAKUO_GROUP -p 5400 $MAKUO_KEY_ARGS $MAKUO_ARGS ; node0: msync -r"

makuo_sock() { echo "$RUN/makuo.$1.sock"; }

tool_setup() {
  local n=$1 i
  rm -f "$RUN/makuo.key"
  "$MAKUO_BIN/makuosan" --gen-key "$RUN/makuo.key" >/dev/null || return 1
  local keyargs=${MAKUO_KEY_ARGS//\$RUN/$RUN}
  for i in $(seq 0 "$n"); do
    rm -f "$(makuo_sock "$i")"
    # shellcheck disable=SC2086
    # State (journal, tree index) in the scratch area, fresh for every run.
    rm -rf "$RUN/makuo-state.$i"
    nsbg "$i" "$RUN/makuo.$i.log" "$MAKUO_BIN/makuosan" -n -b "$(node_dir "$i")" -U "$(makuo_sock "$i")" \
      -m "$MAKUO_GROUP" -p 5400 --name "node$i" --state-dir "$RUN/makuo-state.$i" $keyargs $MAKUO_ARGS
  done
  # Every node knows every other (keyed: each proved live to each), so the timed push does not
  # wait for membership.
  local t=$((SECONDS + 15))
  for i in $(seq 0 "$n"); do
    until "$MAKUO_BIN/msync" -c "unix:$(makuo_sock "$i")" --members 2>/dev/null | grep -q "^Total: $n members"; do
      [ $SECONDS -lt $t ] || { log "makuo: members did not converge"; return 1; }
      sleep 0.1
    done
  done
}

tool_push() { "$MAKUO_BIN/msync" -c "unix:$(makuo_sock 0)" -r; }

tool_teardown() {
  local max=0 pid kb
  for pid in $(awk '$2=="makuosan"{print $1}' "$RUN/pids" 2>/dev/null); do
    kb=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$max" ] && max=$kb
  done
  echo "RSS $max"
  kill_ours
  rm -rf "$RUN"/makuo-state.*
}
