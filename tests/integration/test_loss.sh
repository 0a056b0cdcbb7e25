#!/usr/bin/env bash
# With 5% random loss on every receiver (nftables numgen), a push still makes all identical.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 4
b1=$(node_base 1)
t_name "5% loss on receivers"
for d in $(seq 1 20); do
  mkdir -p "$b1/d$d"
  for f in $(seq 1 20); do head -c $(( (d * 131 + f * 977) % 20000 )) /dev/urandom > "$b1/d$d/f$f"; done
done
head -c 30000000 /dev/urandom > "$b1/big.bin"
for i in 2 3 4; do node_loss "$i" 5; done
expect_rc 0 node_msync 1 -r
for i in 2 3 4; do same_tree "$b1" "$(node_base $i)" && ok "node $i identical" || fail "node $i differs"; done
drops=$(nsx 2 nft list table netdev mkloss | grep -o 'packets [0-9]*' | awk '{print $2}')
[ "${drops:-0}" -gt 0 ] && ok "the loss rule dropped $drops packets on node 2" || fail "no packet was dropped: the test proves nothing"
t_finish
