#!/usr/bin/env bash
# msync -r, -n, -t, --delete, --sync, excludes, --check, --members, --status, bad input,
# on a 4-node namespace cluster.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 4
b1=$(node_base 1)

t_name "msync -r makes every node identical"
mkdir -p "$b1/site/css" "$b1/site/empty dir" "$b1/deep/a/b/c/d" "$b1/日本語"
printf 'hello\n' > "$b1/site/index.html"
head -c 200000 /dev/urandom > "$b1/site/css/big.css"
echo "space" > "$b1/site/with space.txt"
echo "utf8" > "$b1/日本語/ファイル.txt"
echo deep > "$b1/deep/a/b/c/d/leaf"
: > "$b1/site/empty-file"
ln -s index.html "$b1/site/link"
ln -s /nonexistent/target "$b1/dangling"
ln "$b1/site/index.html" "$b1/site/hardlink.html"
chmod 0640 "$b1/site/index.html"; chmod 0700 "$b1/deep/a"; chmod 4755 "$b1/site/css/big.css"
mkfifo "$b1/fifo"
touch -d '2001-02-03 04:05:06.123456789' "$b1/site/css/big.css" "$b1/deep/a/b"
expect_rc 0 node_msync 1 -r
for i in 2 3 4; do same_tree "$b1" "$(node_base $i)" && ok "node $i identical" || fail "node $i differs"; done
[ "$(stat -c %h "$(node_base 3)/site/index.html")" = 2 ] && ok "hard link kept" || fail "hard link not kept"

t_name "a second push sends nothing"
expect_rc 0 node_msync 1 -r -v
[ ! -s "$MK_WORK/out" ] && ok "no update lines" || { fail "unexpected output"; cat "$MK_WORK/out"; }

t_name "-n lists what would change and changes nothing"
echo changed > "$b1/site/index.html"
before=$(tree_sig "$(node_base 2)")
expect_rc 0 node_msync 1 -r -n
grep -q '^(dryrun) \[update:site/index.html\]' "$MK_WORK/out" && ok "dry run lists the file" || { fail "dry-run output"; cat "$MK_WORK/out"; }
expect_rc 0 node_msync 1 -r -n -v
grep -q '^(dryrun) update node3:site/index.html' "$MK_WORK/out" && ok "per-host dry-run lines" || fail "no per-host line"
[ "$before" = "$(tree_sig "$(node_base 2)")" ] && ok "node 2 unchanged" || fail "dry run changed node 2"

t_name "-t reaches only that host"
expect_rc 0 node_msync 1 -t node3 -v site/index.html
grep -q 'update node3:site/index.html' "$MK_WORK/out" && ok "reported" || fail "no update line"
cmp -s "$b1/site/index.html" "$(node_base 3)/site/index.html" && ok "node 3 updated" || fail "node 3 not updated"
cmp -s "$b1/site/index.html" "$(node_base 2)/site/index.html" && fail "node 2 updated too" || ok "node 2 untouched"
expect_rc nonzero node_msync 1 -t nosuchhost site/index.html
grep -q 'nosuchhost is not contained in members' "$MK_WORK/err" && ok "unknown host is an error" || fail "no error line"

t_name "--delete removes what the sender lacks, excludes respected"
for i in 2 3 4; do echo junk > "$(node_base $i)/site/stale.html"; echo keep > "$(node_base $i)/site/keep.log"; mkdir -p "$(node_base $i)/gone/x"; done
expect_rc 0 node_msync 1 --delete -r -n --exclude='*.log'
grep -q '(dryrun) delete node2:site/stale.html' "$MK_WORK/out" && ok "dry-run delete listed" || { fail "dry-run delete"; cat "$MK_WORK/out"; }
[ -f "$(node_base 2)/site/stale.html" ] && ok "dry run deleted nothing" || fail "dry run deleted"
expect_rc 0 node_msync 1 --delete -r --exclude='*.log'
for i in 2 3 4; do
  [ ! -e "$(node_base $i)/site/stale.html" ] && [ ! -e "$(node_base $i)/gone" ] && [ -f "$(node_base $i)/site/keep.log" ] \
    && ok "node $i cleaned, excluded file kept" || fail "node $i: delete wrong"
