#!/usr/bin/env bash
# A 1 GiB file and 10,000 small files reach every node intact.
set -u
# 4 nodes x (1 GiB + 40 MB): on a disk short of room, run in RAM instead (fsync is then free).
if [ -z "${MK_WORK:-}" ] && [ "$(df --output=avail -B1G /tmp | tail -1)" -lt 8 ]; then
  MK_WORK=$(mktemp -d /dev/shm/makuo-cluster.XXXXXX)
fi
. "$(dirname "$0")/../../scripts/lib/cluster.sh"
. "$(dirname "$0")/../../scripts/lib/testlib.sh"
t_cluster 4
b1=$(node_base 1)
t_name "10,000 small files"
python3 - "$b1/small" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/d{d:03}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/d{d:03}/f{f:03}", "wb") as fh:
            fh.write(os.urandom(4096))
PY
expect_rc 0 node_msync 1 -r small
for i in 2 3 4; do same_tree "$b1/small" "$(node_base $i)/small" && ok "node $i identical" || fail "node $i differs"; done
t_name "1 GiB file"
head -c 1073741824 /dev/urandom > "$b1/huge.bin"
expect_rc 0 node_msync 1 huge.bin
want=$(sha256sum < "$b1/huge.bin")
for i in 2 3 4; do [ "$(sha256sum < "$(node_base $i)/huge.bin")" = "$want" ] && ok "node $i intact" || fail "node $i differs"; done
t_finish
