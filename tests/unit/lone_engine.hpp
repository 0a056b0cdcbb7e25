// One engine alone in a temporary base directory, fed datagrams by hand, with everything it sends
// kept: the fixture of the tests that play a peer (a sender, a stranger, a liar) byte by byte.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sync/engine.hpp"

namespace makuo::test {

struct CapturedNet final : Transport {
  struct Sent {
    Endpoint to;
    wire::Bytes d;
  };
  std::vector<Sent> sent;
  std::vector<std::pair<uint64_t, uint64_t>> proved;
  SendStatus send(const Endpoint& to, std::span<const uint8_t> d) override {
    sent.push_back({to, wire::Bytes(d.begin(), d.end())});
    return SendStatus::Ok;
  }
  Endpoint group() const override { return {0xef000001, 5000}; }
  void prove(uint64_t node, uint64_t counter) override { proved.push_back({node, counter}); }
  const Sent* last(wire::Type t) const {
    for (auto it = sent.rbegin(); it != sent.rend(); ++it) {
      wire::Header h;
      if (wire::decode_header(it->d, h) == wire::Error::Ok && h.type == t) return &*it;
    }
    return nullptr;
  }
  // Every datagram of type t sent so far, decoded as M.
  template <class M>
  std::vector<M> all(wire::Type t) const {
    std::vector<M> out;
    for (auto& s : sent) {
      wire::Header h;
      M m;
      if (wire::decode_header(s.d, h) == wire::Error::Ok && h.type == t &&
          wire::decode(std::span<const uint8_t>(s.d).subspan(wire::kHeaderSize), m) ==
              wire::Error::Ok)
        out.push_back(std::move(m));
    }
    return out;
  }
};

class LoneEngine : public ::testing::Test {
 protected:
  // tag names the temporary directory; recv_memory: the budget (0: the default).
  void open_engine(const std::string& tag, size_t recv_memory = 0) {
    base_ =
        std::filesystem::temp_directory_path() / ("makuo-" + tag + "-" + std::to_string(getpid()));
    std::filesystem::create_directories(base_);
    fd_ = open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    EngineConfig c;
    c.name = "rx";
    c.version = "test";
    c.recv.basefd = fd_;
    c.recv.base_path = base_.string();
    if (recv_memory) c.recv_memory = recv_memory;
    engine_ = std::make_unique<Engine>(c, net_, 0x77);
    engine_->start(now_);
  }
  void TearDown() override {
    engine_.reset();
    if (fd_ >= 0) close(fd_);
    std::filesystem::remove_all(base_);
  }

  std::filesystem::path base_;
  int fd_ = -1;
  CapturedNet net_;
  std::unique_ptr<Engine> engine_;
  TimePoint now_{std::chrono::seconds(100)};
};

}  // namespace makuo::test
