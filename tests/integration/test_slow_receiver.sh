#!/usr/bin/env bash
# A receiver on a much slower link than the sender: the sender backs off to what it can take
# (loss-driven rate) instead of flooding it with repairs, and the push completes for all.
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
t_finish
