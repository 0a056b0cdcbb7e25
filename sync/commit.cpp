#include "sync/commit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace makuo {

void Committer::add(PendingCommit c, TimePoint now) {
  if (batch_.empty()) oldest_ = now;
  batch_.push_back(std::move(c));
}

void Committer::flush() {
  if (batch_.empty()) return;
  // One flush makes every temporary of the batch durable before any of them is exposed.
  int sync_err = syncfs(basefd_) == 0 ? 0 : errno;
  ++syncs_;
  std::vector<PendingCommit> batch;
  batch.swap(batch_);
  for (auto& c : batch) {
    int err = sync_err;
    if (!err && renameat(c.dir.get(), c.tmp.c_str(), c.dir.get(), c.leaf.c_str()) != 0) {
      err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST || err == ENOTDIR) {
        // A directory stands where the sender has a file (or the reverse): the push wins.
        err = remove_tree_at(c.dir.get(), c.leaf);
        if (!err && renameat(c.dir.get(), c.tmp.c_str(), c.dir.get(), c.leaf.c_str()) != 0)
          err = errno;
      }
    }
    if (err) unlinkat(c.dir.get(), c.tmp.c_str(), 0);
    if (c.done) c.done(err);
  }
}

}  // namespace makuo
