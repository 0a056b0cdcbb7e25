#!/usr/bin/env python3
"""Prints a signature line per entry below DIR (our temporaries excluded); equal = identical."""
import hashlib, os, stat, sys

root = sys.argv[1]
owner = "--no-owner" not in sys.argv
dir_mtime = "--no-dir-mtime" not in sys.argv  # best effort under concurrent automatic pushes
out = []
for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
        if name.startswith(".makuo-tmp-"):
            continue
        p = os.path.join(dirpath, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        t = stat.S_IFMT(st.st_mode)
        fields = ["%o" % st.st_mode]
        if owner:
            fields.append("%d:%d" % (st.st_uid, st.st_gid))
        if stat.S_ISREG(t):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            fields += [str(st.st_size), str(st.st_mtime_ns), h.hexdigest()[:16], "nlink=%d" % st.st_nlink]
        elif stat.S_ISLNK(t):
            fields += ["-> " + os.readlink(p)]
        elif stat.S_ISDIR(t):
            fields += [str(st.st_mtime_ns) if dir_mtime else "-"]
        else:
            fields += [str(st.st_rdev), str(st.st_mtime_ns)]
        out.append(rel + "\t" + " ".join(fields))
print("\n".join(sorted(out)))
