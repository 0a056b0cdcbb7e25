// The kernel's inode numbers for makuofs: one entry per base-directory object the kernel has
// looked up, holding an O_PATH descriptor of it (so a rename behind our back cannot make us
// operate on the wrong object) and the kernel's lookup count.
#pragma once
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace makuo::fs {

struct Inode {
  int fd = -1;  // O_PATH | O_NOFOLLOW
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;            // guarded by the table's mutex
  uint64_t seen = 0;               // guarded by the table's mutex: when last looked up
  std::atomic<bool> dirty{false};  // written since its change was last recorded
  // Passthrough (guarded by Passthrough's backing mutex). The kernel allows one backing file
  // per inode, and no cached open beside passthrough ones: every open of the inode shares one
  // backing id, or none of them uses one.
  int32_t backing = 0;
  uint32_t backing_opens = 0, plain_opens = 0;
};

class InodeTable {
 public:
  // root_fd: an O_PATH descriptor of the base directory; the table owns it.
  explicit InodeTable(int root_fd);
  ~InodeTable();

  Inode& root() { return root_; }
  // ino 1 is the root; others are the Inode's address, as the kernel hands it back to us.
  Inode& get(uint64_t ino) { return ino == 1 ? root_ : *reinterpret_cast<Inode*>(ino); }
  uint64_t id(const Inode& i) const { return &i == &root_ ? 1 : reinterpret_cast<uint64_t>(&i); }

  // The entry for (st.st_dev, st.st_ino), created around fd (whose ownership passes to the
  // table) or, if it exists, fd is closed. Counts one lookup.
  Inode& add_lookup(int fd, const struct stat& st);
  // Drops n lookups; forgets the entry at zero.
  void forget(uint64_t ino, uint64_t n);
  // The kernel's id of the object, or 0 when the kernel does not know it.
  uint64_t find(dev_t dev, ino_t ino);

  // Each entry holds a descriptor for as long as the kernel caches its inode, and the kernel
  // drops cached inodes only under memory pressure: a walk of a large tree would run us out
  // of descriptors (EMFILE on every later lookup, even of what rm needs). Past `high`
  // entries, or when a descriptor could not be opened, `crowded` is called (from the thread
  // that noticed, outside the table's lock), once until crowding_handled().
  // on_crowded is called before requests are served.
  void on_crowded(size_t high, std::function<void()> crowded);
  void report_exhausted();
  void crowding_handled();
  // From the crossing of the mark until the pruner's pass is done.
  bool crowded() const { return crowd_pending_; }
  size_t size();
  // The descriptors of the n entries least recently looked up. By the time the caller uses
  // them, the kernel may have made us forget some (and the number been reused): good only for
  // what a wrong guess does not harm, such as naming an entry for the kernel to drop.
  std::vector<int> least_recent(size_t n);

 private:
  void crowded_if(bool now);

  std::mutex mu_;
  Inode root_;
  std::map<std::pair<dev_t, ino_t>, std::unique_ptr<Inode>> map_;
  uint64_t lookups_ = 0;
  size_t high_ = SIZE_MAX;
  std::function<void()> crowded_;
  std::atomic<bool> crowd_pending_{false};
};

}  // namespace makuo::fs
