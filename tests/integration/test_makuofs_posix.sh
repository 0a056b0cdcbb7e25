#!/usr/bin/env bash
# makuofs behaves like the file system under it: the same operations on a plain directory and
# through a mount give the same results and errno (as root and as another user), real clients
# work on it, and the mount's life cycle is what mount units expect.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
frozen=
thaw_and_release() {  # the section on a frozen file system, should it have failed half-way
  [ -n "$frozen" ] && fsfreeze -u "$frozen"
  node_umount 4 2>/dev/null
  mountpoint -q "$(node_base 4)" && umount -l "$(node_base 4)"
}
trap 'thaw_and_release; cluster_down' EXIT
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
plain=$MK_WORK/plain
mkdir -p "$plain"
chmod 755 "$MK_WORK" "$plain"
node_mount 1 allow_other,xattr || exit 1
mnt=$(node_mnt 1)
chmod 755 "$MK_WORK/nodes" "$MK_WORK/nodes/1" "$mnt"
t_name "what the kernel agreed to"
wait_for 10 grep -q 'kernel: passthrough' "$MK_WORK/nodes/1/makuofs.log" || fail "no INIT line in the log"
mk_log "$(grep -o 'kernel: .*' "$MK_WORK/nodes/1/makuofs.log")"
if [ "${MK_FUSE_EXPECT:-}" = uring ]; then
  # test_makuofs_uring.sh switched the fuse module's enable_uring on for this run
  wait_for 10 grep -q 'io_uring queues, one per CPU' "$MK_WORK/nodes/1/makuofs.log" \
    && ok "requests served on io_uring queues" || fail "no io_uring queues"
fi

t_name "stopped and continued (as when a debugger attaches), the mount still answers"
# A stop interrupts the threads' waits; each must take up its work again, or requests made on
# its CPU hang.
kill -STOP "$(node_fs_pid 1)" && sleep 0.2 && kill -CONT "$(node_fs_pid 1)"
# A request that reached a dead queue waits even through SIGKILL: probe in the background (the
# exit trap's unmount ends it if it hangs).
for cpu in $(seq 0 $(($(nproc) - 1))); do
  taskset -c "$cpu" sh -c "echo $cpu >'$mnt/cpu$cpu' && cat '$mnt/cpu$cpu'" >/dev/null || exit 1
done &
probe=$!
if ! wait_for 10 sh -c "! kill -0 $probe"; then
  fail "a request hangs"
  exit 1
fi
wait "$probe" && ok "answers on each of $(nproc) CPUs" || fail "probe failed"
rm -f "$mnt"/cpu*

t_name "the same operations give the same results, errno and trees"
python3 "$here/posix_ops.py" "$plain" >"$MK_WORK/plain.out" 2>&1
python3 "$here/posix_ops.py" "$mnt" >"$MK_WORK/mnt.out" 2>&1
if diff "$MK_WORK/plain.out" "$MK_WORK/mnt.out" >"$MK_WORK/diff"; then
  ok "$(grep -vc '^tree' "$MK_WORK/plain.out") steps identical"
else
  fail "differences:"; head -30 "$MK_WORK/diff" >&2
fi
grep -q '^readdir 10000 entries: ok \[10000' "$MK_WORK/mnt.out" && ok "10,000 entries listed" || fail "readdir"
grep -q '^unlink of an open file: ok \[b.STILL here., 0, \[\], False\]' "$MK_WORK/mnt.out" \
  && ok "open unlinked file readable, no .fuse_hidden" || fail "unlink of an open file"
grep -q '^path of PATH_MAX-1 bytes: ok \[4095' "$MK_WORK/mnt.out" && ok "4095-byte path" || fail "long path"

t_name "permissions are the base's, and what a user creates is the user's"
python3 "$here/posix_ops.py" "$plain" --as-user 65534:65534:4242 >"$MK_WORK/plain-u.out" 2>&1
python3 "$here/posix_ops.py" "$mnt" --as-user 65534:65534:4242 >"$MK_WORK/mnt-u.out" 2>&1
if diff "$MK_WORK/plain-u.out" "$MK_WORK/mnt-u.out" >"$MK_WORK/diff"; then
  ok "identical as uid 65534"
