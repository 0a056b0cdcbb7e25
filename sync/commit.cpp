#include "sync/commit.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

namespace makuo {

Committer::Committer(int basefd, bool threaded, std::function<void()> wake)
    : basefd_(basefd), threaded_(threaded), wake_(std::move(wake)) {}

Committer::~Committer() {
  if (thread_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

void Committer::add(PendingCommit c, TimePoint now) {
  if (batch_.empty()) oldest_ = now;
  batch_.push_back(std::move(c));
}

void Committer::run(std::vector<PendingCommit>& batch) {
  // Each commit's directory, looked at once: which file system, which directory.
  std::vector<std::pair<dev_t, ino_t>> where(batch.size(), {dev_t(-1), ino_t(0)});
  for (size_t i = 0; i < batch.size(); ++i) {
    struct stat st;
    if (fstat(batch[i].dir.get(), &st) == 0) where[i] = {st.st_dev, st.st_ino};
  }
  // One flush per file system makes every temporary of the batch durable before any of them
  // is exposed (the base may hold mount points of others).
  std::vector<std::pair<dev_t, int>> fs_err;
  auto synced = [&](dev_t dev, int fd) {
    for (auto& f : fs_err)
      if (f.first == dev) return f.second;
    return fs_err.emplace_back(dev, syncfs(fd) == 0 ? 0 : errno).second;
  };
  if (struct stat bst; fstat(basefd_, &bst) == 0) synced(bst.st_dev, basefd_);
  for (size_t i = 0; i < batch.size(); ++i) synced(where[i].first, batch[i].dir.get());
  for (size_t i = 0; i < batch.size(); ++i) {
    PendingCommit& c = batch[i];
    int err = synced(where[i].first, c.dir.get());
    struct stat st;
    // Held from before the checks until after the rename. A write through a makuofs mount takes
    // a shared lock and then checks that its file is still linked (fs/passthrough.cpp,
    // op_open): it either holds the lock first, and its file stays, or waits for this one and
    // then finds its file replaced, and the kernel opens the new one. Checked and released in
    // turn, a writer could open between the check and the rename, and write into the
    // replaced file.
    Fd held;
    if (!err && c.check_judged) {
      bool written = false;
      if (fstatat(c.dir.get(), c.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(st.st_mode))
        held = lock_unless_written(c.dir.get(), c.leaf, written);
      if (written) {
        err = kBeingWritten;
      } else {
        bool there = fstatat(c.dir.get(), c.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
        // A directory in the way changes with its contents; the push replaces it regardless.
        if (!(there && S_ISDIR(st.st_mode)) && (there ? stamp_of(st) : FileStamp{}) != c.judged)
          err = kJudgeAgain;
      }
    }
    struct stat dst;
    bool restore = c.keep_dir_mtime && fstat(c.dir.get(), &dst) == 0;
    if (!err && !c.keep_as.empty() &&
        fstatat(c.dir.get(), c.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && stamp_of(st) == c.judged)
      c.kept = linkat(c.dir.get(), c.leaf.c_str(), c.dir.get(), c.keep_as.c_str(), 0) == 0 ||
               (errno == EEXIST && fstatat(c.dir.get(), c.keep_as.c_str(), &st, 0) == 0 &&
                st.st_ino == c.judged.ino && st.st_dev == c.judged.dev);  // kept before
    if (!err && renameat(c.dir.get(), c.tmp.c_str(), c.dir.get(), c.leaf.c_str()) != 0) {
      err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST || err == ENOTDIR) {
        // A directory stands where the sender has a file (or the reverse): the push wins.
        err = remove_tree_at(c.dir.get(), c.leaf);
        if (!err && renameat(c.dir.get(), c.tmp.c_str(), c.dir.get(), c.leaf.c_str()) != 0)
          err = errno;
      }
    }
    if (err && err != kJudgeAgain) unlinkat(c.dir.get(), c.tmp.c_str(), 0);
    if (restore) {
      timespec t[2] = {{0, UTIME_OMIT}, dst.st_mtim};
      futimens(c.dir.get(), t);
    }
    c.err = err;
  }
  // The renames are durable before anyone hears they are done.
  std::vector<std::pair<std::pair<dev_t, ino_t>, int>> dir_err;
  for (size_t i = 0; i < batch.size(); ++i) {
    PendingCommit& c = batch[i];
    if (c.err) continue;
    auto it =
        std::find_if(dir_err.begin(), dir_err.end(), [&](auto& d) { return d.first == where[i]; });
    if (it == dir_err.end())
      it = dir_err.insert(dir_err.end(), {where[i], fsync(c.dir.get()) == 0 ? 0 : errno});
    c.err = it->second;
  }
}

void Committer::flush() {
  if (batch_.empty()) return;
  std::vector<PendingCommit> batch;
  batch.swap(batch_);
  ++syncs_;
  if (!threaded_) {
    run(batch);
    for (auto& c : batch)
      if (c.done) c.done(c);
    return;
  }
  // Started on first use: the daemon forks after constructing its engine.
  if (!thread_.joinable()) thread_ = std::thread([this] { worker(); });
  {
    std::lock_guard lk(mu_);
    jobs_.push_back(std::move(batch));
  }
  cv_.notify_one();
}

size_t Committer::collect() {
  if (!threaded_) return 0;
  std::vector<PendingCommit> done;
  {
    std::lock_guard lk(mu_);
    done.swap(finished_);
  }
  for (auto& c : done)
    if (c.done) c.done(c);
  return done.size();
}

void Committer::worker() {
  for (;;) {
    std::vector<PendingCommit> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      batch = std::move(jobs_.front());
      jobs_.pop_front();
    }
    run(batch);
    {
      std::lock_guard lk(mu_);
      for (auto& c : batch) finished_.push_back(std::move(c));
    }
    if (wake_) wake_();
  }
}

}  // namespace makuo
