#!/usr/bin/env bash
# bench.sh - run the scenario matrix and append one CSV row per (tool, workload, N, loss, rep).
# Env (defaults in brackets):
#   TOOLS ["makuo rsync_seq rsync_par uftp udpcast"]  names of tools/<name>.sh plugins
#   WORKLOADS ["big mixed small"]  NS ["1 2 4 8"]  LOSSES ["0 2"]  RATES ["$RATE"] RATE [200]
#   (Mbit/s per link; 0 = unlimited)
#   REPS [1]  PUSH_TIMEOUT [300] s  IPERF [1] (iperf3 TCP reference node0->node1 per loss)
#   QUICK [0]  1 = small trees (whole matrix in a few minutes); explicit size vars still win
#   OUT [results/anchors.csv relative to this dir]
set -uo pipefail
. "$(dirname "$0")/lib.sh"

: "${TOOLS:=makuo rsync_seq rsync_par uftp udpcast}" "${WORKLOADS:=big mixed small}"
: "${NS:=1 2 4 8}" "${LOSSES:=0 2}" "${RATE:=200}" "${REPS:=1}" "${PUSH_TIMEOUT:=300}"
: "${IPERF:=1}" "${QUICK:=0}" "${OUT:=$BENCH_DIR/results/results.csv}" "${RATES:=$RATE}"
if [ "$QUICK" = 1 ]; then
  export BIG_MIB=${BIG_MIB:-32} MIXED_FILES=${MIXED_FILES:-200} MIXED_MIB=${MIXED_MIB:-8}
  export SMALL_FILES=${SMALL_FILES:-1000} SMALL_DIRS=${SMALL_DIRS:-10}
fi
mkdir -p "$(dirname "$OUT")" "$BENCH_WORK/trees"
HDR="ts,tool,workload,bytes,files,n,rate_mbit,sender_rate_mbit,loss_pct,rep,seconds,goodput_mibs,pct_link,verified,rc,cpu_pct,desc,peak_rss_kib,cpu_s"
[ -s "$OUT" ] || echo "$HDR" > "$OUT"

row() { echo "$(date +%FT%T),$*" >> "$OUT"; }
# fmt DECIMALS EXPR: awk arithmetic. Not python3 -c: behind a pyenv shim one call took 0.4 s,
# four per push, about 5 minutes of a full run.
fmt() { awk "BEGIN{printf \"%.$1f\\n\", $2}"; }

load_workload() {  # generate (cached) tree, mirror it into node0, write reference checksums
  local wl=$1 tree="$BENCH_WORK/trees/$1"
  "$BENCH_DIR/gen_tree.py" "$wl" "$tree"
  rsync -a --delete "$tree/" "$(node_dir 0)/"
  tree_sums "$(node_dir 0)" > "$RUN/ref.$wl.sums"
  WL_BYTES=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END{printf "%.0f\n", s}')
  WL_FILES=$(wc -l < "$RUN/ref.$wl.sums")
}

clean_receivers() { local i; for i in $(seq 1 "$1"); do rm -rf "$(node_dir "$i")"; mkdir -p "$(node_dir "$i")"; done; }

iperf_ref() {  # iperf3 TCP node0 -> node1, 5 s
  local loss=$1 srv bps
  nsbg 1 "$RUN/iperf3-s.log" iperf3 -s -1 -B "$(node_ip 1)"; srv=$LAST_PID; sleep 0.5
  bps=$(nsx 0 iperf3 -c "$(node_ip 1)" -t 5 -J 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])' 2>/dev/null || echo 0)
  wait "$srv" 2>/dev/null
  log "iperf3 TCP loss=$loss%: $(fmt 1 "$bps/1e6") Mbit/s"
  row "iperf3_tcp,-,$(fmt 0 "$bps*5/8"),0,1,$RATE,${SENDER_RATE:-$RATE},$loss,1,5.000,$(fmt 2 "$bps/8/1048576"),$(fmt 1 "$bps/($RATE*1e6)*100"),n/a,0,,iperf3 -c node1 -t 5 (TCP)"
}

trap '"$BENCH_DIR/cluster.sh" down' EXIT
for RATE in $RATES; do
for loss in $LOSSES; do
  first_n=1
  for n in $NS; do
    "$BENCH_DIR/cluster.sh" up "$n" "$RATE" "$loss" || die "cluster up failed"
    [ "$IPERF" = 1 ] && [ $first_n = 1 ] && iperf_ref "$loss"; first_n=0
    for wl in $WORKLOADS; do
      load_workload "$wl"
      for tool in $TOOLS; do
        for rep in $(seq 1 "$REPS"); do
          clean_receivers "$n"
          out=$(timeout -k 5 "$PUSH_TIMEOUT" "$BENCH_DIR/run_tool.sh" "$tool" "$n" 2>"$RUN/$tool.stderr")
          rc=$?; kill_ours
          secs=$(echo "$out" | awk '/^RESULT/{print $2}'); [ -n "$secs" ] || secs=$PUSH_TIMEOUT
          [ "$rc" = 0 ] && rc=$(echo "$out" | awk '/^RESULT/{print $3}')
          cpu=$(echo "$out" | awk '$1=="CPU"{print $2}')
          rss=$(echo "$out" | awk '/^RSS/{print $2}')
          cpus=$(echo "$out" | awk '/^CPUSEC/{print $2}')
          desc=$(echo "$out" | sed -n 's/^DESC //p' | tr ',' ';')
          if verify_all "$n" "$RUN/ref.$wl.sums"; then ver=yes; else ver=no; fi
          gp=$(fmt 2 "$WL_BYTES/1048576/$secs")
          pct=$( [ "$RATE" = 0 ] && echo 0 || fmt 1 "$WL_BYTES*8/$secs/($RATE*1e6)*100")
          log "$tool $wl N=$n rate=${RATE} loss=$loss%: ${secs}s ${gp} MiB/s (${pct}% of link) cpu=${cpus:-?}s verified=$ver rc=$rc"
          [ "$rc" = 0 ] || tail -3 "$RUN/$tool.stderr" >&2
          row "$tool,$wl,$WL_BYTES,$WL_FILES,$n,$RATE,${SENDER_RATE:-$RATE},$loss,$rep,$secs,$gp,$pct,$ver,$rc,${cpu:-},$desc,${rss:-},${cpus:-}"
        done
      done
    done
  done
done
done
