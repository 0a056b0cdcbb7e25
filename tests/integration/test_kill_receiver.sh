#!/usr/bin/env bash
# A receiver killed with SIGKILL mid-push: no partial file at any target path, the others
# finish, msync reports the lost host and exits non-zero; a restart removes its temporaries.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 4
b1=$(node_base 1)
t_name "receiver killed mid-push"
head -c 60000000 /dev/urandom > "$b1/big.bin"
for i in 1 2 3 4; do node_rate "$i" 100; done   # ~5 s push: time to kill node 4 in the middle
node_msync 1 -v big.bin >"$MK_WORK/push.out" 2>"$MK_WORK/push.err" &
push=$!
t=$((SECONDS + 20))
until ls -a "$(node_base 4)" | grep -q '^\.makuo-tmp-'; do
  [ $SECONDS -lt $t ] || { fail "no transfer started on node 4"; break; }; sleep 0.02; done
node_kill 4
wait $push; rc=$?
[ $rc -ne 0 ] && ok "msync exit status $rc" || fail "msync exited 0 although node 4 died"
grep -q 'node4' "$MK_WORK/push.err" && ok "lost host reported: $(grep node4 "$MK_WORK/push.err" | head -1)" || { fail "node4 not reported"; cat "$MK_WORK/push.err"; }
for i in 2 3; do cmp -s "$b1/big.bin" "$(node_base $i)/big.bin" && ok "node $i complete" || fail "node $i incomplete"; done
[ ! -e "$(node_base 4)/big.bin" ] && ok "no partial file at node 4's target path" || fail "node 4 has a big.bin"
node_start 4
ls -a "$(node_base 4)" | grep -q '^\.makuo-tmp-' && fail "stale temporary survived a restart" || ok "restart removed the temporary"
wait_members 4 && wait_catchup 4
expect_rc 0 node_msync 1 big.bin
cmp -s "$b1/big.bin" "$(node_base 4)/big.bin" && ok "node 4 catches up with a new push" || fail "node 4 still differs"
t_finish
