#!/usr/bin/env bash
# The tree index at scale: one node (in a network namespace of its own) whose base directory
# holds PATHS paths (default 1,000,000: 1,000 directories of 999 empty files). Prints, for the
# first start (a fresh index: no versions yet) and for a start after every file changed while
# the daemon was down (each path then carries a version): the start-up rescan's time, the index
# file's bytes per path, and the daemon's resident memory (VmRSS, VmHWM) once it is idle.
# MAKUO_BIN picks the build (default build/), so that two releases can be compared.
# Usage (root): bench/index_memory.sh [--paths N]
set -euo pipefail
cd "$(dirname "$0")/.."
paths=1000000
while [ $# -gt 0 ]; do
  case $1 in
    --paths) paths=$2; shift ;;
    *) echo "usage: $0 [--paths N]" >&2; exit 1 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces)" >&2; exit 1; }
export MAKUO_BIN=${MAKUO_BIN:-$PWD/build} MK_START_TIMEOUT=600
. scripts/lib/cluster.sh
. scripts/lib/testlib.sh
trap cluster_down EXIT
cluster_net 1 >/dev/null 2>&1 || { echo "namespace setup failed" >&2; exit 1; }
b=$(node_base 1)
mkdir -p "$b"
/usr/bin/python3 - "$b" "$paths" <<'PY'
import os, sys
base, n = sys.argv[1], int(sys.argv[2])
per = 1000
for i in range(n):
    d = os.path.join(base, "d%04d" % (i // per))
    if i % per == 0:
        os.mkdir(d)
    else:
        open(os.path.join(d, "f%06d.html" % i), "w").close()
PY
measure() {  # measure LABEL: starts the daemon, waits until it is idle, prints its figures
  local t0 t1 pid idx
  t0=$EPOCHREALTIME
  node_start 1 >/dev/null 2>&1 || { echo "daemon did not start" >&2; cat "$(node_logf 1)" >&2; exit 1; }
  t1=$EPOCHREALTIME
  wait_catchup 1 >/dev/null 2>&1 || true
  pid=$(node_pid 1)
  idx=$(stat -c %s "$MK_WORK/nodes/1/state/index")
  printf '%-44s start %6.1f s  index %6.1f bytes/path  VmRSS %6.0f MiB  VmHWM %6.0f MiB\n' "$1" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$(awk -v a="$idx" -v n="$paths" 'BEGIN{print a/n}')" \
    "$(awk '/VmRSS/ {print $2/1024}' "/proc/$pid/status")" "$(awk '/VmHWM/ {print $2/1024}' "/proc/$pid/status")"
  grep -h 'tree index:' "$(node_logf 1)" | tail -1 | sed 's/^/    /'
  node_stop 1
}
echo "$paths paths, $MAKUO_BIN/makuosan ($("$MAKUO_BIN/makuosan" -V 2>&1 | head -1))"
measure "first start (fresh index)"
# Every file changed while the daemon was down: the rescan gives each a version of this node.
/usr/bin/python3 - "$b" <<'PY'
import os, sys
for root, dirs, files in os.walk(sys.argv[1]):
    for f in files:
        os.utime(os.path.join(root, f), ns=(1, 1_700_000_000_000_000_000))
PY
measure "after every path changed (each versioned)"
measure "restart, nothing changed"
