#include "ctl/console_server.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/console_connection.hpp"

namespace makuo::ctl {
namespace asio = boost::asio;
using stream = asio::generic::stream_protocol;

ConsoleServer::ConsoleServer(asio::io_context& io, ConsoleConfig cfg, Engine& engine, UdpNode& node)
    : io_(io), cfg_(std::move(cfg)), engine_(engine), node_(node), acceptor_(io) {}

ConsoleServer::~ConsoleServer() {
  close();
}

void ConsoleServer::listen() {
  if (!cfg_.unix_path.empty()) {
    asio::local::stream_protocol::endpoint ep(cfg_.unix_path);
    // Refuse to steal the socket of a daemon that is still running.
    asio::local::stream_protocol::socket probe(io_);
    boost::system::error_code ec;
    probe.connect(ep, ec);
    if (!ec)
      throw std::system_error(EADDRINUSE, std::generic_category(),
                              "console socket " + cfg_.unix_path + " is in use");
    ::unlink(cfg_.unix_path.c_str());
    acceptor_.open(stream(AF_UNIX, 0));
    acceptor_.bind(stream::endpoint(ep.data(), ep.size()));
    ::chmod(cfg_.unix_path.c_str(), 0660);
  } else {
    asio::ip::tcp::endpoint ep(asio::ip::make_address(cfg_.listen_addr), cfg_.port);
    acceptor_.open(stream(ep.protocol().family(), SOCK_STREAM));
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(stream::endpoint(ep.data(), ep.size()));
  }
  acceptor_.listen(16);
  accept();
}

void ConsoleServer::close() {
  boost::system::error_code ec;
  if (acceptor_.is_open()) {
    acceptor_.close(ec);
    if (!cfg_.unix_path.empty()) ::unlink(cfg_.unix_path.c_str());
  }
  auto conns = conns_;
  for (auto& c : conns) c->close();
}

void ConsoleServer::forget(Connection* c) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it)
    if (it->get() == c) {
      conns_.erase(it);
      return;
    }
}

std::vector<std::string> ConsoleServer::working_commands(const Connection* except) const {
  std::vector<std::string> v;
  for (auto& c : conns_)
    if (c.get() != except && c->working()) v.push_back(c->command());
  return v;
}

void ConsoleServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, stream::socket s) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      spdlog::warn("console: accept: {}", ec.message());
    } else if (conns_.size() >= cfg_.max_connections) {
      spdlog::warn("console: too many connections ({}), refusing one", conns_.size());
      boost::system::error_code ig;
      s.close(ig);
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(s));
      conns_.insert(c);
      c->start();
    }
    accept();
  });
}

}  // namespace makuo::ctl
