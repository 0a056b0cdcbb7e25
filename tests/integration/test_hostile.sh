#!/usr/bin/env bash
# A member that lies (tests/tools/hostile_peer): pushes that claim four million entries or a
# file as large as the disk cost a receiver what arrived of them, and a flood of entries that
# do arrive stops at --recv-memory, refused with a reason and given back when the push ends.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
export MK_DAEMON_ARGS="--insecure"   # the lying member has no key to join a keyed cluster with
t_cluster 3
hostile="$MAKUO_BIN/tests/hostile_peer"
peak_kib() { awk '/^VmHWM/ {print $2}' "/proc/$(node_pid "$1")/status"; }
status_line() { node_msync "$1" --status | sed -n "s/^$2 *: //p"; }
pushes_over() { [ "$(status_line "$1" 'recv op')" = 0 ]; }

t_name "claims of 4,000,000 entries and of a file as large as the disk cost what arrived"
size=$(( $(df --output=avail -B1 "$(node_base 1)" | tail -1) / 2 ))
nsx 3 "$hostile" "$MK_GROUP" 5000 claims "$size" > "$MK_WORK/hostile" 2>&1 \
  && ok "sent: $(cat "$MK_WORK/hostile")" || fail "hostile_peer: $(cat "$MK_WORK/hostile")"
for i in 1 2; do
  wait_for 10 pushes_over $i && ok "node $i: every lying push ended" || fail "node $i: $(status_line $i 'recv op')"
  p=$(peak_kib $i)
  [ "$p" -lt 65536 ] && ok "node $i: peak resident $((p / 1024)) MiB (< 64)" || fail "node $i: peak resident $((p / 1024)) MiB"
  [ -z "$(find "$(node_base $i)" -name '.makuo-tmp-*')" ] && ok "node $i: no temporary left" || fail "node $i: temporaries left"
  [ "$(status_line $i 'recv mem' | cut -d' ' -f1)" = 0 ] && ok "node $i: all memory given back" || fail "node $i: $(status_line $i 'recv mem')"
done

t_name "a flood of entries over --recv-memory is refused with a reason, and given back"
node_stop 1
MK_DAEMON_ARGS="--insecure --recv-memory 16" node_start 1 || exit 1
wait_for 10 sh -c "[ \"\$(\"$MAKUO_BIN/msync\" -c unix:$(node_sock 1) --members | sed -n 's/^Total: \([0-9]*\) members/\1/p')\" -ge 1 ]"
nsx 3 "$hostile" "$MK_GROUP" 5000 flood > "$MK_WORK/hostile" 2>&1 \
  && ok "sent: $(cat "$MK_WORK/hostile")" || fail "hostile_peer: $(cat "$MK_WORK/hostile")"
grep -q 'entries refused from #[0-9]* on: the memory for receiving pushes (16 MiB in all, --recv-memory) is used up' "$(node_logf 1)" \
  && ok "logged: $(grep -o 'entries refused from #[0-9]*' "$(node_logf 1)" | head -1)" || fail "no refusal logged"
refused=$(status_line 1 'recv mem' | sed -n 's/.*refused \([0-9]*\)/\1/p')
[ "${refused:-0}" -gt 0 ] && ok "$refused entries refused (status)" || fail "status: $(status_line 1 'recv mem')"
p=$(peak_kib 1)
[ "$p" -lt 65536 ] && ok "peak resident $((p / 1024)) MiB (< 64)" || fail "peak resident $((p / 1024)) MiB"
wait_for 10 pushes_over 1 && [ "$(status_line 1 'recv mem' | cut -d' ' -f1)" = 0 ] \
  && ok "given back when the push ended" || fail "$(status_line 1 'recv mem')"
# Node 2 took the whole flood (256 MiB by default) and answered it; node 1 takes honest pushes.
mkdir -p "$(node_base 2)/after"; echo fine > "$(node_base 2)/after/f"
expect_rc 0 node_msync 2 -r after
cmp -s "$(node_base 2)/after/f" "$(node_base 1)/after/f" && ok "an honest push gets through afterwards" || fail "honest push: $(cat "$MK_WORK/err")"
t_finish
