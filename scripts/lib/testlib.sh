# testlib.sh - assertions for the integration tests (sourced after cluster.sh).
T_FAILS=0
t_name() { T_CASE="$*"; mk_log "--- $*"; }
fail() { mk_log "FAIL [$T_CASE]: $*"; T_FAILS=$((T_FAILS + 1)); }
ok() { mk_log "ok   [$T_CASE]: $*"; }
expect_rc() {  # expect_rc WANT CMD...: WANT is 0 or "nonzero"
  local want=$1; shift
  "$@" >"$MK_WORK/out" 2>"$MK_WORK/err"; local rc=$?
  if [ "$want" = nonzero ]; then [ $rc -ne 0 ] || { fail "expected failure: $*"; cat "$MK_WORK/out" "$MK_WORK/err" >&2; return 1; }
  else [ $rc -eq "$want" ] || { fail "rc=$rc (want $want): $*"; cat "$MK_WORK/out" "$MK_WORK/err" >&2; return 1; }; fi
  return 0
}
same_tree() {  # same_tree A B [--no-owner]
  if diff <(tree_sig "$1" "${@:3}") <(tree_sig "$2" "${@:3}") >"$MK_WORK/diff"; then return 0; fi
  head -20 "$MK_WORK/diff" >&2; return 1
}
wait_for() {  # wait_for SECONDS CMD...: polls CMD until it succeeds; 1 if the deadline passed
  local t=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $t ] || return 1; sleep 0.05; done
}
quiet_same_tree() { diff <(tree_sig "$1" "${@:3}") <(tree_sig "$2" "${@:3}") >/dev/null 2>&1; }
converged() {  # converged N [TREESIG OPTIONS]: nodes 2..N have node 1's tree
  local n=$1 i; shift
  for i in $(seq 2 "$n"); do quiet_same_tree "$(node_base 1)" "$(node_base "$i")" "$@" || return 1; done
}
t_finish() {
  if [ "$T_FAILS" -gt 0 ]; then mk_log "$T_FAILS check(s) failed"; exit 1; fi
  mk_log "all checks passed"
}
need_root() { [ "$(id -u)" = 0 ] || { echo "integration tests need root (network namespaces)"; exit 1; }; }
# t_cluster N: (as root) a cluster of N nodes for this test, torn down however the test ends.
t_cluster() { need_root; trap cluster_down EXIT; cluster_up "$1" || exit 1; }
