// Per-directory digests for catch-up: a directory's digest covers what is directly in it
// (names, types, sizes, mtimes of non-directories, modes, owners, link targets; not the
// directories' own mtimes, which concurrent pushes may leave differing). Two nodes with equal
// digests for a directory hold the same entries in it, so a catch-up lists only the
// directories whose digests differ.
#pragma once
#include <string>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

// The entries directly in directory rel ("" = the base), as a push carries them (our
// temporaries left out). 0 or errno.
int dir_children(int basefd, const std::string& rel, std::vector<wire::Entry>& out);
// The digest of a directory's entries as dir_children lists them.
wire::Hash128 digest_of(const std::vector<wire::Entry>& children);
// dir_children, then digest_of. 0 or errno.
int dir_digest(int basefd, const std::string& rel, wire::Hash128& out);

}  // namespace makuo
