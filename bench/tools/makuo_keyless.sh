# makuo_keyless - makuo without a cluster key (makuosan --insecure): the same pushes as
# tools/makuo.sh, to measure in the same run what sealing every datagram costs.
MAKUO_KEY_ARGS="--insecure"
. "$BENCH_DIR/tools/makuo.sh"
