#!/usr/bin/env bash
# Convergence without anyone running msync: a node that was stopped, a node cut off by a
# partition while the others changed things, two nodes writing the same files at once (one
# winner everywhere, never an overwritten write), and a new empty node joining a cluster that
# holds 10,000 files. Trees are compared without directory mtimes: concurrent automatic pushes
# may leave those differing.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 3
node_mount 1 || exit 1
node_mount 2 || exit 1
node_mount 3 || exit 1
m1=$(node_mnt 1) m2=$(node_mnt 2) m3=$(node_mnt 3)
b1=$(node_base 1) b3=$(node_base 3)
mkdir -p "$m1/d"
for i in $(seq 0 99); do echo "first $i" >"$m1/d/f$i"; done
wait_for 30 converged 3 --no-dir-mtime || fail "initial tree did not converge"

t_name "node 3 stopped while 200 files are created, changed, renamed and deleted; started: identical"
node_stop 3
node_umount 3
wait_members 2 1 || fail "membership"
mkdir -p "$m1/new"
for i in $(seq 0 99); do echo "new $i" >"$m1/new/g$i"; done
for i in $(seq 0 49); do echo "changed $i" >>"$m1/d/f$i"; done
for i in $(seq 50 74); do mv "$m1/d/f$i" "$m1/d/renamed$i"; done
for i in $(seq 75 99); do rm "$m1/d/f$i"; done
wait_for 30 quiet_same_tree "$b1" "$(node_base 2)" --no-dir-mtime || fail "node 2 did not follow"
quiet_same_tree "$b1" "$b3" --no-dir-mtime && fail "node 3 already identical?"
node_start 3 || exit 1
node_mount 3 || exit 1
if wait_for 30 converged 3 --no-dir-mtime; then
  ok "identical within 30 s, nothing run by hand"
else
  fail "not converged"; same_tree "$b1" "$b3" --no-dir-mtime
fi
[ ! -e "$b3/d/f80" ] && [ -f "$b3/d/renamed60" ] && ok "deletions and renames applied" || fail "deletions/renames"

t_name "node 3 cut off while nodes 1 and 2 change files; link restored: all three converge"
node_link 3 down
members_of() { node_msync "$1" --members 2>/dev/null | grep -q "^Total: $2 members"; }
wait_for 15 members_of 1 1 || fail "node 3 still a member of node 1's cluster"
echo "from node 1" >"$m1/d/f0"
echo "node 1 new" >"$m1/part-1"
echo "from node 2" >"$m2/d/f1"
rm "$m2/d/f2"
echo "node 3 alone" >"$m3/part-3"      # node 3 writes too, on its side of the partition
sleep 1
echo "node 3 later" >"$m3/d/f3"         # later than anything the others did to f3
wait_for 15 members_of 3 0 || fail "node 3 still sees others"
node_link 3 up
wait_members 3 || fail "membership after the partition"
if wait_for 30 converged 3 --no-dir-mtime; then ok "converged"; else fail "not converged"; same_tree "$b1" "$b3" --no-dir-mtime; fi
[ "$(cat "$b3/d/f0")" = "from node 1" ] && [ "$(cat "$b3/d/f1")" = "from node 2" ] && [ ! -e "$b3/d/f2" ] \
  && ok "node 3 has what 1 and 2 did" || fail "node 3 missed changes"
[ "$(cat "$b1/part-3")" = "node 3 alone" ] && [ "$(cat "$b1/d/f3")" = "node 3 later" ] \
  && ok "nodes 1 and 2 have what 3 did alone" || fail "node 3's changes lost"

t_name "nodes 1 and 2 write the same 50 files at once, 5 rounds: identical, each file one writer's last write"
python3 - "$m1" "$m2" <<'PY'
import os, sys, threading, time
m1, m2 = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(m1, "c"), exist_ok=True)
time.sleep(1)
def writer(mnt, who):
    for r in range(5):
        for i in range(50):
            with open(os.path.join(mnt, "c", "x%02d" % i), "w") as f:
                f.write("%s round %d file %d\n" % (who, r, i))
        time.sleep(0.05)
ts = [threading.Thread(target=writer, args=(m1, "n1")), threading.Thread(target=writer, args=(m2, "n2"))]
for t in ts: t.start()
for t in ts: t.join()
PY
wait_for 30 converged 3 --no-dir-mtime && ok "all three identical" || { fail "not converged"; same_tree "$b1" "$b3" --no-dir-mtime; same_tree "$b1" "$(node_base 2)" --no-dir-mtime; }
# Each writer's last write descends from its earlier ones (it wrote them), so whichever wins,
# an earlier round can never be what stays.
python3 - "$b1" "$(node_base 2)" "$b3" <<'PY' && ok "every file holds the last write of one of its writers" || fail "an overwritten write came back"
import os, sys
bad = 0
for base in sys.argv[1:]:
    for i in range(50):
        got = open(os.path.join(base, "c", "x%02d" % i)).read()
        if got not in ("n1 round 4 file %d\n" % i, "n2 round 4 file %d\n" % i):
            bad += 1
            if bad < 4: print("x%02d in %s: %r" % (i, base, got))
sys.exit(1 if bad else 0)
PY

t_name "a new, empty node 4 joins a cluster holding 10,000 files and converges without msync"
python3 - "$b1/many" <<'PY'
import os, sys
d = sys.argv[1]
for k in range(20):
    os.makedirs(os.path.join(d, "s%02d" % k))
    for i in range(500):
        with open(os.path.join(d, "s%02d" % k, "f%03d" % i), "w") as f:
            f.write("%d/%d\n" % (k, i))
PY
node_msync 1 -r many >/dev/null || fail "seeding nodes 2 and 3"
# As if node 4 had last seen a cluster 10 days ago: longer than the tombstones are kept.
mkdir -p "$MK_WORK/nodes/4/state/daemon"
echo "$(( ($(date +%s) - 10 * 86400) * 1000000000 ))" >"$MK_WORK/nodes/4/state/daemon/last-contact"
cluster_add_node 4 || exit 1
grep -q 'no contact with the cluster for 10 days' "$(node_logf 4)" && ok "warned: away longer than the tombstones" \
  || fail "no warning about the long absence"
wait_members 4 || fail "membership"
if wait_for 60 converged 4 --no-dir-mtime; then ok "node 4 identical ($(find "$(node_base 4)" | wc -l) entries)"; else fail "node 4 not converged"; same_tree "$b1" "$(node_base 4)" --no-dir-mtime; fi
node_msync 4 --status | grep -E '^catch-up'
t_finish
