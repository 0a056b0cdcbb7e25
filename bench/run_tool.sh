#!/usr/bin/env bash
# run_tool.sh TOOL N : setup (untimed), push (timed), teardown.  Prints "RESULT <seconds> <rc>" and "CPU <host busy % during push>".
# bench.sh runs this under `timeout`, which kills the whole process group on expiry.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
tool=$1 n=$2
. "$RUN/cluster.env"
. "$BENCH_DIR/tools/$tool.sh"
trap 'kill_ours' EXIT
tool_setup "$n"
echo "DESC $TOOL_DESC"
cpu_stat() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6}' /proc/stat; }
read -r c0 i0 < <(cpu_stat)
t0=$(now); tool_push "$n"; rc=$?; t1=$(now)
read -r c1 i1 < <(cpu_stat)
echo "CPU $(( c1 > c0 ? 100 * ((c1 - c0) - (i1 - i0)) / (c1 - c0) : 0 ))"
tool_teardown "$n"   # may print "RSS <peak KiB of our daemons>"
echo "RESULT $(python3 -c "print(f'{$t1-$t0:.3f}')") $rc"
