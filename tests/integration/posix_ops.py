#!/usr/bin/env python3
"""Runs a fixed list of file-system operations in DIR and prints one line per step: what it
returned (or its errno) and what it left behind. Run it on a plain directory and on a makuofs
mount: the outputs must be identical. Usage: posix_ops.py DIR [--as-user UID:GID]"""
import ctypes
import errno
import hashlib
import mmap
import os
import stat
import sys

root = sys.argv[1]
out = []
libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def step(name, fn):
    try:
        r = fn()
        out.append("%s: ok %s" % (name, "" if r is None else r))
    except OSError as e:
        out.append("%s: %s" % (name, errno.errorcode.get(e.errno, e.errno)))


def desc(p):
    try:
        return describe(p)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def describe(p):
    st = os.lstat(p)
    s = "%o %d:%d nlink=%d" % (st.st_mode, st.st_uid, st.st_gid, st.st_nlink)
    if stat.S_ISREG(st.st_mode):
        with open(p, "rb") as f:
            s += " size=%d sha=%s" % (st.st_size, hashlib.sha256(f.read()).hexdigest()[:12])
    elif stat.S_ISLNK(st.st_mode):
        s += " -> " + os.readlink(p)
    return s


def renameat2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write(p, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode=0o644):
    fd = os.open(p, flags, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return desc(p)


def read(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def user_steps():
    step("user create in 0755 root dir", lambda: write("ro/x", b"x"))
    step("user create in 1777 dir", lambda: write("pub/mine", b"mine", mode=0o640))
    step("user mkdir in 1777 dir", lambda: (os.mkdir("pub/mydir", 0o750), desc("pub/mydir"))[1])
    step("user symlink", lambda: (os.symlink("mine", "pub/mylink"), desc("pub/mylink"))[1])
    step("user mkfifo", lambda: (os.mkfifo("pub/myfifo", 0o640), desc("pub/myfifo"))[1])
    # grp is root's, 02770, group 4242: the user may write there through a supplementary group
    # only, and what it creates takes the directory's group (a directory also its set-GID bit)
    step("user create in setgid dir", lambda: write("grp/f", b"f", mode=0o660))
    step("user mkdir in setgid dir", lambda: (os.mkdir("grp/d", 0o750), desc("grp/d"))[1])
    step("user mkfifo in setgid dir", lambda: (os.mkfifo("grp/p", 0o640), desc("grp/p"))[1])
    step("user symlink in setgid dir", lambda: (os.symlink("f", "grp/l"), desc("grp/l"))[1])
    step("user read 0600 root file", lambda: read("secret"))
    step("user read 0644 root file", lambda: read("public"))
    step("user chmod root file", lambda: os.chmod("public", 0o666))
    step("user chown own file to root", lambda: os.chown("pub/mine", 0, 0))
    step("user unlink root file in sticky dir", lambda: os.unlink("pub/rootfile"))
    step("user utime root file", lambda: os.utime("public", ns=(1, 1)))
    step("user write setgid own file", lambda: write("pub/sg", b"1", mode=0o2755))
    step("user append own file", lambda: write("pub/mine", b"more", os.O_WRONLY | os.O_APPEND))

    def setid_cleared(how):
        write("pub/suid", b"0123456789", mode=0o755)
        os.chmod("pub/suid", 0o6775)
        if how == "write":
            write("pub/suid", b"x", os.O_WRONLY)
        elif how == "truncate":
            os.truncate("pub/suid", 3)
        else:
            write("pub/suid", b"", os.O_WRONLY | os.O_TRUNC)
        return desc("pub/suid")
    step("user write clears set-ID bits", lambda: setid_cleared("write"))
    step("user truncate clears set-ID bits", lambda: setid_cleared("truncate"))
    step("user O_TRUNC clears set-ID bits", lambda: setid_cleared("otrunc"))


def root_steps():
    step("create", lambda: write("f", b"hello"))
    step("create O_EXCL existing", lambda: write("f", b"x", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    step("append", lambda: write("f", b" world", os.O_WRONLY | os.O_APPEND))
    step("read", lambda: read("f"))
    step("overwrite middle", lambda: write("f", b"HE", os.O_WRONLY))
    step("truncate longer", lambda: (os.truncate("f", 100), desc("f"))[1])
    step("truncate shorter", lambda: (os.truncate("f", 3), desc("f"))[1])
    step("O_TRUNC", lambda: write("f", b"", os.O_WRONLY | os.O_TRUNC))
    step("open missing", lambda: read("missing"))
    step("mkdir", lambda: (os.mkdir("d", 0o750), desc("d"))[1])
    step("mkdir existing", lambda: os.mkdir("d"))
    step("mkdir -p", lambda: (os.makedirs("d/a/b/c"), desc("d/a/b/c"))[1])
    step("rmdir non-empty", lambda: os.rmdir("d/a"))
    step("rmdir", lambda: os.rmdir("d/a/b/c"))
    step("rmdir file", lambda: os.rmdir("f"))
    step("unlink dir", lambda: os.unlink("d"))
    write("r1", b"one")
    write("r2", b"two")
    step("rename over existing", lambda: (os.rename("r1", "r2"), desc("r2"))[1])
    step("rename gone source", lambda: os.rename("r1", "r3"))
    step("rename across dirs", lambda: (os.rename("r2", "d/a/r2"), desc("d/a/r2"))[1])
    step("rename dir into itself", lambda: os.rename("d", "d/a/x"))
    step("rename dir over non-empty dir", lambda: os.rename("d/a/b", "d"))
    write("n1", b"n1")
    write("n2", b"n2")
    step("RENAME_NOREPLACE existing", lambda: renameat2("n1", "n2", RENAME_NOREPLACE))
    step("RENAME_NOREPLACE", lambda: (renameat2("n1", "n3", RENAME_NOREPLACE), desc("n3"))[1])
    step("RENAME_EXCHANGE", lambda: (renameat2("n2", "n3", RENAME_EXCHANGE), read("n2"), read("n3"))[1:])
    step("RENAME_EXCHANGE missing", lambda: renameat2("n2", "nx", RENAME_EXCHANGE))
    step("link", lambda: (os.link("n2", "n2.hard"), desc("n2"), desc("n2.hard"))[1:])
    step("link to dir", lambda: os.link("d", "d.hard"))
    step("symlink", lambda: (os.symlink("n2", "sl"), desc("sl"))[1])
    step("symlink dangling", lambda: (os.symlink("nowhere/x", "sl2"), desc("sl2"))[1])
    step("read through symlink", lambda: read("sl"))
    step("read dangling symlink", lambda: read("sl2"))
    step("chmod", lambda: (os.chmod("n2", 0o4751), desc("n2"))[1])
    step("root write keeps set-ID bits", lambda: write("n2", b"N2", os.O_WRONLY))
    step("chown", lambda: (os.chown("n2", 1234, 5678), desc("n2"))[1])
    step("lchown symlink", lambda: (os.lchown("sl", 42, 43), desc("sl"))[1])
    step("utimens ns", lambda: (os.utime("n2", ns=(1000000123, 1700000000987654321)),
                                os.stat("n2").st_mtime_ns, os.stat("n2").st_atime_ns)[1:])
    step("utimens symlink", lambda: (os.utime("sl", ns=(5, 6000000007), follow_symlinks=False),
                                     os.lstat("sl").st_mtime_ns)[1])
    step("setxattr", lambda: os.setxattr("n2", "user.k", b"v1"))
    step("setxattr create existing", lambda: os.setxattr("n2", "user.k", b"v", os.XATTR_CREATE))
    step("setxattr replace missing", lambda: os.setxattr("n2", "user.z", b"v", os.XATTR_REPLACE))
    step("getxattr", lambda: os.getxattr("n2", "user.k"))
    step("getxattr missing", lambda: os.getxattr("n2", "user.none"))
    step("listxattr", lambda: sorted(x for x in os.listxattr("n2") if x.startswith("user.")))
    step("removexattr", lambda: (os.removexattr("n2", "user.k"), os.listxattr("n2"))[1])
    step("removexattr missing", lambda: os.removexattr("n2", "user.k"))
    step("xattr on dir", lambda: (os.setxattr("d", "user.d", b"dir"), os.getxattr("d", "user.d"))[1])

    # sparse file and SEEK_DATA / SEEK_HOLE
    def sparse():
        fd = os.open("sparse", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"A" * 4096, 1 << 20)
            os.pwrite(fd, b"B" * 4096, 8 << 20)
            r = [os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, (1 << 20), os.SEEK_HOLE),
                 os.lseek(fd, (2 << 20), os.SEEK_DATA), os.fstat(fd).st_size,
                 os.fstat(fd).st_blocks * 512 < (1 << 20)]
            try:
                os.lseek(fd, (9 << 20), os.SEEK_DATA)
            except OSError as e:
                r.append(errno.errorcode[e.errno])
            return r
        finally:
            os.close(fd)
    step("sparse + SEEK_DATA/HOLE", sparse)

    def mmap_write():
        write("mm", b"\0" * 8192)
        fd = os.open("mm", os.O_RDWR)
        try:
            m = mmap.mmap(fd, 8192)
            m[100:105] = b"mmap!"
            m[5000:5003] = b"end"
            m.flush()
            m.close()
        finally:
            os.close(fd)
        return desc("mm")
    step("mmap write", mmap_write)

    def fsyncs():
        fd = os.open("fs", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"sync me")
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        return desc("fs")
    step("fsync, fdatasync, fsync dir", fsyncs)

    def statfs():
        a = os.statvfs(".")
        return [a.f_bsize, a.f_blocks, a.f_namemax]
    step("statfs", statfs)

    def big_dir():
        os.mkdir("many")
        for i in range(10000):
            os.close(os.open("many/f%05d" % i, os.O_WRONLY | os.O_CREAT, 0o644))
        names = os.listdir("many")
        return [len(names), hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:12]]
    step("readdir 10000 entries", big_dir)

    step("255-byte name", lambda: write("n" * 255, b"long name"))
    step("256-byte name", lambda: write("n" * 256, b"too long"))

    def long_path():
        # A relative path of PATH_MAX-1 bytes: 20 directories of 200 bytes, then a file name.
        parts = ["p%03d" % i + "x" * 196 for i in range(20)]
        d = "/".join(parts)
        os.makedirs(d)
        name = "y" * (4095 - len(d) - 1)
        p = d + "/" + name
        assert len(p) == 4095
        write(p, b"deep")
        r = [len(p), read(p)]
        try:
            write(p + "z", b"")
        except OSError as e:
            r.append(errno.errorcode[e.errno])
        return r
    step("path of PATH_MAX-1 bytes", long_path)

    def unlink_open():
        write("open-unlinked", b"still here")
        fd = os.open("open-unlinked", os.O_RDWR)
        os.unlink("open-unlinked")
        os.write(fd, b"STILL")
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 100)
        st = os.fstat(fd)
        os.close(fd)
        hidden = [n for n in os.listdir(".") if n.startswith(".fuse_hidden")]
        return [data, st.st_nlink, hidden, os.path.exists("open-unlinked")]
    step("unlink of an open file", unlink_open)

    def editor_save():
        write("doc.txt", b"version 1\n")
        write(".doc.txt.swp", b"version 2\n")
        fd = os.open(".doc.txt.swp", os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        os.rename(".doc.txt.swp", "doc.txt")
        return desc("doc.txt")
    step("editor save", editor_save)

    # set up for the unprivileged steps
    os.mkdir("ro", 0o755)
    os.mkdir("pub")
    os.chmod("pub", 0o1777)
    write("secret", b"secret", mode=0o600)
    os.chmod("secret", 0o600)
    write("public", b"public", mode=0o644)
    write("pub/rootfile", b"root's")
    os.mkdir("grp")
    os.chown("grp", 0, 4242)
    os.chmod("grp", 0o2770)


def tree():
    lines = []
    for dp, dns, fns in os.walk("."):
        for n in sorted(dns + fns):
            p = os.path.join(dp, n)
            if len(p) > 300:
                p = p[:40] + "..." + p[-40:]
                lines.append("tree " + p)
                continue
            lines.append("tree %s %s" % (p, desc(os.path.join(dp, n))))
    return sorted(lines)


os.chdir(root)
os.umask(0o022)
if "--as-user" in sys.argv:
    uid, gid, *groups = map(int, sys.argv[sys.argv.index("--as-user") + 1].split(":"))
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    user_steps()
else:
    root_steps()
out += tree()
print("\n".join(out))
