#!/usr/bin/env bash
# Replay after a restart (cluster keys): a push and an msync --delete captured on the wire are
# replayed after the receivers restarted. Nothing changes: a deleted file does not come back, a
# file created since is not deleted, and the drops are counted.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap 'touch "$MK_WORK/stop"; cluster_down' EXIT
INJ="$(dirname "$0")/inject.py"
cluster_net 4 || exit 1   # node 4: the attacker's namespace, no daemon
key="$MK_WORK/key"; head -c 32 /dev/urandom > "$key"; chmod 600 "$key"
for i in 1 2 3; do MK_DAEMON_ARGS="-k $key" node_start "$i" || exit 1; done
wait_members 3 && wait_catchup 3 || exit 1
b1=$(node_base 1) b2=$(node_base 2) b3=$(node_base 3)
auth() { node_msync "$1" --status | sed -n 's/^auth    : //p'; }
counter() { auth "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

t_name "a keyed push and an msync --delete are captured"
nsx 4 python3 "$INJ" record "$MK_GROUP" 5000 "$MK_WORK/wire" "$MK_WORK/stop" &
rec=$!
wait_for 10 test -e "$MK_WORK/wire.ready" || fail "the recorder did not start"
echo "deleted later" > "$b1/f"
expect_rc 0 node_msync 1 -r f
rm "$b1/f"
expect_rc 0 node_msync 1 --delete -r
touch "$MK_WORK/stop"; wait $rec
[ ! -e "$b2/f" ] && [ ! -e "$b3/f" ] && ok "f pushed, then deleted everywhere" || fail "f still there"
[ -s "$MK_WORK/wire" ] && ok "$(stat -c %s "$MK_WORK/wire") bytes captured" || fail "nothing captured"
echo "created since" > "$b1/g"
expect_rc 0 node_msync 1 -r g
[ -e "$b2/g" ] && [ -e "$b3/g" ] && ok "g created since, everywhere" || fail "g missing"

t_name "the receivers restart; the capture is replayed: nothing changes"
for i in 2 3; do node_stop "$i"; MK_DAEMON_ARGS="-k $key" node_start "$i" || exit 1; done
wait_members 3 && wait_catchup 3 || fail "membership after the restarts"
received() { node_msync 2 --status | sed -n 's/^sessions: .* received=//p'; }
before2=$(tree_sig "$b2") before3=$(tree_sig "$b3") s0=$(received)
u0=$(( $(counter 2 unproven) + $(counter 2 replay) ))
n=$(nsx 4 python3 "$INJ" replay-all "$MK_GROUP" 5000 "$MK_WORK/wire")
ok "$n datagrams replayed"
drops() { [ $(( $(counter 2 unproven) + $(counter 2 replay) )) -ge $(( u0 + n / 2 )) ]; }
wait_for 10 drops && ok "node 2 dropped them: $(auth 2)" || fail "node 2 did not count them: $(auth 2)"
[ "$(received)" = "$s0" ] && ok "no push was taken" || fail "node 2 took $(( $(received) - s0 )) push(es)"
[ ! -e "$b2/f" ] && [ ! -e "$b3/f" ] && ok "the deleted file did not come back" || fail "f came back"
[ -e "$b2/g" ] && [ -e "$b3/g" ] && ok "the file created since was not deleted" || fail "g was deleted"
[ "$before2" = "$(tree_sig "$b2")" ] && [ "$before3" = "$(tree_sig "$b3")" ] && ok "no file changed" \
  || fail "files changed"

t_name "the sender restarted too: its old node id is never proven again"
node_stop 1; MK_DAEMON_ARGS="-k $key" node_start 1 || exit 1
wait_members 3 || fail "membership"
nsx 4 python3 "$INJ" replay-all "$MK_GROUP" 5000 "$MK_WORK/wire" >/dev/null
[ ! -e "$b2/f" ] && [ -e "$b2/g" ] && [ "$before2" = "$(tree_sig "$b2")" ] && ok "nothing changed" || fail "files changed"
echo "still works" > "$b1/h"
expect_rc 0 node_msync 1 -r h && [ -e "$b2/h" ] && ok "the cluster still pushes" || fail "push after the replays"
t_finish
