#!/usr/bin/env bash
# Catch-up cost: two nodes hold the same FILES-file tree (default 100,000 files of 200 bytes in
# 100 directories); node 2 is stopped, CHANGES files (default 1,000: half modified, a quarter
# created, a quarter deleted) change on node 1, node 2 is started again. Prints the time until
# node 2's tree is node 1's and the bytes node 2 received, next to what the first full push of
# the tree cost. --dirs N confines the changes to N of the 100 directories (default: all).
# Usage (root): bench/catchup_bench.sh [--files N] [--changes N] [--dirs N]
set -euo pipefail
cd "$(dirname "$0")/.."
files=100000 changes=1000 dirs=100
while [ $# -gt 0 ]; do
  case $1 in
    --files) files=$2; shift ;;
    --changes) changes=$2; shift ;;
    --dirs) dirs=$2; shift ;;
    *) echo "usage: $0 [--files N] [--changes N] [--dirs N]" >&2; exit 1 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces)" >&2; exit 1; }
export MAKUO_BIN=${MAKUO_BIN:-$PWD/build}
. scripts/lib/cluster.sh
. scripts/lib/testlib.sh
trap cluster_down EXIT
cluster_up 2 >/dev/null 2>&1 || { echo "cluster did not start" >&2; exit 1; }
b1=$(node_base 1) b2=$(node_base 2)
rx() { node_msync 2 --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["rx_bytes"])'; }
now() { date +%s.%N; }
python3 - "$b1" "$files" <<'PY'
import os, sys
base, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 100)
for i in range(n):
    d = os.path.join(base, "d%03d" % (i // per))
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "w") as f:
        f.write(("%d " % i) * 40)
PY
r0=$(rx); t0=$(now)
node_msync 1 -r >/dev/null
full_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'); full_b=$(( $(rx) - r0 ))
wait_for 120 quiet_same_tree "$b1" "$b2" || { echo "initial push incomplete" >&2; exit 1; }
# The changes are made through node 1's makuofs mount, which records them (deletions too).
node_mount 1 || exit 1
node_stop 2
python3 - "$(node_mnt 1)" "$files" "$changes" "$dirs" <<'PY'
import os, random, sys
base, n, c, nd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per = max(1, n // 100)
rnd = random.Random(1)
picked = rnd.sample(range(min(n, nd * per)), c // 2 + c // 4)
for i in picked[: c // 2]:
    with open(os.path.join(base, "d%03d" % (i // per), "f%06d" % i), "a") as f:
        f.write("changed\n")
for i in picked[c // 2:]:
    os.unlink(os.path.join(base, "d%03d" % (i // per), "f%06d" % i))
for i in range(c // 4):
    with open(os.path.join(base, "d%03d" % (i % nd), "new%06d" % i), "w") as f:
        f.write("new %d\n" % i)
PY
# node 1 has read its inotify records (and pushed them to nobody) before node 2 is back
until node_msync 1 --status | grep -q '^journal   : backlog 0 bytes, 0 path'; do sleep 0.1; done
t1=$(now); log1=$(( $(wc -l < "$(node_logf 1)") + 1 ))
node_start 2 >/dev/null 2>&1
r1=$(rx)
# Comparing two 100,000-file trees takes seconds: the time is read off node 1's log (the catch-up
# towards node 2 ends once node 2 committed everything), and the trees are compared after.
done_line() { tail -n +"$log1" "$(node_logf 1)" | grep -E 'catch-up \(.*to node2\) done' | tail -1; }
wait_for 300 done_line || { echo "no catch-up of node 2 by node 1" >&2; exit 1; }
t2=$(date -d "$(done_line | cut -c1-23)" +%s.%N)
wait_for 60 quiet_same_tree "$b1" "$b2" --no-dir-mtime || { echo "not identical after the catch-up" >&2; same_tree "$b1" "$b2" --no-dir-mtime; exit 1; }
cu_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}'); cu_b=$(( $(rx) - r1 ))
echo "node 2 restarted at $(date -d "@$t1" +%T.%3N); what the logs say:"
grep -hE 'tree index|catch-up' "$(node_logf 2)" | tail -4 | sed 's/^/  node 2: /'
grep -hE 'catch-up' "$(node_logf 1)" | tail -2 | sed 's/^/  node 1: /'
echo "tree: $files files; first full push: ${full_s} s, ${full_b} bytes received by node 2"
echo "catch-up after $changes changes in $dirs of 100 directories while node 2 was down: ${cu_s} s from its start to identical (then verified), ${cu_b} bytes received ($(awk -v a="$cu_b" -v b="$full_b" 'BEGIN{printf "%.1f", 100*a/b}') % of the full push)"
