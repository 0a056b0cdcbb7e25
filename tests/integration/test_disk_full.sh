#!/usr/bin/env bash
# A receiver whose disk is full: msync says so and exits 1, the receiver keeps no partial file,
# the other members get everything; and a change propagated on its own reaches that member once
# it has room again, without another change or an msync (catch-up again after failures).
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
b3=$(node_base 3)
trap 'mountpoint -q "$b3" && umount -l "$b3"; cluster_down' EXIT
cluster_net 3 || exit 1
mkdir -p "$b3"
mount -t tmpfs -o size=3m tmpfs "$b3" || exit 1
# --retry 2: the first catch-up after a failure comes 2 s after it (default 30).
for i in 1 2 3; do MK_DAEMON_ARGS="--watch --retry 2" node_start "$i" || exit 1; done
wait_members 3 && wait_catchup 3 || exit 1
b1=$(node_base 1) b2=$(node_base 2)
no_temporaries() { ! find "$b3" -name '.*makuo*' | grep -q .; }

t_name "msync -r to a full receiver: a clear error, exit 1, nothing partial"
head -c 1000000 /dev/urandom >"$b1/small1"
head -c 5000000 /dev/urandom >"$b1/big"
head -c 1000000 /dev/urandom >"$b1/small2"
expect_rc nonzero node_msync 1 -r
grep -q 'No space left on device node3:big' "$MK_WORK/out" "$MK_WORK/err" && ok "ENOSPC reported for node3:big" \
  || fail "no ENOSPC line: $(cat "$MK_WORK/out" "$MK_WORK/err" | head -3)"
grep -q 'big from node1 not applied: No space left on device' "$(node_logf 3)" && ok "node 3 logs it" \
  || fail "node 3's log: $(grep -i warn "$(node_logf 3)" | tail -2)"
[ ! -e "$b3/big" ] && ok "no big on node 3" || fail "node 3 holds a big of $(stat -c %s "$b3/big") bytes"
# --watch pushes the same files on its own meanwhile: a temporary of that push may be there
# until its ENOSPC.
wait_for 10 no_temporaries && ok "no temporary left on node 3" || fail "temporaries: $(find "$b3" -name '.*makuo*')"
cmp -s "$b1/small1" "$b3/small1" && cmp -s "$b1/small2" "$b3/small2" && ok "the files that fit arrived" || fail "small files"
same_tree "$b1" "$b2" && ok "node 2 identical" || fail "node 2 differs"

t_name "a change propagated on its own reaches the full member once it has room"
rm -f "$b1/big" "$b3/small2"
wait_for 15 sh -c "[ ! -e '$b2/big' ]" || fail "delete of big did not reach node 2"
head -c 2500000 /dev/urandom >"$b1/later"
wait_for 15 cmp -s "$b1/later" "$b2/later" && ok "node 2 got it" || fail "node 2 did not get it"
wait_for 15 grep -q 'catch-up of node3 again in 2 s' "$(node_logf 1)" \
  && ok "node 1 will catch node 3 up again" || fail "no catch-up planned: $(grep -i 'node3' "$(node_logf 1)" | tail -3)"
wait_for 10 no_temporaries && ok "no temporary left on node 3" || fail "temporaries: $(find "$b3" -name '.*makuo*')"
retry_planned() { node_msync 1 --status | grep -q 'to catch up again after failures'; }
# (while a round runs, --status shows that round instead)
wait_for 10 retry_planned && ok "--status shows it" || fail "status: $(node_msync 1 --status | grep catch-up)"
mount -o remount,size=20m "$b3"
wait_for 30 cmp -s "$b1/later" "$b3/later" && ok "node 3 got it once it had room" || fail "node 3 never got it"
wait_for 15 same_tree "$b1" "$b3" && ok "node 3 identical (small2 back too)" || fail "node 3 differs"
no_retry_planned() { ! retry_planned && node_msync 1 --status | grep -q '^catch-up  : idle;'; }
wait_for 15 no_retry_planned && ok "nothing left to catch up" || fail "status: $(node_msync 1 --status | grep catch-up)"
t_finish
