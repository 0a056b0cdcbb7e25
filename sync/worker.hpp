// Blocking work off the event loop: hashing files, walking trees. A job runs on a thread of its
// own and returns what to do with its result, which runs back on the event loop (collect()), so
// that heartbeats, packets and consoles are answered while a 4 GiB file is hashed. Jobs run in
// the order they were posted. Without a thread (tests, the simulator) a job runs at once and
// its handler at the next collect().
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace makuo {

class Worker {
 public:
  // The job's own result handler, run on the event loop.
  using Done = std::function<void()>;
  using Job = std::function<Done()>;

  explicit Worker(bool threaded);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void post(Job job);
  // Runs the handlers of finished jobs (on the event loop); returns how many.
  size_t collect();
  // Called (from the worker's thread) when a job finished.
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }
  size_t pending() const { return posted_ - collected_; }

 private:
  void run();

  bool threaded_;
  std::function<void()> wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<Done> finished_;
  bool stop_ = false;
  size_t posted_ = 0, collected_ = 0;
  std::thread thread_;
};

}  // namespace makuo
