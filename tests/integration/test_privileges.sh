#!/usr/bin/env bash
# -u/-g drop privileges for real (all four ids), after binding; such a node still receives. The
# daemon's user cannot make root (makuosan before its drop, makuofs always) touch anything
# outside the state directory by planting symlinks there.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap cluster_down EXIT
cluster_net 2 || exit 1
node_start 1 || exit 1
mkdir -p "$(node_base 2)"; chown nobody:nogroup "$(node_base 2)"
MK_DAEMON_ARGS="-u nobody -g nogroup" node_start 2 || exit 1
wait_members 2 && wait_catchup 2 || exit 1
t_name "privileges dropped for real"
pid=$(node_pid 2)
uid=$(id -u nobody); gid=$(getent group nogroup | cut -d: -f3)
grep -q "^Uid:[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid$" "/proc/$pid/status" \
  && ok "$(grep ^Uid: /proc/$pid/status | tr '\t' ' ')" || fail "$(grep ^Uid: /proc/$pid/status)"
grep -q "^Gid:[[:space:]]*$gid[[:space:]]*$gid[[:space:]]*$gid[[:space:]]*$gid$" "/proc/$pid/status" \
  && ok "$(grep ^Gid: /proc/$pid/status | tr '\t' ' ')" || fail "$(grep ^Gid: /proc/$pid/status)"
grep -q "^Groups:[[:space:]]*$gid[[:space:]]*$" "/proc/$pid/status" && ok "supplementary groups: only $gid" \
  || fail "$(grep ^Groups: /proc/$pid/status)"
grep -q "^CapEff:[[:space:]]*0*$" "/proc/$pid/status" && ok "no effective capabilities" || fail "$(grep ^CapEff: /proc/$pid/status)"
t_name "the unprivileged node still receives; owners it cannot set are its own"
echo hello > "$(node_base 1)/f"; chown daemon "$(node_base 1)/f"
expect_rc 0 node_msync 1 -v f
grep -q '^warning: owner daemon:root not applied on node2:f' "$MK_WORK/out" && ok "reported per file" || { fail "no owner warning"; cat "$MK_WORK/out"; }
cmp -s "$(node_base 1)/f" "$(node_base 2)/f" && ok "received" || fail "not received"
[ "$(stat -c %U "$(node_base 2)/f")" = nobody ] && ok "owned by the daemon's user" || fail "owner $(stat -c %U "$(node_base 2)/f")"

t_name "symlinks planted in the state directory by the daemon's user lead root nowhere"
node_stop 2
st=$MK_WORK/nodes/2/state
victim=$MK_WORK/victim vdir=$MK_WORK/victim-dir
echo "root's own" > "$victim"; chmod 600 "$victim"; mkdir -p "$vdir"
before=$(stat -c '%u:%g %a %s %Y' "$victim" "$vdir")
# As a release 0.1 state directory was: the daemon's user's, with every name root touches a link.
rm -rf "$st"; mkdir -p "$st/daemon"; chown -R nobody:nogroup "$st"
chmod o+x "$MK_WORK" "$MK_WORK/nodes" "$MK_WORK/nodes/2"   # the user reaches its state directory
for n in index index.log last-contact tombstones .last-contact.tmp .index.tmp; do
  su -s /bin/sh nobody -c "ln -s '$victim' '$st/$n'"; done
for n in journal notify; do su -s /bin/sh nobody -c "ln -s '$vdir' '$st/$n'"; done
su -s /bin/sh nobody -c "ln -s '$victim' '$st/daemon/index.log'"
[ "$(find "$st" -type l | wc -l)" = 9 ] && ok "9 links planted by the daemon's user" || fail "links: $(find "$st" -type l)"
MK_DAEMON_ARGS="-u nobody -g nogroup" node_start 2 2>/dev/null   # refuses or runs: either way
node_mount 2 || fail "makuofs did not mount"
echo probe > "$(node_mnt 2)/through-the-mount" 2>/dev/null
node_umount 2; node_stop 2
[ "$(stat -c '%u:%g %a %s %Y' "$victim" "$vdir")" = "$before" ] && [ "$(cat "$victim")" = "root's own" ] \
  && ok "nothing outside changed: $(stat -c '%U:%G %a' "$victim")" || fail "touched: $(stat -c '%U:%G %a %s' "$victim" "$vdir")"
[ -z "$(ls -A "$vdir")" ] && ok "nothing created in the other directory" || fail "$(ls -A "$vdir")"
[ "$(stat -c %U "$st")" = root ] && [ "$(stat -c %U "$st/journal")" = nobody ] && [ ! -L "$st/journal" ] \
  && ok "the state directory is root's, its journal the daemon's user's" || fail "$(ls -la "$st")"
t_finish