else
  fail "differences:"; head -30 "$MK_WORK/diff" >&2
fi
grep -q '^user create in 1777 dir: ok 100640 65534:65534' "$MK_WORK/mnt-u.out" && ok "owned by the user" || fail "owner"
grep -q '^user mkdir in setgid dir: ok 42750 65534:4242' "$MK_WORK/mnt-u.out" \
  && ok "a directory made through a supplementary group's right: the user's, the directory's group" \
  || fail "mkdir in setgid dir: $(grep 'mkdir in setgid' "$MK_WORK/mnt-u.out")"
grep -q '^user read 0600 root file: EACCES' "$MK_WORK/mnt-u.out" && ok "EACCES enforced" || fail "permissions"

t_name "a name filled in the base since the kernel looked it up is opened with the caller's rights"
# The kernel holds the name as absent (just looked up) and sends CREATE for it; meanwhile the
# daemon put something there (here root does, in the base). makuofs runs as root and gives
# what it creates to the caller: it must not open a root-only file for the caller and hand it
# over, nor follow a symlink to a file outside the base.
mkdir -m 1777 "$mnt/late" && mkdir -p "$MK_WORK/outside" || fail "setup"
echo secret >"$MK_WORK/outside/target" && chmod 600 "$MK_WORK/outside/target"
python3 - "$mnt/late" "$(node_base 1)/late" "$MK_WORK/outside/target" >"$MK_WORK/late.out" 2>&1 <<'PY'
import os, sys
mnt, base, target = sys.argv[1:]
def as_user(path):
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
            print("ok")
        except OSError as e:
            print(os.strerror(e.errno))
        os._exit(0)
    os.waitpid(pid, 0)
for name in ("file", "link"):
    try:
        os.stat(f"{mnt}/{name}")  # the kernel now caches the name as absent
    except FileNotFoundError:
        pass
with open(f"{base}/file", "w") as f:
    f.write("root's\n")
os.symlink(target, f"{base}/link")
print("file:", end=" ", flush=True); as_user(f"{mnt}/file")
print("link:", end=" ", flush=True); as_user(f"{mnt}/link")
PY
grep -qx 'file: Permission denied' "$MK_WORK/late.out" && grep -qx 'link: Permission denied' "$MK_WORK/late.out" \
  && ok "the caller gets EACCES for both, as on a plain directory" || fail "$(cat "$MK_WORK/late.out")"
[ "$(stat -c '%U %s' "$(node_base 1)/late/file")" = "root 7" ] && ok "root's file in the base is untouched" \
  || fail "root's file: $(stat -c '%U %s' "$(node_base 1)/late/file")"
[ "$(stat -c '%U %s' "$MK_WORK/outside/target")" = "root 7" ] && ok "the file outside the base is untouched" \
  || fail "outside the base: $(stat -c '%U %s' "$MK_WORK/outside/target")"
rm -rf "$mnt/late"

t_name "what a user makes by name is made the user's, never what another writer put there"
# mkdirat, mknodat and symlinkat return no descriptor. Were the new object given to the caller
# by a chown of its name, whatever another writer (here root, in the base) put at that name in
# between would become the caller's. strace holds makuofs for 300 ms right after each of these
# calls; meanwhile root moves its own directory, or a link to its 0600 file, onto the name.
b=$(node_base 1)
mkdir -m 777 "$mnt/race" && mkdir -m 700 "$b/race/.vdir" && touch "$b/race/.vdir/root-owned" \
  && echo secret >"$b/race/.victim" && chmod 600 "$b/race/.victim" || fail "setup"
strace -f -p "$(node_fs_pid 1)" -e trace=mkdirat,mknodat,symlinkat -o "$MK_WORK/strace.out" \
  -e inject=mkdirat,mknodat,symlinkat:delay_exit=300000 2>"$MK_WORK/strace.err" &
strace_pid=$!
# Attached once a creation through the mount shows up delayed in its output.
t=$((SECONDS + 20)) k=0
until grep -q 'probe.*DELAYED' "$MK_WORK/strace.out" 2>/dev/null; do
  [ $SECONDS -lt $t ] || { fail "strace did not attach: $(cat "$MK_WORK/strace.err")"; break; }
  mkfifo "$mnt/race/.probe$k" 2>/dev/null; k=$((k + 1))
