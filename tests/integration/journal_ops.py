#!/usr/bin/env python3
"""Prints the records of a change journal directory, one "op path[ -> to]" line each, oldest
first (segments are named by their creation time). Usage: journal_ops.py DIR"""
import glob
import os
import struct
import sys

OPS = ["?", "write", "create", "mkdir", "unlink", "rmdir", "symlink", "link", "rename",
       "setattr", "xattr", "rescan"]
FIXED = 18  # length, op, reserved, path length, target length, time

for seg in sorted(glob.glob(os.path.join(sys.argv[1], "*.mkj"))):
    data = open(seg, "rb").read()
    i = 0
    while i + FIXED <= len(data):
        length = struct.unpack_from("<I", data, i)[0]
        if length < FIXED + 8 or i + length > len(data):
            break  # a record still being appended
        op = data[i + 4]
        pl, tl = struct.unpack_from("<HH", data, i + 6)
        path = data[i + FIXED:i + FIXED + pl].decode(errors="replace")
        to = data[i + FIXED + pl:i + FIXED + pl + tl].decode(errors="replace")
        print(OPS[op] if op < len(OPS) else "?", path + (" -> " + to if to else ""))
        i += length
