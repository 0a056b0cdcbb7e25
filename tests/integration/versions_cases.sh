# versions_cases.sh - the cases of "versions, not clocks", sourced by test_versions_mount.sh
# (changes made through makuofs mounts) and test_versions_watch.sh (made in the base
# directories, recorded by makuosan --watch). The caller sets MODE=mount|watch before sourcing.
# An mtime is data that users and their tools set: rsync -a, cp -p and touch -d restore old
# or future ones, and a server's clock may be off. None of that may undo a change.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
faketime_lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -f "$faketime_lib" ] || faketime_lib=$(dpkg -L libfaketime 2>/dev/null | grep 'libfaketimeMT.so' | head -1)
[ -f "$faketime_lib" ] || { echo "libfaketime is missing (apt-get install faketime)"; exit 1; }
trap cluster_down EXIT
cluster_net 3 || exit 1
args="--keep-conflicts"
[ "$MODE" = watch ] && args="$args --watch"
MK_DAEMON_ARGS="$args" node_start 1 || exit 1
# Node 2's daemon runs an hour behind the others (libfaketime, preloaded by env so that the
# daemon keeps its pid): what it orders must not depend on its clock.
MK_DAEMON_WRAP="env LD_PRELOAD=$faketime_lib FAKETIME=-1h FAKETIME_DONT_FAKE_MONOTONIC=1" MK_DAEMON_ARGS="$args" node_start 2 || exit 1
MK_DAEMON_ARGS="$args" node_start 3 || exit 1
wait_members 3 && wait_catchup 3 || exit 1
if [ "$MODE" = mount ]; then
  for i in 1 2 3; do node_mount "$i" || exit 1; done
  w1=$(node_mnt 1) w2=$(node_mnt 2)
else
  w1=$(node_base 1) w2=$(node_base 2)
fi
b1=$(node_base 1) b2=$(node_base 2) b3=$(node_base 3)
# every node holds what node 1 holds and the cluster has stopped sending
settled() { wait_for 30 converged 3 --no-dir-mtime && cluster_quiet 3; }
everywhere() {  # everywhere PATH CONTENT: every node's base holds CONTENT at PATH
  local i
  for i in 1 2 3; do [ "$(cat "$(node_base "$i")/$1" 2>/dev/null)" = "$2" ] || return 1; done
}
show() { local i; for i in 1 2 3; do mk_log "node $i: $1 = '$(cat "$(node_base "$i")/$1" 2>&1)'"; done; }

t_name "a rollback with rsync -a to older-dated content stays everywhere"
mkdir -p "$MK_WORK/release1/css" "$MK_WORK/release2/css"
for r in 1 2; do
  echo "release $r" >"$MK_WORK/release$r/index.html"
  echo "body { release: $r }" >"$MK_WORK/release$r/css/site.css"
done
touch -d '2024-03-01 12:00' "$MK_WORK/release1/index.html" "$MK_WORK/release1/css/site.css"
touch -d '2025-06-01 12:00' "$MK_WORK/release2/index.html" "$MK_WORK/release2/css/site.css"
mkdir -p "$w1/site"
rsync -a "$MK_WORK/release2/" "$w1/site/"
wait_for 30 everywhere site/index.html "release 2" || { fail "release 2 did not arrive"; show site/index.html; }
settled || fail "release 2 did not settle"
rsync -a "$MK_WORK/release1/" "$w1/site/"   # the rollback: older content, older mtimes
if wait_for 30 everywhere site/index.html "release 1" && settled && everywhere site/index.html "release 1" &&
   everywhere site/css/site.css "body { release: 1 }"; then
  ok "release 1 on every node, with its 2024 mtime, after the cluster went quiet"
else
  fail "the rollback was undone"; show site/index.html
fi
[ "$(stat -c %Y "$b3/site/index.html")" = "$(date -d '2024-03-01 12:00' +%s)" ] && ok "the mtime replicated as data" \
  || fail "node 3's mtime is $(stat -c %y "$b3/site/index.html")"

