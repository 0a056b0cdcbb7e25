#!/usr/bin/env bash
# Propagation latency through makuofs: a namespace cluster of 1 + RECEIVERS nodes (default 3),
# node 1's base mounted; WRITES (200) files of 4 KiB are written one after another through the
# mount, and for each the time from close() returning to the file being in place (renamed into
# its final name, complete) on every other node is taken. Prints p50/p90/p99/max.
# Usage (root): bench/mount_latency.sh [--writes N] [--receivers N] [--quiet MS]
set -euo pipefail
cd "$(dirname "$0")/.."
writes=200 receivers=3 quiet=50
while [ $# -gt 0 ]; do
  case $1 in
    --writes) writes=$2; shift ;;
    --receivers) receivers=$2; shift ;;
    --quiet) quiet=$2; shift ;;
    *) echo "usage: $0 [--writes N] [--receivers N] [--quiet MS]" >&2; exit 1 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces)" >&2; exit 1; }
export MAKUO_BIN=${MAKUO_BIN:-$PWD/build}
. scripts/lib/cluster.sh
trap cluster_down EXIT
n=$((receivers + 1))
MK_DAEMON_ARGS="--quiet $quiet" cluster_up "$n" >/dev/null 2>&1 || { echo "cluster did not start" >&2; exit 1; }
node_mount 1 || exit 1
dests=()
for i in $(seq 2 "$n"); do dests+=("$(node_base "$i")"); done
python3 - "$(node_mnt 1)" "$writes" "${dests[@]}" <<'PY'
import os, sys, time
mnt, writes, dests = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
data = os.urandom(4096)
lat = []
for i in range(writes):
    name = "lat-%04d" % i
    with open(os.path.join(mnt, name), "wb") as f:
        f.write(data)
    t0 = time.monotonic()
    pending = set(dests)
    deadline = t0 + 10
    while pending and time.monotonic() < deadline:
        pending = {d for d in pending if not os.path.exists(os.path.join(d, name))}
        if pending:
            time.sleep(0.0002)
    if pending:
        print("write %d: not on %s after 10 s" % (i, sorted(pending)))
        sys.exit(1)
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(0.02)  # writes apart, each its own push
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print("makuofs write-to-visible on %d nodes, %d writes of 4 KiB: p50 %.1f ms  p90 %.1f ms  "
      "p99 %.1f ms  max %.1f ms" % (len(dests), len(lat), q(0.5), q(0.9), q(0.99), lat[-1]))
PY
