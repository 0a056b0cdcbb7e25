#!/usr/bin/env bash
# makuofs against the plain base directory on the same file system: the same workloads, median
# of RUNS (3), one table. Usage (root): bench/mount_bench.sh [--quick] [--runs N]
#   seq-write   1 GiB, bs=1M, fsync included        cold-read  the same file, caches dropped
#   rand-write  fio 4k random writes, buffered      create     10,000 x 4 KiB files: open(2),
#   write(2), close(2) each, as tar and cp do       create-py  the same with Python's open(), which
#   also asks isatty() (an ioctl the mount must answer) delete rm -rf of those
#   untar       /usr/share/doc                      rm-untar   rm -rf
# Variants: plain, mount (makuofs defaults: passthrough where the kernel has it, /dev/fuse),
# mount-uring (the same with FUSE over io_uring: the fuse module's enable_uring is switched on
# for that variant only and restored after; skipped when the kernel has no such switch),
# mount-wb (-o writeback), mount-spin0 (-o spin=0: libfuse's own loop, where every request
# wakes a sleeping thread; what fs/request_loop.* buys). Every variant and run gets a freshly
# made ext4 file system (an image under /var/tmp on a direct-I/O loop device): ext4's inode
# allocator slows down after many recent deletions, which would otherwise favour whoever runs
# first.
# Needs fio. PASSTHROUGH_HP=/path/to/passthrough_hp adds libfuse's example file system (built
# from libfuse's source, not part of makuo; run with its defaults: writeback cache, day-long
# timeouts) as a reference measured in the same run, in a table of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 size_mb=1024 files=10000 fio_secs=5
while [ $# -gt 0 ]; do
  case $1 in
    --quick) runs=1 size_mb=256 files=2000 fio_secs=2 ;;
    --runs) runs=$2; shift ;;
    *) echo "usage: $0 [--quick] [--runs N]" >&2; exit 1 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (drops caches, mounts)" >&2; exit 1; }
command -v fio >/dev/null || { echo "$0: needs fio (apt-get install fio)" >&2; exit 1; }
bin=${MAKUO_BIN:-build}
W=$(mktemp -d /var/tmp/makuo-mount-bench.XXXXXX)
fspid= phpid=
[ -z "${PASSTHROUGH_HP:-}" ] || [ -x "$PASSTHROUGH_HP" ] || { echo "$0: PASSTHROUGH_HP=$PASSTHROUGH_HP is not an executable" >&2; exit 1; }
uring_param=/sys/module/fuse/parameters/enable_uring
uring_was=$(cat "$uring_param" 2>/dev/null || true)
uring() { [ -n "$uring_was" ] && echo "$1" >"$uring_param"; }
cleanup() {
  [ -n "$uring_was" ] && echo "$uring_was" >"$uring_param"
  for m in "$W/mnt" "$W/fs"; do mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }; done
  [ -n "$fspid" ] && kill "$fspid" 2>/dev/null || true
  [ -n "$phpid" ] && kill "$phpid" 2>/dev/null || true
  if ! grep -q " $W/" /proc/self/mounts; then rm -rf "$W"; fi
}
trap cleanup EXIT
mkdir -p "$W/fs" "$W/mnt" "$W/state"
fresh_fs() {  # a new, empty ext4 at $W/fs
  mountpoint -q "$W/fs" && umount "$W/fs"
  rm -f "$W/ext4.img"
  truncate -s $(( size_mb * 2 + 3072 ))M "$W/ext4.img"
  # Inode tables and journal written now, not by ext4lazyinit in the background of the first
  # workloads (the sequential write): 0.03 s here (the loop device zeroes by discarding).
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$W/ext4.img"
  # Direct I/O on the loop device: buffered, the image's own page cache under /var/tmp wrote
  # back whenever the host's writeback chose, and the same fsynced dd of 1 GiB took 1.1 s or
  # 2.6-4.2 s at random, for any variant; with direct I/O 0.95-1.7 s (the host's disk).
  local dev
  dev=$(losetup -f --show --direct-io=on "$W/ext4.img")
  mount "$dev" "$W/fs"
  losetup -d "$dev"  # busy: the kernel detaches it at umount
  mkdir -p "$W/fs/plain" "$W/fs/base"
}
tar -C /usr/share -cf "$W/doc.tar" doc 2>/dev/null || true
docfiles=$(tar -tf "$W/doc.tar" | wc -l)