done
for i in 2 3 4; do rm -f "$(node_base $i)/site/keep.log"; done
expect_rc 0 node_msync 1 -r   # repairs the directory mtimes that removing keep.log changed
for i in 2 3 4; do same_tree "$b1" "$(node_base $i)" && ok "node $i identical" || fail "node $i differs after --delete"; done

t_name "--sync of a path missing here deletes it there"
rm "$b1/site/with space.txt"
expect_rc 0 node_msync 1 --sync -v "site/with space.txt"
grep -q 'delete node2:site/with space.txt' "$MK_WORK/out" && ok "delete reported" || { fail "no delete line"; cat "$MK_WORK/out"; }
for i in 2 3 4; do [ ! -e "$(node_base $i)/site/with space.txt" ] && ok "node $i deleted" || fail "node $i kept it"; done

t_name "--check reports differing content at equal size and mtime"
f3="$(node_base 3)/site/css/big.css"
m=$(stat -c %y "$f3"); printf 'X' | dd of="$f3" bs=1 seek=100 conv=notrunc status=none; touch -d "$m" "$f3"
expect_rc nonzero node_msync 1 --check -r
grep -q '^node3: NG site/css/big.css' "$MK_WORK/out" && ok "NG reported" || { fail "no NG line"; cat "$MK_WORK/out" "$MK_WORK/err"; }
grep -q 'node2: NG' "$MK_WORK/out" && fail "node 2 reported NG" || ok "others OK"
expect_rc 0 node_msync 1 -r
grep -q . "$MK_WORK/out" ; cmp -s "$b1/site/css/big.css" "$f3" && fail "quick check should keep equal size+mtime" || ok "plain push trusts size+mtime (as makuosan)"

t_name "-g chgrps the source before sending, to a group of the daemon's only; -f runs a command file"
gid0=$(stat -c %g "$b1/site/index.html")
expect_rc nonzero node_msync 1 -g 1 -v site/index.html
cat "$MK_WORK/out" "$MK_WORK/err" | grep -q 'not found group 1' && [ "$(stat -c %g "$b1/site/index.html")" = "$gid0" ] \
  && ok "gid 1 refused: not one of the daemon's groups (as the name daemon would be)" || fail "numeric -g not checked"
node_stop 1; MK_DAEMON_ARGS="-G daemon" node_start 1 || exit 1
wait_members 4 || fail "membership"
expect_rc 0 node_msync 1 -g 1 -v site/index.html
[ "$(stat -c %g "$b1/site/index.html")" = 1 ] && ok "source chgrp'ed" || fail "source gid $(stat -c %g "$b1/site/index.html")"
for i in 2 3 4; do [ "$(stat -c %g "$(node_base $i)/site/index.html")" = 1 ] && ok "node $i has gid 1" || fail "node $i gid"; done
printf 'echo from-script\nsend -r site\n' > "$MK_WORK/script"
expect_rc 0 node_msync 1 -f "$MK_WORK/script"
grep -q '^from-script$' "$MK_WORK/out" && ok "script ran" || fail "script output"

t_name "--progress draws a progress line on a terminal"
head -c 20000000 /dev/urandom > "$b1/progress.bin"
for i in 1 2 3 4; do node_rate "$i" 100; done
script -qec "$MAKUO_BIN/msync -c unix:$(node_sock 1) --progress progress.bin" /dev/null > "$MK_WORK/tty" 2>&1
for i in 1 2 3 4; do swx tc qdisc del dev "${MK_PREFIX}v$i" root; nsx "$i" tc qdisc del dev eth0 root; done
grep -q 'files 0/1' "$MK_WORK/tty" && grep -q 'MiB/s' "$MK_WORK/tty" && ok "progress shown" || { fail "no progress line"; cat -v "$MK_WORK/tty" | head -5; }
cmp -s "$b1/progress.bin" "$(node_base 2)/progress.bin" && ok "pushed" || fail "not pushed"