t_name "an edit on node 2 on top of a version dated 2030 stays"
echo "from the future" >"$w1/future.txt"
touch -d '2030-01-01' "$w1/future.txt"
wait_for 30 everywhere future.txt "from the future" && settled || fail "the 2030 version did not arrive"
echo "edited on node 2" >"$w2/future.txt"
if wait_for 30 everywhere future.txt "edited on node 2" && settled && everywhere future.txt "edited on node 2"; then
  ok "node 2's edit (dated now) replaced the 2030 version everywhere and stayed"
else
  fail "node 2's edit was undone"; show future.txt
fi

t_name "a delete of a file dated 2030 is not undone"
echo "doomed" >"$w1/doomed.txt"
touch -d '2030-01-01' "$w1/doomed.txt"
wait_for 30 everywhere doomed.txt doomed && settled || fail "doomed.txt did not arrive"
rm "$w2/doomed.txt"
gone() { local i; for i in 1 2 3; do [ ! -e "$(node_base "$i")/doomed.txt" ] || return 1; done; }
if wait_for 30 gone && settled && gone; then ok "deleted everywhere and stays deleted"; else
  fail "the delete was undone"; show doomed.txt; fi

t_name "node 2, whose clock runs an hour behind, edits a file node 1 wrote: its edit stays"
echo "written on node 1" >"$w1/slow.txt"
wait_for 30 everywhere slow.txt "written on node 1" && settled || fail "slow.txt did not arrive"
echo "edited on the slow node" >"$w2/slow.txt"
touch -d "@$(( $(date +%s) - 3600 ))" "$w2/slow.txt"   # as that server's clock would date it
if wait_for 30 everywhere slow.txt "edited on the slow node" && settled && everywhere slow.txt "edited on the slow node"; then
  ok "the slow node's edit, dated an hour back, is everywhere"
else
  fail "the slow node's edit was undone"; show slow.txt
fi
node_msync 1 --status | grep -q 'clock     : .*node2.* behind' && ok "node 1's status names node 2's clock as behind" \
  || { fail "no clock line in node 1's status"; node_msync 1 --status >&2; }
grep -q 'clock of node2 .* behind' "$(node_logf 1)" && ok "node 1 warned of node 2's clock in its log" \
  || fail "no clock warning in node 1's log"

t_name "nodes 1 and 2 edit one file on both sides of a partition: one winner everywhere, the loser kept"
echo "before the partition" >"$w1/split.txt"
wait_for 30 everywhere split.txt "before the partition" && settled || fail "split.txt did not arrive"
node_link 2 down
members_of() { node_msync "$1" --members 2>/dev/null | grep -q "^Total: $2 members"; }
wait_for 15 members_of 1 1 && wait_for 15 members_of 2 0 || fail "the partition did not show in membership"
echo "node 2's side" >"$w2/split.txt"
echo "node 1's side, later" >"$w1/split.txt"
wait_for 30 quiet_same_tree "$b1" "$b3" --no-dir-mtime || fail "node 3 did not follow node 1"
node_link 2 up
wait_members 3 || fail "membership after the partition"
if settled && everywhere split.txt "node 1's side, later"; then ok "node 1's later edit won everywhere"; else
  fail "no single winner"; show split.txt; same_tree "$b1" "$b2" --no-dir-mtime; fi
for i in 1 2 3; do
  copy=$(find "$(node_base "$i")" -maxdepth 1 -name 'split.txt.makuo-conflict-node2-*')
  if [ "$(echo "$copy" | grep -c .)" = 1 ] && [ "$(cat "$copy")" = "node 2's side" ]; then
    ok "node $i keeps node 2's version as $(basename "$copy")"
  else
    fail "node $i: conflict copy missing or wrong: '$copy'"
  fi
done
node_msync 2 --status | grep -q '^index     : .* 1 conflicts lost here' && ok "node 2 counted the conflict" \
  || { fail "node 2's status does not count it"; node_msync 2 --status | grep '^index' >&2; }
t_finish
