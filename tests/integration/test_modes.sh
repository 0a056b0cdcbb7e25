#!/usr/bin/env bash
# Daemon modes: -r (receive nothing), -s (send nothing), -O (owner match), -c (chroot).
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap cluster_down EXIT
cluster_net 4 || exit 1
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
t_finish
