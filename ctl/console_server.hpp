// makuosan's console (reference §2): TCP 127.0.0.1:5000 or a unix socket, "> " prompt,
// optional password, one command at a time per connection, the message catalogue and levels.
#pragma once
#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "sync/engine.hpp"
#include "sync/udp_node.hpp"

namespace makuo::ctl {

struct StatusReport;

struct ConsoleConfig {
  std::string listen_addr = "127.0.0.1";
  uint16_t port = 5000;
  std::string unix_path;  // non-empty: unix socket instead of TCP
  std::optional<std::string> password;
  size_t max_connections = 64;
  // daemon facts the commands need
  int basefd = -1;
  std::string base_path;
  std::string version;
  bool nosend = false;                                     // -s: console refuses send/sync/dsync
  std::optional<uid_t> owner_only;                         // -O
  std::vector<std::string> group_names;                    // -g/-G names usable with send -g
  std::function<std::vector<std::string>()> extra_status;  // more "status" lines
  std::function<void(StatusReport&)> extra_report;         // more "status json" facts
  // Gives an msync push that changes the targets its versions (each entry a new one, on top of
  // what this node holds; a dsync the version of its deletions), before it starts.
  std::function<void(SessionRequest&)> version_push;
  TimePoint started{};
};

class Connection;

class ConsoleServer {
 public:
  ConsoleServer(boost::asio::io_context& io, ConsoleConfig cfg, Engine& engine, UdpNode& node);
  ~ConsoleServer();
  // Binds the listening socket; throws std::system_error on failure.
  void listen();
  void close();
  const ConsoleConfig& config() const { return cfg_; }
  Engine& engine() { return engine_; }
  UdpNode& node() { return node_; }
  size_t connections() const { return conns_.size(); }
  std::vector<std::string> working_commands(const Connection* except) const;
  void forget(Connection* c);

 private:
  void accept();

  boost::asio::io_context& io_;
  ConsoleConfig cfg_;
  Engine& engine_;
  UdpNode& node_;
  boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol> acceptor_;
  std::set<std::shared_ptr<Connection>> conns_;
};

}  // namespace makuo::ctl