t_name "--members and --status"
expect_rc 0 node_msync 2 --members
grep -q '^Total: 3 members' "$MK_WORK/out" && grep -q '^node1 ' "$MK_WORK/out" && ok "members listed" || { fail "members"; cat "$MK_WORK/out"; }
expect_rc 0 node_msync 2 --status
grep -q '^basedir : ' "$MK_WORK/out" && grep -q '^dropped : ' "$MK_WORK/out" && ok "status" || fail "status"

t_name "names with a newline, a tab, a backslash, a leading dash or \$' arrive byte for byte"
odd="$b1/odd"
mkdir -p "$odd"
names=($'new\nline' $'tab\there' 'back\slash' 'trail\' '-dash' "\$'dollar'" 'end space ' $'esc\e[2J' $'\xff\xfe')
for n in "${names[@]}"; do printf '%s' "$n" > "$odd/$n"; done
expect_rc 0 node_msync 1 -r -v odd
for i in 2 3 4; do same_tree "$b1/odd" "$(node_base $i)/odd" && ok "node $i has all ${#names[@]} names" || fail "node $i: names differ"; done
# Every output line is one line: a name's newline or escape never reaches the terminal raw.
! grep -q $'\e' "$MK_WORK/out" && grep -qF "update node2:\$'odd/new\\nline'" "$MK_WORK/out" \
  && ok "names quoted in the output" || { fail "output"; cat -A "$MK_WORK/out"; }
for n in "${names[@]}"; do printf 'v2' > "$odd/$n"; done
ok_all=1
for n in "${names[@]}"; do node_msync 1 "odd/$n" >/dev/null 2>&1 || ok_all=0; done
[ $ok_all = 1 ] && ok "each pushed by its own name" || fail "a single-name push failed"
for i in 2 3 4; do same_tree "$b1/odd" "$(node_base $i)/odd" && ok "node $i updated" || fail "node $i not updated"; done
rm -f "$odd/-dash" "$odd/"$'new\nline' "$odd/"$'tab\there'
expect_rc 0 node_msync 1 --delete -r --exclude=$'tab\there' odd
for i in 2 3 4; do
  [ ! -e "$(node_base $i)/odd/-dash" ] && [ ! -e "$(node_base $i)/odd/"$'new\nline' ] && [ -e "$(node_base $i)/odd/"$'tab\there' ] \
    && ok "node $i: deleted by --delete, excluded by its exact name" || fail "node $i: delete/exclude"
done
rm -rf "$odd"; expect_rc 0 node_msync 1 --delete -r

t_name "bad input: clear error, non-zero, nothing changed"
before=$(tree_sig "$(node_base 2)")
expect_rc nonzero node_msync 1 ../etc/passwd && grep -q 'error:' "$MK_WORK/err" && ok "../ refused" || fail "../ accepted"
expect_rc nonzero node_msync 1 /etc/passwd && ok "absolute refused" || fail "absolute accepted"
expect_rc nonzero node_msync 1 no/such/file && grep -q 'No such file' "$MK_WORK/err" && ok "missing file" || fail "missing file"
expect_rc nonzero node_msync 1 --bogus && grep -q 'unknown option' "$MK_WORK/err" && ok "unknown option" || fail "unknown option"
expect_rc nonzero "$MAKUO_BIN/msync" -c "unix:$MK_WORK/none.sock" --members && grep -q "can't connect" "$MK_WORK/err" && ok "dead daemon" || fail "dead daemon"
expect_rc nonzero "$MAKUO_BIN/makuosan" -n --frobnicate && grep -q 'unknown option: --frobnicate' "$MK_WORK/err" && ok "daemon unknown option" || fail "daemon option"
[ "$before" = "$(tree_sig "$(node_base 2)")" ] && ok "nothing changed" || fail "something changed"

garbage() {  # garbage DEST PORT: foreign and malformed datagrams, from node 2's namespace
  nsx 2 python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
g = (sys.argv[1], int(sys.argv[2]))
s.sendto(bytes([7, 2, 0, 0]) + b"\0" * 60, g)        # makuosan 1.3.x
s.sendto(b"MKO1", g)                                  # truncated
s.sendto(b"garbage" * 20, g)                          # not ours
s.sendto(b"MKO1\x02\x10\0\0" + b"\0" * 8 + b"\xff" * 30, g)  # malformed manifest
s.sendto(b"MKO1\x01\x02\0\0" + b"\0" * 8 + b"\x04web9\x050.1.0\0\0", g)  # makuo 0.1
PY
}
# A manifest of one empty file, from a node id nobody knows, sent to DEST:PORT.
intruder() {
  nsx 2 python3 - "$1" "$2" <<'PY'
import socket, struct, sys
entry = bytes([1, 0]) + struct.pack(">IIIQQ", 0o644, 0, 0, 0, 0) + b"\0\0" + struct.pack(">H", 9) + b"intruder!"
body = struct.pack(">IHHIIH", 77, 0, 1372, 1, 0, 1) + entry
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"MKO1\x02\x10\0\0" + (0x1badcafe).to_bytes(8, "big") + body, (sys.argv[1], int(sys.argv[2])))
PY
}
status_field() { node_msync 1 --status | sed -n "s/^$1 *: //p" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

t_name "keyed: foreign, garbage and unsealed datagrams are dropped before anything reads them"
p0=$(status_field auth plaintext)
garbage "$MK_GROUP" 5000
wait_for 5 test "$(status_field auth plaintext)" -ge $((p0 + 5)) && ok "5 unsealed datagrams counted" \
  || fail "auth: $(node_msync 1 --status | grep ^auth)"

t_name "--insecure: the engine's own checks, and pushes only from members by the group"
node_stop 1
MK_DAEMON_ARGS="--insecure" node_start 1 || exit 1   # alone: the keyed others drop its datagrams
garbage "$MK_GROUP" 5000
t=$((SECONDS + 5))
until node_msync 1 --status | grep -q 'makuosan=1' && node_msync 1 --status | grep -q 'malformed=1' &&
      node_msync 1 --status | grep -q 'bad_version=1'; do
  [ $SECONDS -lt $t ] || break; sleep 0.1; done
node_msync 1 --status | grep '^dropped' | grep -q 'truncated=1 bad_magic=1 makuosan=1 bad_version=1 malformed=1' && ok "counted" || { fail "drop counters"; node_msync 1 --status | grep dropped; }
grep -q "$(node_ip 2):[0-9]* speaks makuo protocol 1 and this node 2" "$(node_logf 1)" && ok "a release 0.1 peer is named in the log" \
  || fail "no line about the release 0.1 peer"
grep -q -- '--insecure: no cluster key' "$(node_logf 1)" && ok "warned at start" || fail "no --insecure warning"
intruder "$MK_GROUP" 5000      # by the group, from no member
intruder "$(node_ip 1)" 5000   # to the host's address: no socket listens there
uport=$(ss -Hunlp -N "$(node_ns 1)" 2>/dev/null | awk '/makuosan/ && $4 !~ /:5000$/ {sub(/.*:/, "", $4); print $4; exit}')
[ -n "$uport" ] && intruder "$(node_ip 1)" "$uport" || fail "node 1's unicast port not found"
wait_for 5 test "$(status_field dropped not_member)" -ge 2 && ok "refused: $(node_msync 1 --status | grep -o 'not_member=[0-9]*')" \
  || fail "not counted: $(node_msync 1 --status | grep ^dropped)"
[ ! -e "$b1/intruder!" ] && ok "nothing written" || fail "the intruder's file was written"
t_finish
