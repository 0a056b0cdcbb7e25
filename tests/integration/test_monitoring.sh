#!/usr/bin/env bash
# What an admin's monitoring sees: msync --status --json, the Prometheus metrics file, one log
# line per pushed file at -d 1, and systemd's READY/STOPPING notifications.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap 'cluster_down; [ -n "${lpid:-}" ] && kill "$lpid" 2>/dev/null' EXIT
cluster_net 3 || exit 1
MK_DAEMON_ARGS="-d 1 --metrics-file $MK_WORK/m1.prom" node_start 1 || exit 1
MK_DAEMON_ARGS="--metrics-file $MK_WORK/m2.prom" node_start 2 || exit 1
# A stand-in for systemd's notification socket.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a")
while True:
    out.write(s.recv(4096).decode() + "\n")
    out.flush()
' "$MK_WORK/notify.sock" "$MK_WORK/notify.log" &
lpid=$!
wait_for 5 test -S "$MK_WORK/notify.sock"
NOTIFY_SOCKET="$MK_WORK/notify.sock" node_start 3 || exit 1
wait_members 3 && wait_catchup 3 || exit 1
b1=$(node_base 1)
for i in 1 2 3 4 5; do echo "$i" >"$b1/f$i"; done
node_msync 1 -r >/dev/null || fail "push failed"

t_name "msync --status --json: one valid document with members, counters, pushes"
node_msync 2 --status --json >"$MK_WORK/s.json" || fail "exit status"
python3 - "$MK_WORK/s.json" <<'PY' && ok "fields present and consistent" || fail "JSON: $(head -c 300 "$MK_WORK/s.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["node"] == "node2", d["node"]
names = sorted(m["name"] for m in d["members"])
assert names == ["node1", "node3"], names
assert all(m["version"] and m["last_seen_seconds_ago"] < 5 for m in d["members"])
c = d["counters"]
assert c["rx_packets"] > 0 and c["files_committed"] >= 5, c
assert set(c["dropped_packets"]) >= {"truncated", "bad_magic", "malformed"}, c["dropped_packets"]
assert set(c["auth_failures"]) >= {"plaintext", "bad_tag", "replay"}
assert "journal_backlog_bytes" in c and isinstance(d["sending"], list)
PY
expect_rc 1 node_msync 1 --members --json && grep -q 'only with --status' "$MK_WORK/err" && ok "--json without --status refused"

t_name "--metrics-file: Prometheus text, rewritten as counters move"
wait_for 10 grep -q '^makuo_files_committed_total [5-9]' "$MK_WORK/m2.prom" && ok "files_committed reached the file" \
  || fail "$(grep files_committed "$MK_WORK/m2.prom")"
grep -q '^# TYPE makuo_rx_packets_total counter$' "$MK_WORK/m2.prom" && grep -q '^makuo_members 2$' "$MK_WORK/m2.prom" \
  && grep -q '^makuo_dropped_packets_total{reason="malformed"} ' "$MK_WORK/m2.prom" && ok "types, gauges, labels" \
  || fail "$(head -20 "$MK_WORK/m2.prom")"
[ ! -e "$MK_WORK/m2.prom.tmp" ] && ok "written through a temporary and renamed" || fail "temporary left behind"

t_name "logs: a line per pushed file at -d 1, none at -d 0"
[ "$(grep -c 'push: update node[23]:f[1-5]$' "$(node_logf 1)")" = 10 ] && ok "10 lines (5 files x 2 hosts)" \
  || fail "$(grep -c 'push: update' "$(node_logf 1)") update lines"
grep -q 'update node[0-9]*:' "$(node_logf 2)" && fail "node 2 (-d 0) logged per-file lines" || ok "quiet at -d 0"

t_name "systemd notification: READY once up, STOPPING on SIGTERM"
grep -q '^READY=1' "$MK_WORK/notify.log" && ok "READY=1" || fail "no READY: $(cat "$MK_WORK/notify.log")"
node_stop 3
wait_for 5 grep -q '^STOPPING=1' "$MK_WORK/notify.log" && ok "STOPPING=1" || fail "no STOPPING"
t_finish
