// Per-directory digests for catch-up: a directory's digest covers what is directly in it (names,
// types, sizes, mtimes of non-directories, modes, owners, link targets, and the version of each
// as the tree index holds it; the tombstones of what was deleted in it; not the directories' own
// mtimes, which concurrent pushes may leave differing). Two nodes with equal digests for a
// directory hold the same entries, of the same versions, in it, so a catch-up lists only the
// directories whose digests differ.
#pragma once
#include <string>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

class TreeIndex;

// The entries directly in directory rel ("" = the base), as a push carries them (our
// temporaries left out), without versions. 0 or errno.
int dir_children(int basefd, const std::string& rel, std::vector<wire::Entry>& out);
// The digest of a directory's entries (with their versions) and of its tombstones.
wire::Hash128 digest_of(const std::vector<wire::Entry>& children,
                        const std::vector<wire::Entry>& tombstones);
// The digest of directory rel whose entries dir_children listed: their versions and the
// directory's tombstones from index (may be null). A state the index did not record is a change
// made here: its version is one nobody else holds, and the digest differs from every other
// node's.
wire::Hash128 versioned_digest(std::vector<wire::Entry>& children, const TreeIndex* index,
                               const std::string& rel);
// The tombstones directly in directory rel, as Absent entries.
std::vector<wire::Entry> tombstone_entries(const TreeIndex& index, const std::string& rel);

}  // namespace makuo
