#!/usr/bin/env bash
# Daemon modes: -r (receive nothing), -s (send nothing), -O (owner match), -c (chroot).
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap cluster_down EXIT
cluster_net 6 || exit 1
MK_DAEMON_ARGS="-O" node_start 1 || exit 1
MK_DAEMON_ARGS="-r" node_start 2 || exit 1
MK_DAEMON_ARGS="-s" node_start 3 || exit 1
MK_DAEMON_ARGS="-c" node_start 4 || exit 1
wait_members 4 && wait_catchup 4 || exit 1
b1=$(node_base 1)
echo mine > "$b1/mine"; echo theirs > "$b1/theirs"; chown daemon "$b1/theirs"

t_name "-O sends only files owned by the daemon's user"
expect_rc 0 node_msync 1 -r -l 3
grep -q 'skip: owner unmatch theirs' "$MK_WORK/out" && ok "skipped with a reason" || { fail "no skip line"; cat "$MK_WORK/out"; }
[ ! -e "$(node_base 3)/theirs" ] && [ -f "$(node_base 3)/mine" ] && ok "only the owned file went" || fail "wrong files on node 3"

t_name "-r receives nothing and says so"
grep -q '^skipro node2:mine' "$MK_WORK/out" && ok "skipro reported" || fail "no skipro line"
[ ! -e "$(node_base 2)/mine" ] && ok "nothing written on node 2" || fail "node 2 received"

t_name "-s refuses to send but receives"
echo x > "$(node_base 3)/own"
expect_rc nonzero node_msync 3 own
grep -q "this server can't send" "$MK_WORK/err" && ok "refused" || fail "no refusal"
[ -f "$(node_base 3)/mine" ] && ok "node 3 received" || fail "node 3 did not receive"

t_name "-c: a chrooted daemon receives into its base"
[ "$(readlink "/proc/$(node_pid 4)/root")" = "$(node_base 4)" ] && ok "root is the base directory" || fail "root $(readlink /proc/$(node_pid 4)/root)"
cmp -s "$b1/mine" "$(node_base 4)/mine" && ok "received" || fail "not received"

t_name "--no-catch-up: a node that joins does not push its tree (node 6, without it, does)"
mkdir -p "$(node_base 5)" "$(node_base 6)"
echo five > "$(node_base 5)/only5"; echo six > "$(node_base 6)/only6"
MK_DAEMON_ARGS="--no-catch-up" node_start 5 || exit 1
node_start 6 || exit 1
wait_for 30 test -f "$b1/only6" && ok "node 6's tree reached node 1 (catch-up on)" || fail "node 6 did not catch node 1 up"
wait_catchup 6
[ ! -e "$b1/only5" ] && ok "node 5's file did not travel" || fail "node 5 pushed its tree"
grep -q 'catch-up off (--no-catch-up)' "$(node_logf 5)" && ok "said so in its log" || fail "no log line"
t_finish