done
python3 - "$mnt/race" "$b/race" >"$MK_WORK/race.out" 2>&1 <<'PY'
import os, sys, time
mnt, base = sys.argv[1:]
user = os.fork()
if user == 0:  # uid 65534, through the mount
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    for n, make in (("d", os.mkdir), ("p", os.mkfifo), ("l", lambda p: os.symlink("x", p))):
        try:
            make(f"{mnt}/{n}")
            print(n, "made")
        except OSError as e:
            print(n, os.strerror(e.errno))
    os._exit(0)
for n in ("d", "p", "l"):  # root, in the base: as soon as the user's object is there
    deadline = time.monotonic() + 10
    while not os.path.lexists(f"{base}/{n}") and time.monotonic() < deadline:
        pass
    if n == "d":
        os.rename(f"{base}/.vdir", f"{base}/d")
    else:
        os.link(f"{base}/.victim", f"{base}/.t")
        os.rename(f"{base}/.t", f"{base}/{n}")
os.waitpid(user, 0)
for p in ("d/root-owned", "d", ".victim"):
    st = os.lstat(f"{base}/{p}")
    print("victim", p, st.st_uid, st.st_gid)
PY
kill "$strace_pid" 2>/dev/null; wait "$strace_pid" 2>/dev/null
n=$(grep -c '^victim .* 0 0$' "$MK_WORK/race.out")
[ "$n" = 3 ] && ok "root's directory and file moved onto the names stayed root's" \
  || fail "race: $(tr '\n' ' ' <"$MK_WORK/race.out")"
rm -rf "$mnt/race"

t_name "real clients: tar -x, rsync -a, git"
tar -C "$repo" -cf "$MK_WORK/src.tar" --exclude=build --exclude=.git .
mkdir -p "$plain/tar" "$mnt/tar"
expect_rc 0 tar -C "$plain/tar" -xf "$MK_WORK/src.tar"
expect_rc 0 tar -C "$mnt/tar" -xf "$MK_WORK/src.tar" && ok "untar through the mount"
same_tree "$plain/tar" "$mnt/tar" && ok "untarred trees identical (modes, owners, mtimes, contents)" || fail "tar trees differ"
expect_rc 0 rsync -a "$plain/tar/" "$mnt/rsync/" && ok "rsync into the mount"
same_tree "$plain/tar" "$mnt/rsync" && ok "rsync tree identical" || fail "rsync tree differs"
expect_rc 0 rsync -a --delete -c "$plain/tar/" "$mnt/rsync/"
grep -q . "$MK_WORK/out" && fail "second rsync did something: $(head -3 "$MK_WORK/out")" || ok "second rsync: nothing to do"
(
  cd "$mnt/tar" && git init -q . && git add -A && git -c user.name=t -c user.email=t@t commit -qm import &&
    echo change >>README.md && git commit -qam edit && git fsck --strict && git gc -q &&
    [ -z "$(git status --porcelain)" ] && [ "$(git rev-list --count HEAD)" = 2 ]
) >"$MK_WORK/git.out" 2>&1 && ok "git init/add/commit/fsck/gc" || { fail "git"; cat "$MK_WORK/git.out" >&2; }
expect_rc 0 rm -rf "$mnt/tar" "$mnt/rsync" && [ ! -e "$mnt/tar" ] && ok "rm -rf"

t_name "every change through the mount was recorded"
segs=$(ls "$MK_WORK/nodes/1/state/journal/"*.mkj 2>/dev/null | wc -l)
bytes=$(cat "$MK_WORK/nodes/1/state/journal/"*.mkj 2>/dev/null | wc -c)
[ "$segs" -ge 1 ] && [ "$bytes" -gt 100000 ] && ok "$segs segment(s), $bytes bytes" || fail "journal: $segs segments, $bytes bytes"
[ -z "$(ls "$plain"/.fuse_hidden* "$mnt"/.fuse_hidden* 2>/dev/null)" ] && ok "no .fuse_hidden files" || fail ".fuse_hidden litter"

