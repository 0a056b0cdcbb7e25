#!/usr/bin/env bash
# makuosan --watch: changes made directly in node 1's base directory (no mount) reach nodes 2
# and 3; new directories are watched without a race; moves become renames; an overflowing
# event queue is answered by a rescan and a warning; received files are not sent back.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
trap 'cluster_down; [ -n "${qe:-}" ] && sysctl -qw fs.inotify.max_queued_events="$qe"' EXIT
cluster_net 3 || exit 1
MK_DAEMON_ARGS="--watch" node_start 2 || exit 1
MK_DAEMON_ARGS="--watch" node_start 3 || exit 1
# Node 1's inotify queue is made tiny (the limit is read when the instance is created, so only
# the daemon started in this window gets it) to provoke IN_Q_OVERFLOW further down.
qe=$(sysctl -n fs.inotify.max_queued_events)
sysctl -qw fs.inotify.max_queued_events=256
MK_DAEMON_ARGS="--watch" node_start 1
rc=$?
sysctl -qw fs.inotify.max_queued_events="$qe"
[ $rc -eq 0 ] || exit 1
wait_members 3 && wait_catchup 3 || exit 1
b1=$(node_base 1) b2=$(node_base 2) b3=$(node_base 3)

t_name "a file written in the watched base directory arrives"
echo hello >"$b1/hello.txt"
wait_for 15 converged 3 && ok "on nodes 2 and 3" || { fail "not converged"; same_tree "$b1" "$b2"; }

t_name "new directories are watched at once: files created right after mkdir are not missed"
for i in $(seq 1 30); do mkdir -p "$b1/n$i/a/b/c" && echo "$i" >"$b1/n$i/a/b/c/f" && echo "$i" >"$b1/n$i/a/g"; done
wait_for 20 converged 3 && ok "30 nested trees complete" || { fail "not converged"; same_tree "$b1" "$b2"; }

t_name "moves are renames, deletes and attributes propagate"
head -c 3000000 /dev/urandom >"$b1/big.bin"
wait_for 15 converged 3 || fail "big.bin did not arrive"
ino=$(stat -c %i "$b2/big.bin")
mv "$b1/big.bin" "$b1/n1/big-moved.bin" && mv "$b1/n2" "$b1/n2-renamed" && rm -r "$b1/n3"
chmod 700 "$b1/n4" && ln -s ../hello.txt "$b1/n5/link"
wait_for 15 converged 3 && ok "converged" || { fail "not converged"; same_tree "$b1" "$b2"; }
[ "$(stat -c %i "$b2/n1/big-moved.bin" 2>/dev/null)" = "$ino" ] && ok "node 2 renamed its copy" || fail "content resent"
[ ! -e "$b2/n3" ] && [ -d "$b2/n2-renamed/a/b/c" ] && ok "delete and directory rename" || fail "n2/n3"

t_name "files moved in from outside the tree arrive with their contents"
mkdir -p "$MK_WORK/outside/x/y" && echo out >"$MK_WORK/outside/x/y/z"
mv "$MK_WORK/outside/x" "$b1/came-in"
wait_for 15 converged 3 && [ -f "$b3/came-in/y/z" ] && ok "moved-in tree arrived" || fail "moved-in tree"

t_name "received files are not sent back"
pushes2=$(node_msync 2 --status | awk '/^propagate/ {print $5}')
pushes3=$(node_msync 3 --status | awk '/^propagate/ {print $5}')
[ "$pushes2" = 0 ] && [ "$pushes3" = 0 ] && ok "nodes 2 and 3 pushed nothing" \
  || fail "echo: node 2 pushed $pushes2, node 3 pushed $pushes3 times"

t_name "an overflowing event queue is answered by a rescan and a warning"
mkdir "$b1/flood"
wait_for 15 test -d "$b2/flood" || fail "flood directory did not arrive"
kill -STOP "$(node_pid 1)"  # not reading its events for a moment: its 256-event queue fills
python3 - "$b1" <<'PY'
import os, sys
d = os.path.join(sys.argv[1], "flood")
for i in range(1000):
    with open(os.path.join(d, "f%04d" % i), "w") as f:
        f.write(str(i))
PY
kill -CONT "$(node_pid 1)"
wait_for 30 converged 3 && ok "1000 files arrived" || { fail "not converged"; same_tree "$b1" "$b2"; }
grep -q 'event queue overflowed: rescanning' "$(node_logf 1)" && ok "overflow warned and rescanned" \
  || fail "no overflow warning (queue limit not in effect?)"
node_msync 1 --status | grep -Eq '^watch .* [1-9][0-9]* overflows' && ok "counted in status" || fail "$(node_msync 1 --status | grep watch)"
t_finish
