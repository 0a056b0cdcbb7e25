#!/usr/bin/env bash
# The POSIX conformance test again, with makuofs serving requests on per-CPU io_uring queues:
# the fuse module's enable_uring is switched on for the run and put back as it was, also on
# failure. Skipped (77) on kernels without FUSE over io_uring.
set -u
param=/sys/module/fuse/parameters/enable_uring
[ "$(id -u)" = 0 ] || { echo "integration tests need root"; exit 1; }
if [ ! -w "$param" ]; then
  echo "skipped: this kernel has no FUSE over io_uring ($param)"
  exit 77
fi
was=$(cat "$param")
trap 'echo "$was" >"$param"' EXIT
echo Y >"$param"
MK_FUSE_EXPECT=uring "$(dirname "$0")/test_makuofs_posix.sh"
