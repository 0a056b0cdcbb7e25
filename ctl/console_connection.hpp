// One console client: the password (if the daemon has one), then one command at a time, with
// makuosan's message catalogue and levels. The line I/O is its LineChannel's; the pushes it
// starts are in console_push.cpp.
#pragma once
#include <boost/asio.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctl/console_channel.hpp"
#include "ctl/console_line.hpp"
#include "sync/paths.hpp"
#include "sync/scan.hpp"
#include "sync/send_session.hpp"

namespace makuo::ctl {

class ConsoleServer;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ConsoleServer& srv, LineChannel::stream::socket sock);
  void start();
  void close();
  bool working() const { return working_; }
  const std::string& command() const { return cmdline_; }

 private:
  void write(std::string s) { channel_.write(std::move(s)); }
  void line(int level, const std::string& text) {
    if (level <= loglevel_) write(text + "\n");
  }
  // Lines typed while a command runs wait for it (makuosan threw them away).
  void pump_lines();
  void check_password(std::string l);
  void finish();
  void begin_async();
  void tick();
  void execute(const std::string& raw);
  void exclude(const std::vector<std::string>& tok);
  void members();
  void status_json();
  void status();
  // console_push.cpp
  void push(const std::vector<std::string>& tok);
  void start_push(SessionRequest req, ScanResult& sr, CommandArgs& a, const std::string& path,
                  const std::string& c, bool is_check, bool is_dsync, bool recursive);
  bool chgrp(const std::string& g, std::vector<wire::Entry>& entries);

  ConsoleServer& srv_;
  LineChannel channel_;
  boost::asio::steady_timer alive_timer_;
  boost::asio::steady_timer login_timer_;
  bool closed_ = false;
  bool authed_ = false;
  bool working_ = false;
  bool alive_ = false;
  bool progress_ = false;
  int loglevel_ = 0;
  Excludes excludes_;
  std::optional<uint32_t> sid_;
  std::string cmdline_;
  TimePoint last_alive_{};
};

}  // namespace makuo::ctl
