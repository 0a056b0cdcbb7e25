#!/usr/bin/env bash
# Concurrent writers and the tree index: an edit made on top of another node's version is no
# conflict; two writes made apart (a partition) are, and with --keep-conflicts the losing one
# is kept as NAME.makuo-conflict-NODE-TIME on every node, logged on the node whose write lost;
# changes made in a stopped node's base directory (no mount, no --watch) are found by the
# index's rescan at start, deletions included, and lose to versions written elsewhere later.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
MK_DAEMON_ARGS="--keep-conflicts"
t_cluster 3
node_mount 1 || exit 1
node_mount 2 || exit 1
m1=$(node_mnt 1) m2=$(node_mnt 2)
b1=$(node_base 1) b2=$(node_base 2) b3=$(node_base 3)
conflicts() { find "$1" -name '*.makuo-conflict-*' | wc -l; }
members_of() { node_msync "$1" --members 2>/dev/null | grep -q "^Total: $2 members"; }

t_name "an edit made on top of another node's version is no conflict"
echo "v1" >"$m1/s"
wait_for 30 converged 3 --no-dir-mtime || fail "v1 did not arrive"
echo "v2 on node 2" >"$m2/s"
wait_for 30 converged 3 --no-dir-mtime || fail "v2 did not arrive"
[ "$(cat "$b3/s")" = "v2 on node 2" ] && ok "node 2's edit everywhere" || fail "node 3 has $(cat "$b3/s")"
[ "$(conflicts "$b1")$(conflicts "$b2")$(conflicts "$b3")" = 000 ] && ok "no conflict copies" || fail "a conflict copy appeared"
grep -q 'conflict:' "$(node_logf 1)" "$(node_logf 2)" && fail "a conflict was logged" || ok "no conflict logged"

t_name "nodes 1 and 2 write f apart (partition): node 2's later write wins, node 1's is kept as a conflict copy everywhere"
echo "base" >"$m1/f"
wait_for 30 converged 3 --no-dir-mtime || fail "base version did not converge"
node_link 2 down
wait_for 15 members_of 1 1 || fail "node 2 still a member of node 1's cluster"
wait_for 15 members_of 2 0 || fail "node 2 still sees others"
echo "from node 1" >"$m1/f"
wait_for 30 quiet_same_tree "$b1" "$b3" --no-dir-mtime || fail "node 3 did not get node 1's write"
echo "from node 2" >"$m2/f"   # later than node 1's
node_link 2 up
wait_members 3 || fail "membership after the partition"
if wait_for 30 converged 3 --no-dir-mtime; then ok "all three identical"; else
  fail "not converged"; same_tree "$b1" "$b2" --no-dir-mtime; same_tree "$b1" "$b3" --no-dir-mtime; fi
for i in 1 2 3; do
  b=$(node_base "$i")
  [ "$(cat "$b/f")" = "from node 2" ] || fail "node $i: f is '$(cat "$b/f")'"
  copy=$(find "$b" -maxdepth 1 -name 'f.makuo-conflict-node1-*')
  if [ "$(echo "$copy" | grep -c .)" = 1 ] && [ "$(cat "$copy")" = "from node 1" ]; then
    ok "node $i: f from node 2, node 1's version kept as $(basename "$copy")"
  else
    fail "node $i: conflict copy missing or wrong: '$copy'"
  fi
done
grep -q 'conflict: f: the version written here' "$(node_logf 1)" && ok "node 1 logged the loss" || fail "node 1 did not log it"
grep -q 'conflict: f:' "$(node_logf 2)" "$(node_logf 3)" && fail "a node that did not lose logged a conflict" || ok "nodes 2 and 3 logged none"

t_name "node 3 stopped; its base changed directly (delete, edit); node 1 changes a file after: index rescan at start"
for n in g h k; do echo "$n original" >"$m1/$n"; done
wait_for 30 converged 3 --no-dir-mtime || fail "g h k did not converge"
node_stop 3
wait_for 15 members_of 1 1 || fail "node 3 still a member"
echo "k newer on node 1" >"$m1/k"   # after node 3 stopped
wait_for 30 quiet_same_tree "$b1" "$b2" --no-dir-mtime || fail "node 2 did not get k"
rm "$b3/g" "$b3/k"                  # behind node 3's back: no mount, no --watch, no daemon
echo "h edited while down" >"$b3/h"
node_start 3 || exit 1
grep -q 'tree index: .* 0 added, 1 changed, 2 deleted here' "$(node_logf 3)" \
  && ok "rescan: 1 changed, 2 deleted" || { fail "rescan line"; grep 'tree index' "$(node_logf 3)" >&2; }
if wait_for 30 converged 3 --no-dir-mtime; then ok "identical"; else
  fail "not converged"; same_tree "$b1" "$b3" --no-dir-mtime; fi
[ ! -e "$b1/g" ] && [ ! -e "$b2/g" ] && ok "the deletion made while stopped reached nodes 1 and 2" || fail "g came back"
[ "$(cat "$b1/h")" = "h edited while down" ] && ok "the edit made while stopped reached node 1" || fail "h: $(cat "$b1/h")"
[ "$(cat "$b3/k")" = "k newer on node 1" ] && ok "k written on node 1 after node 3 stopped beats node 3's deletion" \
  || fail "k on node 3: $(cat "$b3/k" 2>&1)"
node_msync 3 --status | grep -E '^index'
t_finish
