#!/usr/bin/env bash
# Three nodes, each with its base directory mounted by makuofs: what is done through node 1's
# mount reaches nodes 2 and 3 by itself; nothing recorded is lost when makuosan or makuofs dies.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
MK_DAEMON_ARGS="--exclude *.log -d 1" t_cluster 3  # -d 1: a log line per file pushed
node_mount 1 || exit 1
node_mount 2 timeout=3600 || exit 1  # long kernel caches: only invalidation can show news
node_mount 3 || exit 1
m1=$(node_mnt 1) m2=$(node_mnt 2) b1=$(node_base 1) b2=$(node_base 2) b3=$(node_base 3)
log1=$(node_logf 1)

t_name "a file written through node 1's mount appears on nodes 2 and 3"
ls "$m2/hello.txt" >/dev/null 2>&1  # node 2's kernel now caches "no such file" for an hour
head -c 300000 /dev/urandom >"$MK_WORK/payload"
cp "$MK_WORK/payload" "$m1/hello.txt"
wait_for 15 converged 3 && ok "byte-identical everywhere" || { fail "not converged"; same_tree "$b1" "$b2"; }
cmp -s "$MK_WORK/payload" "$b3/hello.txt" && ok "content intact" || fail "content differs"
wait_for 2 cmp -s "$MK_WORK/payload" "$m2/hello.txt" && ok "visible through node 2's mount at once (cache invalidated)" \
  || fail "node 2's mount does not show it"

t_name "mkdir -p, chmod, symlink, rename, delete propagate"
mkdir -p "$m1/a/b/c" && echo one >"$m1/a/b/c/one" && echo two >"$m1/a/two"
ln -s b/c/one "$m1/a/link" && chmod 750 "$m1/a/b" && chmod 600 "$m1/a/two"
wait_for 15 converged 3 && ok "tree with dirs, symlink, modes" || { fail "not converged"; same_tree "$b1" "$b2"; }
mv "$m1/a/two" "$m1/a/b/two-renamed" && rm "$m1/a/b/c/one" && rmdir "$m1/a/b/c"
wait_for 15 converged 3 && ok "rename, unlink, rmdir" || { fail "not converged"; same_tree "$b1" "$b2"; }
[ ! -e "$b2/a/two" ] && [ -f "$b2/a/b/two-renamed" ] && [ ! -e "$b3/a/b/c" ] && ok "old names gone" || fail "old names remain"

t_name "a rename moves the receivers' copy instead of resending it"
head -c 5000000 /dev/urandom >"$m1/big.bin"
wait_for 15 converged 3 || fail "big file did not arrive"
ino2=$(stat -c %i "$b2/big.bin")
mkdir -p "$m1/moved" && mv "$m1/big.bin" "$m1/moved/big.bin"
wait_for 15 converged 3 && ok "converged" || fail "not converged"
[ "$(stat -c %i "$b2/moved/big.bin" 2>/dev/null)" = "$ino2" ] && ok "node 2 renamed its own copy (same inode)" || fail "node 2 received it again"
mv "$m1/moved" "$m1/moved-dir"
wait_for 15 converged 3 && [ "$(stat -c %i "$b2/moved-dir/big.bin" 2>/dev/null)" = "$ino2" ] \
  && ok "directory rename: contents kept in place" || fail "directory rename resent content"

t_name "an editor's save (temp, fsync, rename) propagates the final content only"
python3 - "$m1" <<'PY'
import os, sys
d = sys.argv[1]
for v in range(5):
    tmp = os.path.join(d, ".doc.txt.swp")
    with open(tmp, "w") as f:
        f.write("version %d\n" % v)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(d, "doc.txt"))
PY
wait_for 15 converged 3 && [ "$(cat "$b3/doc.txt")" = "version 4" ] && ok "final version everywhere" || fail "doc.txt: $(cat "$b3/doc.txt" 2>&1)"
grep -q 'update node2:doc.txt$' "$log1" || fail "no log line for doc.txt (the check below would prove nothing)"
grep -q 'doc.txt.swp' "$log1" && fail "the temporary was sent: $(grep doc.txt.swp "$log1" | head -2)" || ok "the temporary never travelled"

t_name "excluded patterns and our temporaries never propagate"
echo noise >"$m1/debug.log" && echo tmp >"$m1/.makuo-tmp-x" && echo marker >"$m1/marker"
wait_for 15 test -f "$b2/marker" && wait_for 15 test -f "$b3/marker" || fail "marker did not arrive"
[ ! -e "$b2/debug.log" ] && [ ! -e "$b2/.makuo-tmp-x" ] && ok "neither arrived" || fail "excluded file propagated"
rm -f "$m1/debug.log" "$m1/.makuo-tmp-x"

t_name "with makuosan stopped on node 1, edits are journalled and sent when it is back"
node_stop 1
for i in $(seq 1 50); do echo "while down $i" >"$m1/down-$i"; done
mv "$m1/marker" "$m1/marker2" && rm "$m1/hello.txt"
sleep 0.3  # nothing may arrive while the daemon is down: give it a chance to be wrong
[ ! -e "$b2/down-1" ] && ok "nothing sent while down" || fail "sent while down?"
node_start 1 || exit 1
wait_members 3 || fail "membership"
wait_for 20 converged 3 && ok "50 files, a rename and a delete arrived after restart" || { fail "not converged"; same_tree "$b1" "$b2"; }

