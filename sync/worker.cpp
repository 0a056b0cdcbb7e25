#include "sync/worker.hpp"

namespace makuo {

Worker::Worker(bool threaded) : threaded_(threaded) {}

Worker::~Worker() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Worker::post(Job job) {
  ++posted_;
  if (!threaded_) {  // at once; its handler at the next collect(), as with a thread
    finished_.push_back(job());
    return;
  }
  // Started on first use: the daemon forks after constructing its engine.
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  {
    std::lock_guard lk(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

size_t Worker::collect() {
  std::vector<Done> done;
  {
    std::lock_guard lk(mu_);
    done.swap(finished_);
  }
  for (auto& d : done) {
    ++collected_;
    if (d) d();
  }
  return done.size();
}

void Worker::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Done d = job();
    {
      std::lock_guard lk(mu_);
      finished_.push_back(std::move(d));
    }
    if (wake_) wake_();
  }
}

}  // namespace makuo
