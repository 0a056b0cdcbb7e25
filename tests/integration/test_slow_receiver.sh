#!/usr/bin/env bash
# A receiver on a much slower link than the sender: the sender backs off to what it can take
# (loss-driven rate) instead of flooding it with repairs, and the push completes for all. A
# private directory that a push brings is never open to all on a receiver, not even while its
# contents arrive or after the push was cut off.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 3
t_name "one receiver behind a 30 Mbit/s link, the rest unlimited"
swx tc qdisc replace dev "${MK_PREFIX}v3" root tbf rate 30mbit burst 32kb latency 20ms
head -c 20000000 /dev/urandom > "$(node_base 1)/f"
node_msync 1 --status | grep -q '^sendrate: 1000/-' && ok "starts at 1000 Mbit/s" || fail "$(node_msync 1 --status | grep sendrate)"
expect_rc 0 node_msync 1 f
for i in 2 3; do cmp -s "$(node_base 1)/f" "$(node_base $i)/f" && ok "node $i identical" || fail "node $i differs"; done
rate=$(node_msync 1 --status | sed -n 's|^sendrate: \([0-9-]*\)/.*|\1|p')
[ "$rate" != "-" ] && [ "$rate" -lt 200 ] && ok "sender backed off to $rate Mbit/s" || fail "send rate $rate"

t_name "a private directory is 0700 on the receivers from the start, and after an abort"
b1=$(node_base 1) b3=$(node_base 3)
mkdir -m 700 "$b1/private" && head -c 30000000 /dev/urandom >"$b1/private/secret"
node_msync 1 -r private >/dev/null 2>&1 &
push=$!
wait_for 10 test -d "$b3/private" || fail "the directory never appeared on node 3"
m=$(stat -c %a "$b3/private")
[ "$m" = 700 ] && ok "0700 while its contents arrive" || fail "mode $m while its contents arrive"
node_kill 1
wait "$push" 2>/dev/null
[ "$(stat -c %a "$b3/private")" = 700 ] && ok "0700 after the sender died mid-push" \
  || fail "mode $(stat -c %a "$b3/private") after the abort"
[ ! -e "$b3/private/secret" ] && ok "no partial file" || fail "a partial secret on node 3"
t_finish