t_name "a file open for writing is held back until closed, then sent whole, also if the mount dies"
held() { node_msync 1 --status | grep -Eq " [1-9][0-9]* held open for writing"; }
writer() {  # writer PATH &: 1 MB, then once $MK_WORK/go exists another 1 MB, then close; $! is python
  exec python3 - "$1" "$MK_WORK/go" "$MK_WORK/wrote" <<'PY'
import os, sys, time
path, go, wrote = sys.argv[1:4]
f = open(path, "wb", buffering=0)
f.write(b"a" * 1000000)
open(wrote, "w").close()
while not os.path.exists(go):
    time.sleep(0.02)
os.remove(go)
f.write(b"b" * 1000000)
os.remove(wrote)
while not os.path.exists(go):  # a second go closes the file
    time.sleep(0.02)
os.remove(go)
f.close()
PY
}
rm -f "$MK_WORK/go" "$MK_WORK/wrote"
writer "$m1/held.bin" &
wpid=$!
wait_for 10 test -e "$MK_WORK/wrote" && wait_for 10 held && ok "held while open" || fail "not held: $(node_msync 1 --status | grep propagate)"
touch "$MK_WORK/go"; wait_for 10 test ! -e "$MK_WORK/wrote"
[ ! -e "$b2/held.bin" ] && [ ! -e "$b3/held.bin" ] && ok "nothing sent of the half-written file" || fail "sent while open for writing"
touch "$MK_WORK/go"; wait "$wpid"
wait_for 15 converged 3 && [ "$(stat -c %s "$b2/held.bin")" = 2000000 ] && ok "sent whole once closed" \
  || { fail "not converged"; same_tree "$b1" "$b2"; }
writer "$m1/held-crash.bin" &
wpid=$!
wait_for 10 test -e "$MK_WORK/wrote" && wait_for 10 held || fail "not held"
touch "$MK_WORK/go" && wait_for 10 test ! -e "$MK_WORK/wrote"  # the second MB, after the hold
node_fs_kill 1  # the file is still open: no release will ever be recorded
wait_for 15 cmp -s "$b1/held-crash.bin" "$b2/held-crash.bin" && [ "$(stat -c %s "$b2/held-crash.bin")" = 2000000 ] \
  && ok "sent when the dead mount's lock went" || fail "the write of a file open when the mount died was lost"
kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
rm -f "$MK_WORK/go" "$MK_WORK/wrote"
node_umount 1
node_mount 1 || exit 1

t_name "makuofs killed with SIGKILL mid-burst: every change it recorded arrives"
python3 - "$m1" "$MK_WORK/closed" <<'PY' &
import os, sys
d, log = sys.argv[1], open(sys.argv[2], "w")
for i in range(100000):
    try:
        with open(os.path.join(d, "burst-%05d" % i), "w") as f:
            f.write("burst %d\n" % i * 50)
    except OSError:
        break
    log.write("burst-%05d\n" % i)  # only after close() returned
    log.flush()
PY
writer=$!
wait_for 20 test -s "$MK_WORK/closed"
sleep 0.5
node_fs_kill 1
wait "$writer"
n=$(wc -l <"$MK_WORK/closed")
node_umount 1
[ "$n" -gt 10 ] && ok "$n files closed before the kill" || fail "only $n files written"
missing=0
while read -r f; do
  wait_for 20 test -f "$b3/$f" || { missing=$((missing + 1)); [ $missing -lt 4 ] && mk_log "missing on node 3: $f"; }
done <"$MK_WORK/closed"
[ $missing -eq 0 ] && ok "all $n on node 3" || fail "$missing of $n missing on node 3"
node_mount 1 || exit 1
# A file whose creation was under way when makuofs died exists in node 1's base without a
# record (its open() never returned): only a rescan would find it (catch-up, issue 5). Remove
# such leftovers through the mount, which records and propagates that.
for f in "$b1"/burst-*; do
  grep -qx "$(basename "$f")" "$MK_WORK/closed" || { mk_log "unacknowledged leftover: $(basename "$f")"; rm -f "$m1/$(basename "$f")"; }
done
echo after >"$m1/after-remount"
wait_for 20 converged 3 && ok "remounted, still replicating, trees identical" || { fail "not converged"; same_tree "$b1" "$b3"; }

t_name "makuosan killed with SIGKILL mid-push: nothing recorded is lost"
for i in $(seq 1 300); do head -c 20000 /dev/urandom >"$m1/k-$i"; done
node_kill 1
node_start 1 || exit 1
wait_members 3 || fail "membership"
wait_for 30 converged 3 && ok "300 files arrived after the crash" || { fail "not converged"; same_tree "$b1" "$b2"; }
node_msync 1 --status | grep -q 'journal   : backlog 0 bytes' && ok "journal fully propagated" || fail "$(node_msync 1 --status | grep journal)"
t_finish
