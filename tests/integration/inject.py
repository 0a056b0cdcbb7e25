#!/usr/bin/env python3
"""Hostile datagrams for the integration tests (run inside a node's network namespace).
  inject.py capture GROUP PORT FILE SRC  save the first sealed makuo datagram SRC sends to the group
  inject.py replay GROUP PORT FILE       send it again, as it was
  inject.py attack GROUP PORT FILE       forged, truncated, oversized, unsealed variants of it
  inject.py record GROUP PORT FILE STOP  save every makuo datagram sent to the group until the
                                         file STOP exists (length-prefixed, in order); FILE.ready
                                         appears once it listens
  inject.py replay-all GROUP PORT FILE   send what record saved, in order, 1 ms apart
"""
import os, socket, struct, sys

mode, group, port, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def sender():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return s

if mode == "capture":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
    s.settimeout(10)
    while True:
        d, (addr, _) = s.recvfrom(65536)
        if d[:4] == b"MKO1" and d[7] & 1 and addr == sys.argv[5]:
            open(path, "wb").write(d)
            break
elif mode == "record":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
    s.settimeout(0.1)
    open(path + ".ready", "w").close()
    with open(path, "wb") as out:
        while not os.path.exists(sys.argv[5]):
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            if d[:4] == b"MKO1":
                out.write(struct.pack(">I", len(d)) + d)
elif mode == "replay-all":
    import time
    s = sender()
    data = open(path, "rb").read()
    i = n = 0
    while i < len(data):
        (ln,) = struct.unpack(">I", data[i:i + 4])
        s.sendto(data[i + 4:i + 4 + ln], (group, port))
        i += 4 + ln
        n += 1
        time.sleep(0.001)
    print(n)
elif mode == "replay":
    d = open(path, "rb").read()
    sender().sendto(d, (group, port))
elif mode == "attack":
    d = bytearray(open(path, "rb").read())
    s = sender()
    def fresh_counter(b):  # a counter the receivers have not seen, so the tag is what fails
        b[20:28] = (int.from_bytes(b[20:28], "big") + 1000000).to_bytes(8, "big")
        return b
    forged = fresh_counter(bytearray(d)); forged[30] ^= 0x40      # one bit of ciphertext
    s.sendto(bytes(forged), (group, port))
    fake_node = bytearray(d); fake_node[8:16] = os.urandom(8)     # someone else's node id
    s.sendto(bytes(fake_node), (group, port))
    s.sendto(bytes(d[:20]), (group, port))                        # truncated
    big = fresh_counter(bytearray(d[:28])) + os.urandom(8000)     # oversized, random body
    s.sendto(bytes(big), (group, port))
    plain = bytearray(d[:16]); plain[7] &= 0xfe                   # unsealed hello
    plain += bytes([5]) + b"evil1" + bytes([5]) + b"0.1.0" + b"\0\0"
    s.sendto(bytes(plain), (group, port))