t_name "a file's attributes set while it is being written are recorded with its close"
# tar sets owner, mode and times through the descriptor before close; the kernel sends them
# without it. One record at close covers them; a change to a closed file has its own.
jops() { python3 "$here/journal_ops.py" "$MK_WORK/nodes/1/state/journal" | grep " attrs.bin$"; }
python3 - "$mnt/attrs.bin" <<'PY' || fail "fchmod/fchown/futimens through the mount"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"x" * 10)
os.fchmod(fd, 0o640)
os.fchown(fd, 65534, 65534)
os.utime(fd, (1, 1))
os.close(fd)
PY
written() { jops | grep -q '^write'; }
wait_for 10 written || fail "no write record at close"
[ "$(jops | tr '\n' ' ')" = "create attrs.bin write attrs.bin " ] && ok "create, then one write record" \
  || fail "records: $(jops | tr '\n' ' ')"
chmod 0644 "$mnt/attrs.bin"
[ "$(jops | tail -1)" = "setattr attrs.bin" ] && ok "chmod of the closed file: a setattr record" \
  || fail "records: $(jops | tr '\n' ' ')"
[ "$(stat -c '%a %u %Y' "$(node_base 1)/attrs.bin")" = "644 65534 1" ] && ok "attributes in the base" \
  || fail "base: $(stat -c '%a %u %Y' "$(node_base 1)/attrs.bin")"

# The descriptor table is grown at start-up (after the fork), not doubled as inodes come in:
# each doubling in a running, threaded makuofs waits for an RCU grace period inside a request.
fd_table_sized() {  # fd_table_sized PID LABEL
  local size lim want
  size=$(awk '/^FDSize:/{print $2}' "/proc/$1/status" 2>/dev/null)
  lim=$(awk '/^Max open files/{print $4}' "/proc/$1/limits" 2>/dev/null)
  want=$((${lim:-65536} < 65536 ? ${lim:-65536} : 65536))
  [ "${size:-0}" -ge "$want" ] && ok "$2: descriptor table of $size slots (limit $lim)" \
    || fail "$2: descriptor table of ${size:-?} slots (limit ${lim:-?})"
}

t_name "life cycle: parent exits 0 only once mounted, errors exit 1, SIGTERM unmounts"
node_umount 1
is_mounted "$mnt" && fail "still mounted after unmount" || ok "unmounted"
expect_rc 1 "$MAKUO_BIN/makuofs" "$MK_WORK/nonexistent" "$mnt" && ok "missing base: exit 1"
expect_rc 1 "$MAKUO_BIN/makuofs" "$(node_base 1)" "$MK_WORK/nomnt" -o "state_dir=$MK_WORK/st2" && ok "missing mount point: exit 1"
expect_rc 1 "$MAKUO_BIN/makuofs" -o bogus "$(node_base 1)" "$mnt" && grep -q 'unknown mount option: bogus' "$MK_WORK/err" && ok "unknown option: exit 1 with a message"
expect_rc 1 "$MAKUO_BIN/makuofs" -Z "$(node_base 1)" "$mnt" && ok "unknown flag: exit 1"
expect_rc 0 "$MAKUO_BIN/makuofs" "$(node_base 1)" "$mnt" -o "state_dir=$MK_WORK/nodes/1/state,fsname=web,_netdev,nofail"
if is_mounted "$mnt"; then ok "mounted when the parent returned 0"; else fail "not mounted after exit 0"; fi
awk -v m="$mnt" '$2 == m {print $1, $3}' /proc/self/mounts | grep -q '^web fuse.makuofs$' && ok "fsname and subtype" || fail "$(grep "$mnt" /proc/self/mounts)"
fspid=$(pgrep -f "^$MAKUO_BIN/makuofs $(node_base 1) $mnt" | head -1)
fd_table_sized "$fspid" "daemonized"
[ -n "$fspid" ] && kill -TERM "$fspid"
t=$((SECONDS + 10)); while is_mounted "$mnt" && [ $SECONDS -lt $t ]; do sleep 0.05; done
is_mounted "$mnt" && { fail "SIGTERM did not unmount"; fusermount3 -u "$mnt"; } || ok "SIGTERM unmounted"

