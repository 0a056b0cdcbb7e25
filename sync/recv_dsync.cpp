// The receiving side of an msync --delete (dsync) push: once the whole manifest is in, what we
// hold below its root and the sender does not is deleted, each deletion a version.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "sync/dir_digest.hpp"
#include "sync/fsops.hpp"
#include "sync/paths.hpp"
#include "sync/recv_helpers.hpp"
#include "sync/recv_session.hpp"

namespace makuo {

using namespace recv_detail;

PathVersion RecvSession::deleted_version(const std::string& path) {
  struct stat st;
  bool there = lstat_beneath(cfg_.basefd, path, st) == 0;
  PathVersion mine = cfg_.index
                         ? cfg_.index->local_version(path, there ? &st : nullptr, cfg_.self, tick())
                         : PathVersion{};
  return {VersionVector::merge(mine.vv, deletion_.vv), deletion_.origin};
}

uint64_t RecvSession::path_key(std::string_view path) {
  return XXH3_64bits(path.data(), path.size());
}

bool RecvSession::sent(std::string_view path) const {
  return std::binary_search(sender_keys_.begin(), sender_keys_.end(), path_key(path));
}

void RecvSession::run_dsync() {
  dsync_ran_ = true;
  std::sort(sender_keys_.begin(), sender_keys_.end());
  std::vector<wire::DeleteItem> items;
  bool recursive = flags_ & wire::kRecursive;
  // Post-order walk of our own tree under root; delete what the sender lacks.
  std::function<void(int, const std::string&, int)> walk = [&](int dirfd, const std::string& dir,
                                                               int level) {
    std::vector<std::string> names;
    if (list_dir(dirfd, names) != 0) return;
    for (auto& n : names) {
      if (is_temp_name(n)) continue;
      std::string path = join(dir, n);
      struct stat st;
      if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      bool is_dir = S_ISDIR(st.st_mode);
      if (excludes_.match(cfg_.base_path, path, is_dir)) continue;
      bool keep = sent(path);
      if (is_dir && keep && (recursive || level == 0)) {
        int sub = openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
          walk(sub, path, level + 1);
          close(sub);
        }
      }
      if (keep) continue;
      PathVersion v = deleted_version(path);
      int err = dry() ? 0 : remove_tree_at(dirfd, n);
      if (!dry() && !err) applied(path, &v);
      items.push_back({uint16_t(err), path});
    }
  };
  if (!cfg_.readonly && (root_.empty() || valid_relpath(root_))) {
    if (!root_.empty() && !sent(root_)) {
      struct stat st;
      if (lstat_beneath(cfg_.basefd, root_, st) == 0 &&
          !excludes_.match(cfg_.base_path, root_, S_ISDIR(st.st_mode))) {
        PathVersion v = deleted_version(root_);
        int pfd = open_beneath(cfg_.basefd, parent_of(root_), O_RDONLY | O_DIRECTORY);
        int err = pfd < 0 ? -pfd : (dry() ? 0 : remove_tree_at(pfd, std::string(leaf_of(root_))));
        if (pfd >= 0) close(pfd);
        if (!dry() && !err) applied(root_, &v);
        items.push_back({uint16_t(err), root_});
      }
    } else {
      int rfd = open_beneath(cfg_.basefd, root_, O_RDONLY | O_DIRECTORY);
      if (rfd >= 0) {
        walk(rfd, root_, 0);
        close(rfd);
      }
    }
  }
  // Pack into datagram-sized chunks; the last one says "final".
  wire::DeleteReport cur{sid_, 0, false, {}};
  size_t used = 0;
  for (auto& it : items) {
    if (!cur.items.empty() && used + 4 + it.path.size() > 1200) {
      del_chunks_.push_back(cur);
      cur = wire::DeleteReport{sid_, uint32_t(del_chunks_.size()), false, {}};
      used = 0;
    }
    used += 4 + it.path.size();
    cur.items.push_back(it);
  }
  cur.final = true;
  del_chunks_.push_back(cur);
}

void RecvSession::on_delete_ack(const wire::DeleteAck& a, TimePoint now) {
  last_activity_ = now;
  if (a.chunk == del_next_ && del_next_ < del_chunks_.size()) {
    ++del_next_;
    del_sent_at_ = {};
  }
}

}  // namespace makuo
