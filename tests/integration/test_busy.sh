#!/usr/bin/env bash
# Long work never stops the event loop: while a --check hashes a 4 GiB file (sparse, so that no
# disk is needed: several seconds on each side here), both daemons keep sending heartbeats, keep
# their members, and answer consoles.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 2
command -v python3 >/dev/null || exit 1
b1=$(node_base 1) b2=$(node_base 2)
truncate -s 4G "$b1/huge" "$b2/huge"
last_seen() {  # the largest last_seen_seconds_ago node I reports for its members (99: no answer)
  timeout 2 "$MAKUO_BIN/msync" -c "unix:$(node_sock "$1")" --status --json 2>/dev/null |
    python3 -c 'import json,sys; m=json.load(sys.stdin)["members"]; print(max([x["last_seen_seconds_ago"] for x in m] or [99]))' 2>/dev/null || echo 99
}
t_name "a --check of a 4 GiB file: heartbeats and consoles go on"
t0=$SECONDS
node_msync 1 --check -v huge >"$MK_WORK/check.out" 2>&1 &
chk=$!
worst=0 polls=0
while kill -0 $chk 2>/dev/null; do
  for i in 1 2; do
    s=$(last_seen "$i")
    worst=$(awk -v a="$worst" -v b="$s" 'BEGIN{print (b > a) ? b : a}')
  done
  polls=$((polls + 1))
  sleep 0.2
done
wait $chk; rc=$?
ok "the check took $((SECONDS - t0)) s, $polls polls of both consoles"
[ $rc = 0 ] && grep -q 'OK huge' "$MK_WORK/check.out" && ok "the check completed: $(cat "$MK_WORK/check.out")" \
  || { fail "check rc=$rc"; cat "$MK_WORK/check.out" >&2; }
awk -v w="$worst" 'BEGIN{exit !(w < 2)}' && ok "no member went silent for 2 s or more (worst: $worst s)" \
  || fail "a member was silent for $worst s"
grep -q 'left the cluster' "$(node_logf 1)" "$(node_logf 2)" && fail "a member was dropped" || ok "no member dropped"
t_finish
