#!/usr/bin/env bash
# Cluster keys: keyed nodes exchange files; other keys and no key never do; forged, replayed,
# truncated, oversized and unsealed datagrams are dropped and counted; keys roll without downtime.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap cluster_down EXIT
INJ="$(dirname "$0")/inject.py"
cluster_net 4 || exit 1
keys="$MK_WORK/keys"; mkdir -p "$keys"
head -c 32 /dev/urandom > "$keys/A"; head -c 32 /dev/urandom > "$keys/B"; chmod 600 "$keys"/*
auth() { node_msync "$1" --status | sed -n 's/^auth    : //p'; }
counter() { auth "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

t_name "a key file readable by others is refused"
cp "$keys/A" "$keys/open"; chmod 644 "$keys/open"
expect_rc nonzero "$MAKUO_BIN/makuosan" -n -b /tmp -k "$keys/open" -U "$MK_WORK/x.sock"
grep -q 'readable by others' "$MK_WORK/err" && ok "refused: $(head -1 "$MK_WORK/err")" || fail "accepted a 0644 key file"

t_name "no key: refused unless --insecure, with a line that says how to make one"
expect_rc nonzero "$MAKUO_BIN/makuosan" -n -b /tmp -U "$MK_WORK/x.sock"
[ "$(wc -l < "$MK_WORK/err")" = 1 ] && grep -q "makuosan --gen-key" "$MK_WORK/err" && ok "refused: $(cat "$MK_WORK/err")" \
  || fail "no clear refusal: $(cat "$MK_WORK/err")"
expect_rc 0 "$MAKUO_BIN/makuosan" --gen-key "$keys/new"
[ "$(stat -c '%a %s' "$keys/new")" = "600 32" ] && ok "--gen-key: 32 bytes, mode 600" || fail "$(stat -c '%a %s' "$keys/new")"
cp "$keys/new" "$keys/new.before"
expect_rc nonzero "$MAKUO_BIN/makuosan" --gen-key "$keys/new"
cmp -s "$keys/new" "$keys/new.before" && ok "an existing key file is not overwritten" || fail "key file overwritten"

t_name "nodes with the key push to each other; another key and no key are kept out"
for i in 1 2 3; do MK_DAEMON_ARGS="-k $keys/A" node_start "$i" || exit 1; done
MK_DAEMON_ARGS="-k $keys/B" node_start 4 || exit 1
wait_members 3 2 && wait_catchup 3 || fail "keyed nodes do not see each other"
node_msync 4 --members | grep -q '^Total: 0 members' && ok "node 4 (key B) sees nobody" || fail "node 4 sees members"
mkdir -p "$(node_base 1)/site"; echo secret > "$(node_base 1)/site/index.html"
expect_rc 0 node_msync 1 -r -v
grep -q 'update node4' "$MK_WORK/out" && fail "pushed to node 4"
for i in 2 3; do cmp -s "$(node_base 1)/site/index.html" "$(node_base $i)/site/index.html" && ok "node $i received" || fail "node $i did not receive"; done
[ ! -e "$(node_base 4)/site" ] && ok "node 4 received nothing" || fail "node 4 got files"
[ "$(counter 4 unknown_key)" -gt 0 ] && ok "node 4 counts foreign-key datagrams: $(auth 4)" || fail "node 4 counters: $(auth 4)"
node_stop 4; MK_DAEMON_ARGS="--insecure" node_start 4   # no key at all
t=$((SECONDS + 10)); until [ "$(counter 1 plaintext)" -gt 0 ] && [ "$(counter 4 no_key)" -gt 0 ]; do
  [ $SECONDS -lt $t ] || break; sleep 0.1; done
[ "$(counter 1 plaintext)" -gt 0 ] && ok "node 1 drops the unkeyed node's datagrams: $(auth 1)" || fail "node 1: $(auth 1)"
[ "$(counter 4 no_key)" -gt 0 ] && ok "the unkeyed node drops sealed ones: $(auth 4)" || fail "node 4: $(auth 4)"
node_msync 1 --members | grep -q node4 && fail "unkeyed node became a member" || ok "unkeyed node is no member"

t_name "forged, replayed, truncated, oversized and unsealed datagrams"
before=$(tree_sig "$(node_base 2)")
nsx 3 python3 "$INJ" capture "$MK_GROUP" 5000 "$MK_WORK/pkt" "$(node_ip 1)" &
cap=$!
wait $cap || fail "no sealed datagram captured"
node_stop 4   # its unsealed heartbeats would blur the counters
b0=$(counter 2 bad_tag); r0=$(counter 2 replay); t0=$(counter 2 truncated); p0=$(counter 2 plaintext)
nsx 3 python3 "$INJ" replay "$MK_GROUP" 5000 "$MK_WORK/pkt"
nsx 3 python3 "$INJ" attack "$MK_GROUP" 5000 "$MK_WORK/pkt"
t=$((SECONDS + 5)); until [ "$(counter 2 replay)" -gt "$r0" ] && [ "$(counter 2 bad_tag)" -ge $((b0 + 3)) ]; do
  [ $SECONDS -lt $t ] || break; sleep 0.1; done
[ "$(counter 2 replay)" -gt "$r0" ] && ok "replay counted" || fail "replay not counted: $(auth 2)"
[ "$(counter 2 bad_tag)" -ge $((b0 + 3)) ] && ok "forgeries counted: $(auth 2)" || fail "forgeries: $(auth 2)"
[ "$(counter 2 truncated)" -gt "$t0" ] && ok "truncated counted" || fail "truncated: $(auth 2)"
[ "$(counter 2 plaintext)" -gt "$p0" ] && ok "unsealed counted" || fail "unsealed: $(auth 2)"
node_msync 2 --members | grep -q evil1 && fail "forged hello made a member" || ok "no forged member"
[ "$before" = "$(tree_sig "$(node_base 2)")" ] && ok "no file changed" || fail "files changed"
echo again > "$(node_base 1)/site/index.html"
expect_rc 0 node_msync 1 -r && cmp -s "$(node_base 1)/site/index.html" "$(node_base 2)/site/index.html" \
  && ok "the cluster still works" || fail "cluster broken after the attack"

t_name "key rotation: -k NEW -k OLD seals with NEW and opens both"
node_stop 2; MK_DAEMON_ARGS="-k $keys/B -k $keys/A" node_start 2
node_stop 1; MK_DAEMON_ARGS="-k $keys/A -k $keys/B" node_start 1
wait_members 1 2 || fail "node 1 (A, opens B) does not see nodes 2 and 3"
echo rolled > "$(node_base 1)/site/index.html"
expect_rc 0 node_msync 1 -r
for i in 2 3; do cmp -s "$(node_base 1)/site/index.html" "$(node_base $i)/site/index.html" && ok "node $i received during the roll" || fail "node $i missed the push"; done
node_msync 3 --members | grep -q node2 && fail "node 3 (A only) hears node 2 (seals with B)" || ok "node 3 does not hear B-sealed node 2 yet"
t_finish