t_name "mounted over the base directory itself"
b=$(node_base 1)
expect_rc 0 "$MAKUO_BIN/makuofs" "$b" "$b" -o "state_dir=$MK_WORK/nodes/1/state"
echo over >"$b/over.txt" && [ "$(cat "$b/over.txt")" = over ] && ok "writes through a mount over itself" || fail "over itself"
strings "$MK_WORK/nodes/1/state/journal/"*.mkj | grep -q 'over.txt' && ok "recorded" || fail "not recorded"
fusermount3 -u "$b"; is_mounted "$b" && fail "still mounted" || ok "unmounted"
[ "$(cat "$b/over.txt")" = over ] && ok "the file is in the base directory" || fail "file not in base"

t_name "mount -t fuse.makuofs (helper found through PATH, in a private mount namespace)"
mkdir -p "$MK_WORK/sbin" && ln -sf "$MAKUO_BIN/makuofs" "$MK_WORK/sbin/makuofs"
unshare -m --propagation private bash -c "
  mount --bind '$MK_WORK/sbin' /usr/local/sbin &&
  mount -t fuse.makuofs '$b' '$mnt' -o 'state_dir=$MK_WORK/nodes/1/state,_netdev' &&
  echo via-mount > '$mnt/m.txt' && grep -q fuse.makuofs /proc/self/mounts && umount '$mnt'
" >"$MK_WORK/out" 2>&1 && [ "$(cat "$b/m.txt")" = via-mount ] && ok "mount -t fuse.makuofs works" || { fail "mount -t"; cat "$MK_WORK/out" >&2; }
pkill -f "^makuofs $b $mnt" 2>/dev/null || true

t_name "a low soft descriptor limit (systemd's 1024) does not cap the tree"
# One descriptor per inode the kernel holds: started with a soft limit of 256, makuofs must
# raise it, or a file held in the kernel's cache fails with EMFILE.
(ulimit -Sn 256 && node_mount 2) || exit 1
m2=$(node_mnt 2)
python3 - "$m2" >"$MK_WORK/out" 2>&1 <<'PY' && ok "2000 files created and held" || { fail "$(tail -1 "$MK_WORK/out")"; }
import os, sys
for i in range(2000):
    p = os.path.join(sys.argv[1], "f%04d" % i)
    with open(p, "w") as f:
        f.write("x")
    os.stat(p)
PY
[ "$(find "$(node_base 2)" -type f | wc -l)" = 2000 ] && ok "2000 in the base" || fail "$(find "$(node_base 2)" -type f | wc -l) files in the base"
fd_table_sized "$(node_fs_pid 2)" "holding 2000 files"

t_name "a tree larger than the descriptors allow: the kernel is asked to drop old inodes"
# The kernel holds a looked-up inode (and so our descriptor) until memory runs short: a walk of
# a tree larger than RLIMIT_NOFILE left every later lookup, even rm's, failing with EMFILE.
# max_inodes=300 stands for the limit here; the walk and the writes go on at once.
node_mount 3 max_inodes=300 || exit 1
m3=$(node_mnt 3)
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
python3 - "$m3" >"$MK_WORK/out" 2>&1 <<'PY' &
import os, sys
for d in range(10):
    os.mkdir(os.path.join(sys.argv[1], "d%d" % d))
    for i in range(300):
        p = os.path.join(sys.argv[1], "d%d" % d, "f%03d" % i)
        with open(p, "w") as f:
            f.write(p)
        os.stat(p)