mount_fs() {  # mount_fs [OPTS]
  "$bin/makuofs" -f "$W/fs/base" "$W/mnt" -o "state_dir=$W/state${1:+,$1}" >"$W/makuofs.log" 2>&1 &
  fspid=$!
  local t=$((SECONDS + 10))
  until mountpoint -q "$W/mnt"; do [ $SECONDS -lt $t ] || { cat "$W/makuofs.log"; exit 1; }; sleep 0.05; done
}
umount_fs() {
  fusermount3 -u "$W/mnt"
  wait "$fspid" 2>/dev/null || true
  fspid=
  rm -rf "$W/state/journal"  # the journal of a benchmark is not worth propagating
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
declare -A R
# timed VARIANT WORKLOAD CMD...: runs CMD, appends its seconds to R[WORKLOAD,VARIANT]. The clock
# is read by bash itself: $(date) forked twice per reading and added 5-7 ms to each time here.
timed() {
  local v=$1 w=$2 t t1
  shift 2
  t=${EPOCHREALTIME/,/.}; "$@"; t1=${EPOCHREALTIME/,/.}
  R[$w,$v]+="$(awk -v a="$t" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') "
}
# create_files DIR N os|open: N files of 4 KiB in the new DIR, with os.open/write/close (as tar
# and cp do) or Python's open() (which also asks isatty(), an ioctl the mount must answer).
# Prints the loop's own seconds: the interpreter's start (0.06 s, 0.4 s behind a pyenv shim) is
# neither plain's nor the mount's, and counted from outside it made up two thirds of plain's
# time and hid most of the ratio.
create_files() {
  python3 - "$@" <<'PY'
import os, sys, time
d, n, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
os.mkdir(d)
block = b"x" * 4096
for i in range(n):
    path = os.path.join(d, "f%05d" % i)
    if how == "os":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, block)
        os.close(fd)
    else:
        with open(path, "wb") as f:
            f.write(block)
print("%.3f" % (time.perf_counter() - t0))
PY
}
untar_doc() { mkdir "$1/doc" && tar -C "$1/doc" -xf "$W/doc.tar"; }

