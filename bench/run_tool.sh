#!/usr/bin/env bash
# run_tool.sh TOOL N : setup (untimed), push (timed), teardown.  Prints "RESULT <seconds> <rc>",
# "CPU <host busy % during push>" and "CPUSEC <CPU seconds of every process of the run during
# the push>" (a cgroup of its own; absent without cgroups).
# bench.sh runs this under `timeout`, which kills the whole process group on expiry.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
tool=$1 n=$2
. "$RUN/cluster.env"
. "$BENCH_DIR/tools/$tool.sh"
trap 'kill_ours; cg_leave' EXIT
cg_enter "mcbench-$$"
tool_setup "$n"
echo "DESC $TOOL_DESC"
cpu_stat() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, $5+$6}' /proc/stat; }
read -r c0 i0 < <(cpu_stat)
g0=$(cg_cpu_us)
# The clock is read by bash itself: t0=$(date ...) forked twice per reading and added 5-7 ms
# to every timed push on our 2-vCPU VM.
t0=${EPOCHREALTIME/,/.}; tool_push "$n"; rc=$?; t1=${EPOCHREALTIME/,/.}
g1=$(cg_cpu_us)
read -r c1 i1 < <(cpu_stat)
[ -n "$g0" ] && [ -n "$g1" ] && echo "CPUSEC $(awk "BEGIN{printf \"%.3f\", ($g1-$g0)/1e6}")"
echo "CPU $(( c1 > c0 ? 100 * ((c1 - c0) - (i1 - i0)) / (c1 - c0) : 0 ))"
tool_teardown "$n"   # may print "RSS <peak KiB of our daemons>"
echo "RESULT $(awk "BEGIN{printf \"%.3f\", $t1-$t0}") $rc"