PY
writer=$!
for k in 1 2 3; do ls -lR "$m3" >/dev/null 2>>"$MK_WORK/ls.err"; done
wait "$writer" && ok "3000 files written while the tree was listed" || fail "$(tail -1 "$MK_WORK/out")"
ls -lR "$m3" >/dev/null 2>>"$MK_WORK/ls.err"
[ -s "$MK_WORK/ls.err" ] && fail "ls -lR: $(head -2 "$MK_WORK/ls.err")" || ok "ls -lR without an error"
n=$(cat "$m3"/d*/* 2>"$MK_WORK/err" | wc -c)
[ "$n" -gt 0 ] && ! [ -s "$MK_WORK/err" ] && ok "every file read back ($n bytes)" || fail "read back: $(head -1 "$MK_WORK/err")"
few_fds() { [ "$(fds_of "$(node_fs_pid 3)")" -le 400 ]; }
wait_for 10 few_fds && ok "makuofs holds $(fds_of "$(node_fs_pid 3)") descriptors for 3010 objects" \
  || fail "makuofs holds $(fds_of "$(node_fs_pid 3)") descriptors (at most 300 inodes asked)"
grep -q 'asked it to drop' "$MK_WORK/nodes/3/makuofs.log" && ok "the pruning is logged" || fail "no pruning in the log"
expect_rc 0 rm -rf "$m3/d0" "$m3/d1" && ok "rm -rf"
[ "$(find "$(node_base 3)" -type f | wc -l)" = 2400 ] && ok "2400 files left in the base" \
  || fail "$(find "$(node_base 3)" -type f | wc -l) files in the base"
node_umount 3

t_name "without -o xattr: no extended attributes, a clear error, nothing set on the base"
python3 - "$m2/f0000" >"$MK_WORK/out" 2>&1 <<'PY' && ok "setxattr and getxattr: EOPNOTSUPP" || fail "$(tail -1 "$MK_WORK/out")"
import errno, os, sys
for call in (lambda: os.setxattr(sys.argv[1], "user.k", b"v"), lambda: os.getxattr(sys.argv[1], "user.k")):
    try:
        call()
        sys.exit("xattr call succeeded")
    except OSError as e:
        if e.errno != errno.EOPNOTSUPP:
            sys.exit("errno %d" % e.errno)
PY
python3 -c 'import os,sys; sys.exit(1 if os.listxattr(sys.argv[1]) else 0)' "$(node_base 2)/f0000" \
  && ok "base file has no xattr" || fail "an xattr reached the base"
node_umount 2

t_name "a request that waits does not hold up the others"
# One thread at a time reads the device (fs/request_loop.cpp). One that waits inside a request,
# here a chmod on a frozen file system, must let another read, or every request behind it
# waits too. The chmod's names are looked up before, so that it is a request of its own after
# a quiet spell: the reading thread itself serves it. Over io_uring (test_makuofs_uring.sh)
# each CPU has a queue of its own: both run on CPU 0, so another of that queue's threads must
# serve the read.
b4=$(node_base 4)
mkdir -p "$b4"
if truncate -s 32M "$MK_WORK/frozen.img" && mkfs.ext4 -q -F "$MK_WORK/frozen.img" &&
  mount -o loop "$MK_WORK/frozen.img" "$b4"; then
  mkdir "$b4/sub" && echo old >"$b4/seen" && echo f >"$b4/sub/f" && chmod 644 "$b4/sub/f"
  node_mount 4 || exit 1
  m4=$(node_mnt 4)
  stat "$m4/sub/f" >/dev/null
  fsfreeze -f "$b4" && frozen=$b4
  taskset -c 0 chmod 600 "$m4/sub/f" &
  chmodder=$!
  waiting_thread() { grep -q '^State:.*D' /proc/"$(node_fs_pid 4)"/task/*/status; }
  wait_for 10 waiting_thread && ok "the chmod waits inside makuofs" || fail "no makuofs thread waits"
  taskset -c 0 cat "$m4/seen" >"$MK_WORK/probe.out" 2>&1 &
  probe=$!
  wait_for 10 sh -c "! kill -0 $probe" && [ "$(cat "$MK_WORK/probe.out")" = old ] \
    && ok "a file read meanwhile" || fail "the read waited behind the chmod"
  kill -0 "$chmodder" 2>/dev/null && ok "the chmod still waits" || fail "the chmod did not wait"
  fsfreeze -u "$b4" && frozen=
  wait "$chmodder" && [ "$(stat -c %a "$b4/sub/f")" = 600 ] && ok "the chmod done after the thaw" \
    || fail "the chmod after the thaw"
  wait "$probe"
  node_umount 4
  umount "$b4"
else
  mk_log "skipped: no loop device here for a file system to freeze"
fi
t_finish
