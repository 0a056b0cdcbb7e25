// The daemon's event sources on its io_context: a job that says when it wants to run next, and
// a descriptor whose readiness runs a handler. Both re-arm themselves; both stop with the
// io_context.
#pragma once
#include <boost/asio.hpp>
#include <functional>

#include "sync/clock.hpp"

namespace makuo {

class Periodic {
 public:
  // job runs now (start) and then whenever the time it returned comes, or when kicked.
  Periodic(boost::asio::io_context& io, std::function<TimePoint()> job)
      : io_(io), timer_(io), job_(std::move(job)) {}
  void start() { fire(); }
  // Runs the job soon, on the io_context's thread; callable from any thread.
  void kick() {
    boost::asio::post(io_, [this] { fire(); });
  }

 private:
  void fire() {
    timer_.expires_at(job_());  // cancels the wait before (its handler sees an error)
    timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) fire();
    });
  }
  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  std::function<TimePoint()> job_;
};

class OnReadable {
 public:
  // Owns fd.
  OnReadable(boost::asio::io_context& io, int fd, std::function<void()> handler)
      : sd_(io, fd), handler_(std::move(handler)) {}
  void start() {
    sd_.async_wait(boost::asio::posix::descriptor::wait_read,
                   [this](const boost::system::error_code& e) {
                     if (e) return;
                     handler_();
                     start();
                   });
  }

 private:
  boost::asio::posix::stream_descriptor sd_;
  std::function<void()> handler_;
};

}  // namespace makuo
