#include "fs/inode_table.hpp"

#include <fcntl.h>
#include <unistd.h>

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
  return *slot;
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

}  // namespace makuo::fs
