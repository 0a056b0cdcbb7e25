#!/usr/bin/env bash
# The Debian package: cpack builds it, dpkg installs it on this machine, the programs, man
# pages, units, helper link and completion are where an admin looks for them, every unit
# passes systemd-analyze verify, --help agrees with the man pages, and dpkg -r / dpkg -P
# leave nothing behind.
set -u
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
need_root
src=$(cd "$(dirname "$0")/../.." && pwd)
bld=$(cd "$MAKUO_BIN" && pwd)
mkdir -p "$MK_WORK"
installed_by_us=
cleanup() {
  [ -n "$installed_by_us" ] && dpkg -P makuo >/dev/null 2>&1
  rm -rf "$MK_WORK"
}
trap cleanup EXIT
if dpkg -s makuo >/dev/null 2>&1; then
  echo "test_package: a makuo package is installed on this machine; not touching it" >&2
  exit 1
fi

t_name "--help and the man pages list the same options"
opts_help() { "$bld/$1" --help 2>&1 | grep -E '^ +-' | sed 's/#.*//' | grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,' | sort -u; }
opts_man() { grep -E '^\*-' "$src/man/$1.scd" | grep -oE '\*--?[A-Za-z][A-Za-z-]*\*' | tr -d '*' | sort -u; }
for p in makuosan.8 msync.1 makuofs.8; do
  b=${p%.*}
  if diff <(opts_help "$b") <(opts_man "$p") >"$MK_WORK/diff"; then
    ok "$b: $(opts_help "$b" | wc -l) options in both"
  else
    fail "$b: --help (<) and $p (>) differ:"; cat "$MK_WORK/diff" >&2
  fi
done
# Mount options: the names that open each line of --help's "Mount options:" (comma-separated
# runs), and every *name* of the man page's MOUNT OPTIONS headings.
mopts_help() {
  "$bld/makuofs" --help | sed -n '/^Mount options:/,/^$/p' | python3 -c '
import re, sys
for l in sys.stdin:
    m = re.match(r"  ((?:[a-z_][a-z_-]*[=*]?(?:[A-Z]+)?(?:, )?)+)", l)
    if m:
        for t in m.group(1).split(","):
            t = t.strip().split("=")[0].rstrip("*-")
            if t: print(t)' | sort -u
}
mopts_man() {
  sed -n '/^# MOUNT OPTIONS/,/^# EXIT/p' "$src/man/makuofs.8.scd" | grep '^\*' | python3 -c '
import re, sys
for l in sys.stdin:
    for t in re.findall(r"\*([a-z\\_][^*]*)\*", l):
        t = t.replace("\\", "").split("=")[0].rstrip("*-")
        if t: print(t)' | sort -u
}
diff <(mopts_help) <(mopts_man) >"$MK_WORK/diff" && ok "makuofs mount options agree" || { fail "mount options differ"; cat "$MK_WORK/diff" >&2; }

t_name "scripts/package (cpack -G DEB) builds makuo_VERSION_amd64.deb"
ver=$("$bld/makuosan" -V | awk '{print $3}')
"$src/scripts/package" >"$MK_WORK/cpack.log" 2>&1 || { fail "package"; tail -20 "$MK_WORK/cpack.log" >&2; t_finish; }
deb="$src/build-deb/makuo_${ver}_amd64.deb"
[ -f "$deb" ] && ok "$(basename "$deb")" || { fail "no $deb"; ls "$bld"/*.deb >&2; t_finish; }
dpkg-deb -f "$deb" Depends | grep -q 'fuse3' && dpkg-deb -f "$deb" Depends | grep -q 'libfuse3' \
  && ok "depends: $(dpkg-deb -f "$deb" Depends)" || fail "depends: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' >"$MK_WORK/files"

t_name "dpkg -i: programs, man pages, units, helper, completion in place"
installed_by_us=1
expect_rc 0 dpkg -i "$deb" && ok "installed"
expect_rc 0 /usr/sbin/makuosan -V && grep -q "makuosan version $ver" "$MK_WORK/out" && ok "makuosan -V"
expect_rc 0 /usr/bin/msync -h && grep -q -- '--status' "$MK_WORK/out" && ok "msync -h"
expect_rc 0 /usr/sbin/makuofs -V && ok "makuofs -V"
for page in msync makuosan makuofs; do
  expect_rc 0 man -w "$page" && ok "man -w $page: $(cat "$MK_WORK/out")"
done
[ "$(readlink -f /usr/sbin/mount.fuse.makuofs)" = "$(readlink -f /sbin/mount.fuse3)" ] && ok "mount.fuse.makuofs -> mount.fuse3" || fail "helper link"
[ -f /usr/share/bash-completion/completions/msync ] && bash -n /usr/share/bash-completion/completions/msync && ok "bash completion" || fail "completion"
[ -f /etc/default/makuosan ] && grep -q '^MAKUOSAN_BASE=' /etc/default/makuosan && ok "/etc/default/makuosan" || fail "default file"
grep -q 'ExecStart=/usr/sbin/makuosan' /usr/lib/systemd/system/makuosan.service && ok "unit points at /usr/sbin" || fail "ExecStart"

t_name "systemd-analyze verify passes on every unit we ship"
cp /usr/lib/systemd/system/makuosan@.service "$MK_WORK/makuosan@srv-www.service"
cp /usr/share/doc/makuo/examples/var-www.mount "$MK_WORK/var-www.mount"
for u in /usr/lib/systemd/system/makuosan.service "$MK_WORK/makuosan@srv-www.service" "$MK_WORK/var-www.mount"; do
  if SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$u" >"$MK_WORK/verify" 2>&1 && [ ! -s "$MK_WORK/verify" ]; then
    ok "$(basename "$u")"
  else
    fail "$(basename "$u"):"; cat "$MK_WORK/verify" >&2
  fi
done

t_name "dpkg -r, then dpkg -P, leave nothing behind"
expect_rc 0 dpkg -r makuo
left=$(while read -r f; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done <"$MK_WORK/files")
[ "$left" = /etc/default/makuosan ] && ok "removed; only the conffile stays" || fail "after dpkg -r: $left"
expect_rc 0 dpkg -P makuo
installed_by_us=
left=$(while read -r f; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done <"$MK_WORK/files")
[ -z "$left" ] && ! dpkg -s makuo >/dev/null 2>&1 && ok "purged: none of its $(wc -l <"$MK_WORK/files") files remain" || fail "after purge: $left"
[ ! -e /var/lib/makuo ] && ok "no state left" || fail "/var/lib/makuo remains"
t_finish
