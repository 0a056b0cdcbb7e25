// A member that lies (run inside a test node's network namespace, against a keyless cluster):
// it joins by heartbeats, then sends pushes that claim what they do not carry.
//   hostile_peer GROUP PORT claims SIZE
//                                   sessions claiming 4,000,000 entries each (a few arrive) and
//                                   a file of SIZE bytes in the smallest blocks, of which a
//                                   block every 8192 arrives
//   hostile_peer GROUP PORT flood   a push whose 200,000 entries all arrive, sent without
//                                   waiting for answers
// Each push is ended (aborted), and the tool leaves the cluster, before it exits. Prints what
// it sent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sync/wire.hpp"

using namespace makuo;

namespace {

int sock = -1;
sockaddr_in group{};
wire::NodeId self = 0;

void send(const wire::Bytes& b) {
  sendto(sock, b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&group), sizeof group);
}

void announce(wire::Type t) {
  wire::Announce a;
  a.name = "hostile";
  a.version = "0.2";
  wire::Bytes b;
  wire::encode(b, self, t, a);
  send(b);
}

void heartbeat() {
  announce(wire::Type::Heartbeat);
}

wire::Entry file(std::string path, uint64_t size) {
  wire::Entry e;
  e.kind = wire::Kind::File;
  e.mode = 0644;
  e.size = size;
  e.path = std::move(path);
  e.version = {VersionVector({{node_key("hostile"), 1}}), "hostile"};
  return e;
}

void manifest(uint32_t sid, uint32_t total, uint32_t first, std::vector<wire::Entry> v,
              uint16_t block = 1372) {
  wire::Manifest m;
  m.sid = sid;
  m.block_size = block;
  m.total = total;
  m.first = first;
  m.entries = std::move(v);
  wire::Bytes b;
  wire::encode(b, self, m);
  send(b);
}

void end(uint32_t sid) {
  wire::Bytes b;
  wire::encode(b, self, wire::End{sid, true});
  send(b);
  send(b);
}

// Paced: a burst of datagrams would overflow the receiver's socket, not its memory.
void pace(size_t i) {
  if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (i % 2000 == 1999) heartbeat();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || (std::string(argv[3]) == "claims") != (argc == 5)) {
    fprintf(stderr, "usage: hostile_peer GROUP PORT claims SIZE | flood\n");
    return 2;
  }
  std::string mode = argv[3];
  sock = socket(AF_INET, SOCK_DGRAM, 0);
  unsigned char ttl = 1;
  setsockopt(sock, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  group.sin_family = AF_INET;
  group.sin_port = htons(uint16_t(atoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &group.sin_addr) != 1) return 2;
  self = std::random_device{}() | uint64_t(std::random_device{}()) << 32;
  for (int i = 0; i < 3; ++i) {  // a member from the first; a few in case one is lost
    heartbeat();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  size_t sent = 0;
  if (mode == "claims") {
    const uint32_t sessions = 8;
    for (uint32_t sid = 1; sid <= sessions; ++sid)
      for (uint32_t k = 0; k < 64; ++k, pace(sent++))
        manifest(sid, wire::kMaxEntries, k * 60000,
                 {file("claims/s" + std::to_string(sid) + "-" + std::to_string(k), 10)});
    uint64_t huge = strtoull(argv[4], nullptr, 10);
    uint32_t sid = sessions + 1;
    manifest(sid, 1, 0, {file("claims/huge", huge)}, wire::kMinBlock);
    std::vector<uint8_t> block(wire::kMinBlock, 'x');
    uint64_t nblocks = huge / wire::kMinBlock;
    for (uint64_t b = 0; b + 1 < nblocks && b < 1000 * 8192; b += 8192, pace(sent++)) {
      wire::Data d;
      d.sid = sid;
      d.offset = b * wire::kMinBlock;
      d.payload = block;
      wire::Bytes out;
      wire::encode(out, self, d);
      send(out);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (uint32_t s = 1; s <= sid; ++s) end(s);
    printf("claims: %u sessions of %u claimed entries, a %llu-byte file, %zu datagrams\n", sessions,
           wire::kMaxEntries, (unsigned long long)huge, sent);
  } else if (mode == "flood") {
    const uint32_t total = 200000, per = 100;
    for (uint32_t first = 0; first < total; first += per, pace(sent++)) {
      std::vector<wire::Entry> v;
      for (uint32_t i = first; i < first + per; ++i)
        v.push_back(file("flood/" + std::string(180, 'f') + std::to_string(i), 1));
      manifest(1, total, first, std::move(v));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    end(1);
    printf("flood: %u entries in %zu datagrams\n", total, sent);
  } else {
    fprintf(stderr, "hostile_peer: unknown mode %s\n", mode.c_str());
    return 2;
  }
  announce(wire::Type::Bye);  // leaves, so that honest pushes do not wait for it
  close(sock);
  return 0;
}
