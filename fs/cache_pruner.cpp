#include "fs/cache_pruner.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <vector>

#include "fs/invalidator.hpp"
#include "fs/passthrough.hpp"

namespace makuo::fs {

CachePruner::CachePruner(fuse_session* se, Passthrough& fs, size_t high)
    : se_(se), fs_(fs), high_(high) {}

CachePruner::~CachePruner() {
  stop();
}

void CachePruner::start() {
  fs_.inodes().on_crowded(high_, [this] {
    std::lock_guard lk(mu_);
    wanted_ = true;
    cv_.notify_one();
  });
  thread_ = std::thread([this] { run(); });
}

void CachePruner::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void CachePruner::run() {
  std::unique_lock lk(mu_);
  while (true) {
    cv_.wait(lk, [this] { return wanted_ || stop_; });
    if (stop_) return;
    wanted_ = false;
    lk.unlock();
    prune();
    // The kernel's FORGETs for what it dropped arrive after the notifications return; a
    // lookup meanwhile still sees the table above the mark. A pass per 100 ms at most keeps
    // those from starting another pass over the same names.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fs_.inodes().crowding_handled();
    lk.lock();
  }
}

void CachePruner::prune() {
  InodeTable& t = fs_.inodes();
  size_t held = t.size(), low = high_ - high_ / 4;
  // Reached also when a descriptor could not be opened below the mark (many open files, or
  // another user of the limit): then a quarter goes all the same.
  size_t n = held > low ? held - low : held / 4;
  std::vector<std::string> names;
  names.reserve(n);
  for (int fd : t.least_recent(n)) {
    std::string rel;
    if (fs_.name_of(fd, rel) == Passthrough::Named::kYes && !rel.empty())
      names.push_back(std::move(rel));
  }
  for (auto& rel : names) drop_cached_name(se_, t, rel);
  spdlog::info(
      "the kernel held {} of our inodes (most {}): asked it to drop {} least recently used", held,
      high_, names.size());
}

}  // namespace makuo::fs
