#include "fs/cache_pruner.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <utility>
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
  InodeTable& t = fs_.inodes();
  std::unique_lock lk(mu_);
  while (true) {
    // Also once a second: when the passes stopped for lack of progress (FORGETs late, files
    // open), nothing else would start one once lookups stop.
    cv_.wait_for(lk, std::chrono::seconds(1), [this] { return wanted_ || stop_; });
    if (stop_) return;
    bool asked = std::exchange(wanted_, false);
    if (!asked && t.size() <= high_) continue;
    size_t held = t.size(), dropped = 0;
    int passes = 0;
    // Lookups go on during a pass: passes follow one another while the table stays above the
    // mark and each leaves it smaller (what is in use cannot be dropped). The kernel's
    // FORGETs arrive after its notifications return; 100 ms between passes lets the next one
    // see them rather than ask for the same names again.
    while (true) {
      size_t before = t.size();
      lk.unlock();
      dropped += prune(before);
      ++passes;
      lk.lock();
      if (cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return stop_; })) return;
      size_t after = t.size();
      if (after <= high_ || after >= before) break;
    }
    t.crowding_handled();
    auto now = std::chrono::steady_clock::now();
    bool quiet = now - last_log_ < std::chrono::seconds(10);
    if (!quiet) last_log_ = now;
    spdlog::log(quiet ? spdlog::level::debug : spdlog::level::info,
                "the kernel held {} of our inodes (most {}): asked it to drop {} least "
                "recently used ({} pass(es)); it holds {} now",
                held, high_, dropped, passes, t.size());
  }
}

size_t CachePruner::prune(size_t held) {
  InodeTable& t = fs_.inodes();
  size_t low = high_ - high_ / 4;
  // Reached also when a descriptor could not be opened below the mark (many open files, or
  // another user of the limit): then a quarter goes all the same.
  size_t n = held > low ? held - low : held / 4, asked = 0;
  std::string rel;
  for (int fd : t.least_recent(n))
    if (fs_.name_of(fd, rel) == Passthrough::Named::kYes && !rel.empty()) {
      drop_cached_name(se_, t, rel);
      ++asked;
    }
  return asked;
}

}  // namespace makuo::fs
