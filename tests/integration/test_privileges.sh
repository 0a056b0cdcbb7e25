#!/usr/bin/env bash
# -u/-g drop privileges for real (all four ids), after binding; such a node still receives.
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
t_finish
