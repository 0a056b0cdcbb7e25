// One console client's connection as lines: what it types is read into lines (reading pauses
// while kMaxQueuedLines wait, so a client that types ahead cannot grow the daemon), what we
// write goes out in order (a client that reads none of kMaxQueuedOutput is cut off), and it
// closes once, telling its owner.
#pragma once
#include <array>
#include <boost/asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>

namespace makuo::ctl {

class LineChannel {
 public:
  using stream = boost::asio::generic::stream_protocol;
  static constexpr size_t kMaxQueuedLines = 64;
  static constexpr size_t kMaxQueuedOutput = 8 << 20;
  static constexpr size_t kMaxLine = 8192;

  // on_lines: lines may be taken (next_line). on_close: the channel closed (the client left, an
  // error, a line too long, output unread); not called by close() itself.
  LineChannel(stream::socket sock, std::function<void()> on_lines, std::function<void()> on_close);
  // Starts reading; every pending operation keeps owner alive.
  void start(std::shared_ptr<void> owner);
  // Takes the oldest line typed; reading resumes once every line was taken.
  bool next_line(std::string& line);
  void write(std::string s);
  // Closes once everything written went out.
  void close_after_writes();
  void close();
  bool closed() const { return closed_; }
  stream::socket::executor_type executor() { return sock_.get_executor(); }

 private:
  void read();
  void flush();
  void fail();

  stream::socket sock_;
  std::function<void()> on_lines_, on_close_;
  std::shared_ptr<void> owner_;
  std::array<char, 4096> rbuf_{};
  std::string inbuf_;
  std::deque<std::string> lines_, outq_;
  size_t outq_bytes_ = 0;
  bool reading_paused_ = false, writing_ = false, closed_ = false, quit_after_write_ = false;
};

}  // namespace makuo::ctl