measure() {  # measure VARIANT DIR: one run of every workload, appended to R[workload,variant]
  local v=$1 d=$2
  rm -rf "${d:?}"/* 2>/dev/null || true
  sync
  timed "$v" seq-write dd if=/dev/zero of="$d/seq" bs=1M count="$size_mb" conv=fsync status=none
  drop_caches
  timed "$v" cold-read dd if="$d/seq" of=/dev/null bs=1M status=none
  rm -f "$d/seq"
  fio --name=rw --filename="$d/fio" --size=256M --bs=4k --rw=randwrite --ioengine=psync \
    --runtime="$fio_secs" --time_based --output-format=json >"$W/fio.json" 2>/dev/null
  R[rand-write-iops,$v]+="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"]))' "$W/fio.json") "
  rm -f "$d/fio"
  sync
  R[create,$v]+="$(create_files "$d/many" "$files" os) "
  timed "$v" delete rm -rf "$d/many"
  sync
  R[create-py,$v]+="$(create_files "$d/many" "$files" open) "
  rm -rf "$d/many"
  sync
  timed "$v" untar untar_doc "$d"
  timed "$v" rm-untar rm -rf "$d/doc"
}

for r in $(seq 1 "$runs"); do
  echo "run $r/$runs: plain" >&2
  fresh_fs; measure plain "$W/fs/plain"
  echo "run $r/$runs: mount" >&2
  fresh_fs; mount_fs; measure mount "$W/mnt"; umount_fs
  if [ -n "$uring_was" ]; then
    echo "run $r/$runs: mount, io_uring" >&2
    uring Y; fresh_fs; mount_fs; measure mount-uring "$W/mnt"; umount_fs; uring "$uring_was"
    grep -q 'io_uring queues' "$W/makuofs.log" || echo "  (makuofs did not set up io_uring queues)" >&2
  fi
  echo "run $r/$runs: mount -o spin=0" >&2
  fresh_fs; mount_fs spin=0; measure mount-spin0 "$W/mnt"; umount_fs
  echo "run $r/$runs: mount -o writeback" >&2
  fresh_fs; mount_fs writeback; measure mount-wb "$W/mnt"; umount_fs
  if [ -n "${PASSTHROUGH_HP:-}" ]; then
    echo "run $r/$runs: passthrough_hp" >&2
    fresh_fs
    "$PASSTHROUGH_HP" --foreground "$W/fs/base" "$W/mnt" >"$W/ph.log" 2>&1 &
    phpid=$!
    t=$((SECONDS + 10))
    until mountpoint -q "$W/mnt"; do [ $SECONDS -lt $t ] || { cat "$W/ph.log"; exit 1; }; sleep 0.05; done
    measure ph "$W/mnt"
    fusermount3 -u "$W/mnt"; wait "$phpid" 2>/dev/null || true; phpid=
  fi
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo
echo "makuofs vs plain directory ($(uname -r), $(nproc) CPUs, fresh ext4 on a direct-I/O loop device per run; median of $runs)"
echo "seq ${size_mb} MiB; ${files} files; untar of /usr/share/doc = ${docfiles} entries"
ratio() { [ -n "$1" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}' || echo -; }
printf '%-16s %9s %9s %9s %11s %9s %9s %9s %9s %9s\n' workload plain mount \
  mount-spin0 mount-uring mount-wb "mount/pl" "spin0/pl" "uring/pl" "wb/pl"
for w in seq-write cold-read rand-write-iops create create-py delete untar rm-untar; do
  p=$(echo "${R[$w,plain]}" | median); m=$(echo "${R[$w,mount]}" | median)
  z=$(echo "${R[$w,mount-spin0]}" | median)
  u=$(echo "${R[$w,mount-uring]:-}" | median); b=$(echo "${R[$w,mount-wb]}" | median)
  printf '%-16s %9s %9s %9s %11s %9s %9s %9s %9s %9s\n' "$w" "$p" "$m" "$z" "${u:--}" "$b" \
    "$(ratio "$m" "$p")" "$(ratio "$z" "$p")" "$(ratio "$u" "$p")" "$(ratio "$b" "$p")"
done
echo "(seconds, except rand-write-iops; for throughput and IOPS a ratio above 1 is better, for times below 1)"
if [ "$runs" -gt 1 ]; then
  echo "every run, plain | mount (the VM's noise, to judge a median by):"
  for w in seq-write cold-read rand-write-iops create create-py delete untar rm-untar; do
    printf '  %-16s %s| %s\n' "$w" "${R[$w,plain]}" "${R[$w,mount]}"
  done
fi
if [ -n "${PASSTHROUGH_HP:-}" ]; then
  echo
  echo "libfuse passthrough_hp ($PASSTHROUGH_HP, its defaults), same runs"
  printf '%-16s %10s %10s %9s %9s\n' workload plain ph "ph/pl" "mount/ph"
  for w in seq-write cold-read rand-write-iops create create-py delete untar rm-untar; do
    p=$(echo "${R[$w,plain]}" | median); h=$(echo "${R[$w,ph]}" | median); m=$(echo "${R[$w,mount]}" | median)
    printf '%-16s %10s %10s %9s %9s\n' "$w" "$p" "$h" "$(ratio "$h" "$p")" "$(ratio "$m" "$h")"
  done
fi
