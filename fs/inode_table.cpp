#include "fs/inode_table.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace makuo::fs {

InodeTable::InodeTable(int root_fd) {
  root_.fd = root_fd;
  struct stat st;
  if (fstatat(root_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0) {
    root_.dev = st.st_dev;
    root_.ino = st.st_ino;
  }
  root_.nlookup = 2;  // never forgotten
}

InodeTable::~InodeTable() {
  for (auto& [k, i] : map_) close(i->fd);
  close(root_.fd);
}

Inode& InodeTable::add_lookup(int fd, const struct stat& st) {
  Inode* added;
  bool over;
  {
    std::lock_guard lk(mu_);
    if (st.st_dev == root_.dev && st.st_ino == root_.ino) {
      close(fd);
      return root_;
    }
    auto& slot = map_[{st.st_dev, st.st_ino}];
    if (slot) {
      close(fd);
    } else {
      slot = std::make_unique<Inode>();
      slot->fd = fd;
      slot->dev = st.st_dev;
      slot->ino = st.st_ino;
    }
    ++slot->nlookup;
    slot->seen = ++lookups_;
    added = slot.get();
    over = map_.size() > high_;
  }
  crowded_if(over);
  return *added;
}

void InodeTable::forget(uint64_t ino, uint64_t n) {
  if (ino == 1) return;
  std::lock_guard lk(mu_);
  Inode& i = get(ino);
  i.nlookup -= std::min(n, i.nlookup);
  if (i.nlookup == 0) {
    close(i.fd);
    map_.erase({i.dev, i.ino});
  }
}

uint64_t InodeTable::find(dev_t dev, ino_t ino) {
  std::lock_guard lk(mu_);
  if (dev == root_.dev && ino == root_.ino) return 1;
  auto it = map_.find({dev, ino});
  return it == map_.end() ? 0 : id(*it->second);
}

void InodeTable::on_crowded(size_t high, std::function<void()> crowded) {
  std::lock_guard lk(mu_);
  high_ = high;
  crowded_ = std::move(crowded);
}

void InodeTable::report_exhausted() {
  crowded_if(true);
}

void InodeTable::crowded_if(bool now) {
  if (now && crowded_ && !crowd_pending_.exchange(true)) crowded_();
}

void InodeTable::crowding_handled() {
  crowd_pending_ = false;
}

size_t InodeTable::size() {
  std::lock_guard lk(mu_);
  return map_.size();
}

std::vector<int> InodeTable::least_recent(size_t n) {
  std::lock_guard lk(mu_);
  std::vector<const Inode*> all;
  all.reserve(map_.size());
  for (auto& [k, i] : map_) all.push_back(i.get());
  n = std::min(n, all.size());
  auto older = [](const Inode* a, const Inode* b) { return a->seen < b->seen; };
  std::nth_element(all.begin(), all.begin() + ptrdiff_t(n), all.end(), older);
  std::vector<int> fds(n);
  for (size_t k = 0; k < n; ++k) fds[k] = all[k]->fd;
  return fds;
}

}  // namespace makuo::fs
