#!/usr/bin/env bash
# The console protocol by hand, as makuosan's msync and telnet use it (reference §2).
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 2
t_name "prompt, echo, help, exclude, unknown command, pipelined lines, quit"
python3 - "$(node_sock 1)" <<'PY' > "$MK_WORK/transcript" || fail "console transcript"
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
buf = b""
def until_prompt():
    global buf
    while not buf.endswith(b"> "):
        buf += s.recv(4096)
    out, buf = buf[:-2], b""
    return out.decode()
assert until_prompt() == ""
s.sendall(b"echo hello  world\r\n"); assert until_prompt() == "hello world\n"
s.sendall(b"exclude add *.log\r\nexclude add cache/\r\nexclude list\r\n")   # pipelined
while not buf.endswith(b"*.log\ncache/\n> "):   # three prompts, the last after the list
    buf += s.recv(4096)
assert buf == b"> > *.log\ncache/\n> ", buf
buf = b""
s.sendall(b"frob\r\n"); assert until_prompt() == "mexec: command error 'frob'\n"
s.sendall(b"alive on\r\n"); assert until_prompt() == ""
s.sendall(b"help\r\n"); assert "COMMAND:" in until_prompt()
s.sendall(b"members\r\n"); m = until_prompt(); assert m.endswith("Total: 1 members\n"), m
s.sendall(b"send\r\n"); assert until_prompt().startswith("send [-n] [-r]")
s.sendall(b"quit\r\n"); time.sleep(0.2); assert s.recv(100) == b""
print("transcript ok")
PY
grep -q 'transcript ok' "$MK_WORK/transcript" && ok "transcript" || fail "transcript"
t_name "too many consoles and over-long lines are refused without disturbing the others"
python3 - "$(node_sock 1)" <<'PY' > "$MK_WORK/limits" || fail "limits"
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
    assert s.recv(10) == b"> "
    return s
def ask(s, line):
    s.sendall(line); buf = b""
    while not buf.endswith(b"> "): buf += s.recv(4096)
    return buf
first = conn()
many = [conn() for _ in range(63)]          # 64 consoles in all: the limit
extra = socket.socket(socket.AF_UNIX); extra.connect(sys.argv[1]); extra.settimeout(5)
assert extra.recv(10) == b"", "a 65th console was served"
many[0].close()                              # room for one more, once the daemon sees it
hog = None
for _ in range(100):
    try:
        hog = conn()
        break
    except AssertionError:
        time.sleep(0.05)
assert hog is not None, "a freed console slot was never reused"
hog.sendall(b"x" * 10000)                    # no newline: refused, connection closed
assert hog.recv(100) == b""
assert ask(first, b"echo still here\r\n") == b"still here\n> "
print("limits ok")
PY
grep -q 'limits ok' "$MK_WORK/limits" && ok "65th console closed, 10 KB line closed, first console unaffected" || fail "limits"

t_name "a client that types ahead and reads nothing costs the daemon a bounded amount of memory"
rss() { awk '/^VmHWM/ {print $2}' "/proc/$(node_pid 1)/status"; }   # peak resident, KiB
rss0=$(rss)
python3 - "$(node_sock 1)" <<'PY' > "$MK_WORK/hog" 2>&1 || fail "hog: $(cat "$MK_WORK/hog")"
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(30)
assert s.recv(10) == b"> "
line = b"echo " + b"x" * 4000 + b"\r\n"
sent, deadline = 0, time.monotonic() + 60
try:   # 64 MB of commands whose answers we never read: the daemon must give up on us
    while sent < 64 << 20 and time.monotonic() < deadline:
        s.sendall(line * 16); sent += len(line) * 16
except (BrokenPipeError, ConnectionResetError, socket.timeout):
    pass
s.settimeout(5)
try:
    while s.recv(1 << 20): pass
    print("closed after", sent >> 20, "MiB sent")
except ConnectionResetError:
    print("closed after", sent >> 20, "MiB sent")
PY
grep -q 'closed after' "$MK_WORK/hog" && ok "connection closed: $(cat "$MK_WORK/hog")" || fail "not closed: $(cat "$MK_WORK/hog")"
rss1=$(rss)
[ $((rss1 - rss0)) -lt 32768 ] && ok "peak resident grew by $(( (rss1 - rss0) / 1024 )) MiB (< 32)" \
  || fail "peak resident grew from $((rss0 / 1024)) to $((rss1 / 1024)) MiB"
grep -q 'read none of the last 8 MiB of output' "$(node_logf 1)" && ok "logged" || fail "no log line"
expect_rc 0 node_msync 1 --members && ok "the daemon still answers" || fail "daemon gone"

t_name "password prompt"
node_stop 1
echo secretpw > "$MK_WORK/pw"
expect_rc nonzero "$MAKUO_BIN/makuosan" -n --insecure -b "$(node_base 1)" -K "$MK_WORK/pw"
grep -q "password file $MK_WORK/pw is readable by others (mode 0644): chmod 600 it" "$MK_WORK/err" \
  && ok "a password file others can read is refused" || fail "mode not checked: $(cat "$MK_WORK/err")"
chmod 600 "$MK_WORK/pw"
MK_DAEMON_ARGS="-K $MK_WORK/pw" node_start 1 2>/dev/null   # its readiness probe has no password
t=$((SECONDS + 10)); until [ -S "$(node_sock 1)" ]; do [ $SECONDS -lt $t ] || break; sleep 0.05; done
expect_rc nonzero node_msync 1 --members && ok "no password: refused" || fail "accepted without password"
printf 'wrong\n' > "$MK_WORK/badpw"
expect_rc nonzero node_msync 1 -K "$MK_WORK/badpw" --members && ok "wrong password refused" || fail "wrong password accepted"
expect_rc 0 node_msync 1 -K "$MK_WORK/pw" --members && grep -q 'Total: 1 members' "$MK_WORK/out" && ok "right password" || fail "right password refused"
python3 - "$(node_sock 1)" <<'PY' > "$MK_WORK/idle" 2>&1
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(30)
t0 = time.monotonic(); got = b""
while True:
    b = s.recv(100)
    if not b: break
    got += b
print("closed after %.0f s" % (time.monotonic() - t0), got)
PY
grep -q "closed after [0-9]* s b'password: " "$MK_WORK/idle" && grep -q 'no password within 10 s' "$(node_logf 1)" && ok "a console that never logs in is closed: $(cut -c1-18 "$MK_WORK/idle")" \
  || fail "idle unauthenticated console: $(cat "$MK_WORK/idle")"
t_finish
