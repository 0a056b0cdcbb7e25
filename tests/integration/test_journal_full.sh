#!/usr/bin/env bash
# The change journal's file system fills up under a mount: no change made through the mount is
# lost. What cannot be recorded is covered by a rescan of the whole tree, written from a reserve
# kept in the journal (durable at once: it survives a crash of the mount while the disk is still
# full) or, once the reserve is used up, as soon as there is room; the daemon then sends what
# changed. A record that could not be written whole is cut off, never left torn.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
j1="$MK_WORK/nodes/1/state/journal"
trap 'node_umount 1; mountpoint -q "$j1" && umount -l "$j1"; cluster_down' EXIT
cluster_net 2 || exit 1
mkdir -p "$j1"
mount -t tmpfs -o size=512k,mode=0700 tmpfs "$j1" || exit 1
for i in 1 2; do node_start "$i" || exit 1; done
wait_members 2 || exit 1
node_mount 1 || exit 1
m1=$(node_mnt 1) b1=$(node_base 1) b2=$(node_base 2)
fslog="$MK_WORK/nodes/1/makuofs.log"
failures() { grep -c 'change journal: append failed' "$fslog"; }
fill() { head -c 1G /dev/zero >"$j1/.filler" 2>/dev/null; df --output=avail "$j1" | tail -1 | grep -qx ' *0'; }
long=$(printf 'n%.0s' $(seq 200))  # long names: records of ~430 bytes use the journal up fast

t_name "changes arrive while the journal has room"
echo one >"$m1/one"
wait_for 15 cmp -s "$b1/one" "$b2/one" && ok "arrived" || fail "one did not arrive"

t_name "the journal full: what was not recorded arrives once there is room again"
fill || fail "the journal's file system is not full: $(df -h "$j1" | tail -1)"
n=0
until [ "$(failures)" -gt 0 ] || [ $n -ge 3000 ]; do echo "$n" >"$m1/a-$n-$long"; n=$((n + 1)); done
[ "$(failures)" -gt 0 ] && ok "makuofs says so: $(grep -m1 'append failed' "$fslog" | cut -c1-160)" \
  || fail "no append failed after $n files"
# Far past what the reserve holds: from here on the rescan is owed until there is room.
for k in $(seq 600); do echo "$k" >"$m1/b-$k-$long"; done
rm "$m1/one"
mv "$m1/a-0-$long" "$m1/renamed-while-full"
grep -q 'will be recorded once it has room' "$fslog" && ok "the reserve used up, a rescan owed" \
  || fail "no owed rescan: $(grep 'append failed' "$fslog" | tail -1)"
rm -f "$j1/.filler"
wait_for 60 same_tree "$b1" "$b2" && ok "node 2 identical: $(find "$b2" -type f | wc -l) files, one gone, one renamed" \
  || fail "node 2 differs: $(diff <(ls "$b1") <(ls "$b2") | head -5)"
grep -q 'not a whole record' "$(node_logf 1)" && fail "a torn record: $(grep 'not a whole record' "$(node_logf 1)" | head -2)" \
  || ok "no torn record in the journal"

t_name "the journal full, then the mount crashes: the reserve's rescan was on disk"
fill || fail "the journal's file system is not full again"
before=$(failures)
n=0
until [ "$(failures)" -gt "$before" ] || [ $n -ge 3000 ]; do echo "$n" >"$m1/c-$n-$long"; n=$((n + 1)); done
[ "$(failures)" -gt "$before" ] || fail "no append failed after $n files"
echo "written after the first failure" >"$m1/after-full"
node_fs_kill 1
node_umount 1
wait_for 60 same_tree "$b1" "$b2" && ok "node 2 identical, after-full too ($n files written)" \
  || fail "node 2 differs: $(diff <(ls "$b1") <(ls "$b2") | head -5)"
rm -f "$j1/.filler"
t_finish
