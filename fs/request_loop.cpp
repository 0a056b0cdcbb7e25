#include "fs/request_loop.hpp"

#define FUSE_USE_VERSION 312

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace makuo::fs {

namespace {

using Clock = std::chrono::steady_clock;

class RequestLoop {
 public:
  RequestLoop(fuse_session* se, const LoopConfig& cfg)
      : se_(se),
        devfd_(fuse_session_fd(se)),
        max_threads_(std::max(1u, cfg.max_threads)),
        spin_(std::chrono::microseconds(cfg.spin_us)),
        stall_(std::chrono::milliseconds(std::max(1u, cfg.stall_ms))),
        wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
        done_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  ~RequestLoop() {
    if (wake_fd_ >= 0) close(wake_fd_);
    if (done_fd_ >= 0) close(done_fd_);
  }

  int run() {
    if (wake_fd_ < 0 || done_fd_ < 0) {
      spdlog::error("request loop: eventfd: {}", std::strerror(errno));
      return 1;
    }
    // Only the leader reads, so a non-blocking device serves its polling and no one else.
    fcntl(devfd_, F_SETFL, fcntl(devfd_, F_GETFL) | O_NONBLOCK);
    {
      std::lock_guard lk(m_);
      spawn([this] { watch(); });
      spawn_worker();
    }
    // Until a thread saw the end (unmounted), or a signal's handler (fuse_set_signal_handlers)
    // ended the session, interrupting this poll.
    for (;;) {
      pollfd p{done_fd_, POLLIN, 0};
      if (poll(&p, 1, -1) > 0 || fuse_session_exited(se_)) break;
    }
    std::vector<std::thread> threads;
    {
      std::lock_guard lk(m_);
      stop_ = true;
      threads.swap(threads_);
    }
    followers_.notify_all();
    watchdog_.notify_all();
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof one) < 0) spdlog::debug("request loop: eventfd write");
    // A thread still inside a request (on a hung or frozen file system) is left to the
    // process's exit, as libfuse's loop cancels it.
    std::unique_lock lk(m_);
    bool all_done = exited_.wait_for(lk, std::chrono::seconds(2), [&] { return running_ == 0; });
    if (!all_done) spdlog::warn("{} request thread(s) still busy at exit", running_);
    lk.unlock();
    for (auto& t : threads) {
      if (all_done)
        t.join();
      else
        t.detach();
    }
    stuck_ = !all_done;
    return 0;
  }
  bool stuck() const { return stuck_; }

 private:
  enum class State { kAsleep, kReading, kServing };
  // One caller's requests come back to back more often than not: a lookup and its create,
  // the release no one waits for behind the next one, the releasedirs and forgets of rm -rf.
  // Counting three, one rm -rf of an untarred tree handed over thousands of times (6,592
  // futex calls against 647 counting eight), each a follower's wake-up for nothing, and took
  // 14 % longer.
  static constexpr unsigned kQueuedToShare = 8;

  // Threads start with every signal blocked: signals go to run()'s thread, whose poll they
  // interrupt.
  template <class F>
  void spawn(F f) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    ++running_;
    threads_.emplace_back([this, f] {
      f();
      std::lock_guard lk(m_);
      if (--running_ == 0) exited_.notify_all();
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  void spawn_worker() {
    ++workers_;
    unsigned id = workers_;
    spawn([this, id] { work(id); });
  }
  // With m_ held: lets another thread read.
  void pass_reading() {
    leader_ = 0;
    state_ = State::kReading;
    if (idle_ > 0)
      followers_.notify_one();
    else if (workers_ < max_threads_ && !stop_)
      spawn_worker();
  }

  void work(unsigned id) {
    fuse_buf buf{};
    std::unique_lock lk(m_);
    for (;;) {
      ++idle_;
      followers_.wait(lk, [&] { return stop_ || leader_ == 0; });
      --idle_;
      if (stop_) break;
      leader_ = id;
      state_ = State::kReading;
      lk.unlock();
      lead(id, buf);
      lk.lock();
    }
    lk.unlock();
    std::free(buf.mem);
  }

  // Reads and serves while this thread is the leader; once another thread leads, goes on
  // serving only what it finds queued.
  void lead(unsigned id, fuse_buf& buf) {
    auto waiting_since = Clock::now();
    // Watch for the next request only if this one came soon after the last: a thread that
    // sleeps between sparse requests costs nothing.
    bool spin = true;
    bool leading = true;
    unsigned queued = 0;  // requests in a row found queued when we came back from the last
    for (;;) {
      int r = fuse_session_receive_buf(se_, &buf);
      if (r == -EAGAIN) {
        if (!leading) return;
        queued = 0;
        if (spin && Clock::now() - waiting_since < spin_) {
          // Not at the expense of a runnable caller on this CPU.
          sched_yield();
          continue;
        }
        if (!sleep_until_readable()) return;
        continue;
      }
      if (r == -EINTR) continue;  // the request was interrupted before we read it
      if (r <= 0) {
        if (r < 0) spdlog::error("reading /dev/fuse: {}", std::strerror(-r));
        end();
        return;
      }
      spin = Clock::now() - waiting_since <= spin_;
      {
        std::lock_guard lk(m_);
        ++served_;
        if (leading) {
          // Many in a row mean more callers than one thread keeps up with.
          if (++queued >= kQueuedToShare) {
            pass_reading();
            leading = false;
          } else {
            state_ = State::kServing;
          }
        }
      }
      fuse_session_process_buf(se_, &buf);
      std::lock_guard lk(m_);
      if (stop_) return;
      if (leader_ == 0) leader_ = id;  // no follower took over meanwhile
      leading = leader_ == id;
      if (leading) state_ = State::kReading;
      waiting_since = Clock::now();
    }
  }

  // The leader found nothing for spin_: sleeps until a request comes. False when stopping.
  bool sleep_until_readable() {
    {
      std::lock_guard lk(m_);
      state_ = State::kAsleep;
    }
    pollfd p[2] = {{devfd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    while (poll(p, 2, -1) < 0 && errno == EINTR) {
    }
    std::lock_guard lk(m_);
    if (stop_) return false;
    state_ = State::kReading;
    if (watchdog_asleep_) {
      watchdog_asleep_ = false;
      watchdog_.notify_one();
    }
    return true;
  }

  void end() {
    std::lock_guard lk(m_);
    stop_ = true;
    followers_.notify_all();
    watchdog_.notify_all();
    uint64_t one = 1;
    if (write(done_fd_, &one, sizeof one) < 0) spdlog::debug("request loop: eventfd write");
  }

  // Every stall_ while requests come: if the leader still serves the request it served at the
  // last look, a follower reads meanwhile. Sleeps after a look that found nothing served and
  // the leader asleep, so that only a request after a quiet spell wakes it.
  void watch() {
    std::unique_lock lk(m_);
    while (!stop_) {
      uint64_t seen = served_;
      if (watchdog_.wait_for(lk, stall_, [&] { return stop_; })) break;
      if (served_ != seen) continue;
      if (state_ == State::kServing) {
        pass_reading();
      } else if (state_ == State::kAsleep) {
        watchdog_asleep_ = true;
        watchdog_.wait(lk, [&] { return stop_ || !watchdog_asleep_; });
      }
    }
  }

  fuse_session* se_;
  int devfd_;
  unsigned max_threads_;
  Clock::duration spin_, stall_;
  int wake_fd_, done_fd_;

  std::mutex m_;
  std::condition_variable followers_, watchdog_, exited_;
  std::vector<std::thread> threads_;
  unsigned leader_ = 0;  // worker ids start at 1; 0: no one reads
  unsigned workers_ = 0, idle_ = 0, running_ = 0;
  uint64_t served_ = 0;
  State state_ = State::kReading;
  bool stop_ = false, watchdog_asleep_ = false;
  bool stuck_ = false;
};

unsigned usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return unsigned(CPU_COUNT(&set));
}

}  // namespace

int serve_requests(fuse_session* se, const LoopConfig& cfg) {
  if (cfg.spin_us == 0 || usable_cpus() < 2) {
    spdlog::info("requests served by libfuse's loop ({})",
                 cfg.spin_us == 0 ? "spin=0" : "a single CPU");
    fuse_loop_config* lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, cfg.max_threads);
    int rc = fuse_session_loop_mt(se, lc);
    fuse_loop_cfg_destroy(lc);
    // After a signal, libfuse returns its number: an end asked for, not a failure.
    return rc == 0 || fuse_session_exited(se) ? 0 : 1;
  }
  spdlog::info("requests read by one thread at a time, which watches {} us for the next",
               cfg.spin_us);
  auto* loop = new RequestLoop(se, cfg);
  int rc = loop->run();
  // A thread left inside a request still refers to the loop until the process exits.
  if (!loop->stuck()) delete loop;
  return rc;
}

}  // namespace makuo::fs
