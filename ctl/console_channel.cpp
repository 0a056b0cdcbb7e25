#include "ctl/console_channel.hpp"

#include <spdlog/spdlog.h>

namespace makuo::ctl {

namespace asio = boost::asio;

LineChannel::LineChannel(stream::socket sock, std::function<void()> on_lines,
                         std::function<void()> on_close)
    : sock_(std::move(sock)), on_lines_(std::move(on_lines)), on_close_(std::move(on_close)) {}

void LineChannel::start(std::shared_ptr<void> owner) {
  owner_ = std::move(owner);
  read();
}

void LineChannel::read() {
  sock_.async_read_some(asio::buffer(rbuf_),
                        [this, keep = owner_](boost::system::error_code ec, size_t n) {
                          if (closed_) return;
                          if (ec) return fail();
                          inbuf_.append(rbuf_.data(), n);
                          size_t pos;
                          while ((pos = inbuf_.find('\n')) != std::string::npos) {
                            lines_.push_back(inbuf_.substr(0, pos));
                            inbuf_.erase(0, pos + 1);
                          }
                          if (inbuf_.size() > kMaxLine) {
                            spdlog::warn("console: line too long, connection closed");
                            return fail();
                          }
                          on_lines_();
                          if (closed_) return;
                          if (lines_.size() < kMaxQueuedLines)
                            read();
                          else
                            reading_paused_ = true;
                        });
}

bool LineChannel::next_line(std::string& line) {
  if (closed_ || lines_.empty()) return false;
  line = std::move(lines_.front());
  lines_.pop_front();
  if (lines_.empty() && reading_paused_) {
    reading_paused_ = false;
    read();
  }
  return true;
}

void LineChannel::write(std::string s) {
  if (closed_) return;
  outq_bytes_ += s.size();
  if (outq_bytes_ > kMaxQueuedOutput) {
    spdlog::warn("console: the client read none of the last {} MiB of output, connection closed",
                 kMaxQueuedOutput >> 20);
    return fail();
  }
  outq_.push_back(std::move(s));
  if (!writing_) flush();
}

void LineChannel::flush() {
  if (outq_.empty() || closed_) {
    writing_ = false;
    if (quit_after_write_ && !closed_) fail();
    return;
  }
  writing_ = true;
  auto msg = std::make_shared<std::string>(std::move(outq_.front()));
  outq_.pop_front();
  outq_bytes_ -= msg->size();
  asio::async_write(sock_, asio::buffer(*msg),
                    [this, keep = owner_, msg](boost::system::error_code ec, size_t) {
                      if (closed_) return;
                      if (ec) return fail();
                      flush();
                    });
}

void LineChannel::close_after_writes() {
  quit_after_write_ = true;
  if (!writing_) fail();
}

void LineChannel::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  sock_.shutdown(stream::socket::shutdown_both, ec);
  sock_.close(ec);
  // Pending handlers hold the owner until they run; the channel itself no longer does.
  owner_.reset();
}

void LineChannel::fail() {
  close();
  on_close_();
}

}  // namespace makuo::ctl
