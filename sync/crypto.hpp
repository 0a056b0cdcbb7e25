// Cluster keys (-k): every datagram, membership included, is sealed with AES-256-GCM
// (OpenSSL). Each sender has its own subkey, HKDF(cluster key, node id), so its 64-bit
// counter alone makes every nonce unique; receivers keep a sliding replay window per sender.
//
// A window alone forgets on a restart, and a node id never heard before starts a fresh one:
// a push captured on the wire could be replayed to a receiver that restarted. So a sender is
// taken only once proven live: the receiver challenges it with a random nonce (Engine), its
// sealed answer proves it holds the key now, and the answer's counter becomes a floor below
// which nothing of that sender is taken. A captured datagram is below the floor of a sender
// that still runs, and the node id of one that does not can never answer.
//
// Sealed datagram: header (16 bytes, flags |= kSealed) | key id u32 | counter u64 |
// ciphertext of the body | tag (16). The header, key id and counter are authenticated too.
#pragma once
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/wire.hpp"

namespace makuo {

constexpr uint16_t kSealedFlag = 1;  // in the header's flags field
constexpr size_t kSealOverhead = 4 + 8 + 16;

struct ClusterKey {
  uint32_t id = 0;  // first 4 bytes of SHA-256("makuo key id" | key): picks the key on receipt
  std::array<uint8_t, 32> key{};
};

// Reads a key file: exactly 32 bytes are the key itself; anything else is a passphrase (first
// line, at least 16 characters) stretched with PBKDF2-HMAC-SHA256. Refuses files that group or
// others can read. Throws std::runtime_error with a message for the operator.
ClusterKey load_key_file(const std::string& path);
ClusterKey key_from_bytes(std::span<const uint8_t> raw);
// Writes 32 random bytes to a new file path, mode 0600 (an existing file is left alone). Throws
// std::runtime_error with a message for the operator.
void generate_key_file(const std::string& path);

class Sealer {
 public:
  enum class Result { Ok, NotSealed, Truncated, UnknownKey, BadTag, Replay };

  // keys[0] seals; every key opens (so a new key can be rolled out before the old one goes).
  Sealer(std::vector<ClusterKey> keys, wire::NodeId self);
  ~Sealer();
  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // plain: a whole datagram as wire::encode makes it. out receives the sealed datagram, of
  // plain.size() + kSealOverhead bytes (written in place: a send batch's own buffer).
  void seal(std::span<const uint8_t> plain, std::span<uint8_t> out);
  void seal(std::span<const uint8_t> plain, wire::Bytes& out) {
    out.resize(plain.size() + kSealOverhead);
    seal(plain, std::span<uint8_t>(out));
  }
  struct Opened {
    uint64_t counter = 0;
    bool proven = false;  // its sender answered our challenge (what it sealed before is refused)
  };
  // in: a received datagram, opened where it lies: on Ok, plain is the plain datagram (flags
  // cleared) within it. Whatever the result, in's bytes are no longer the datagram.
  Result open(std::span<uint8_t> in, std::span<const uint8_t>& plain, Opened* info = nullptr);
  Result open(std::span<const uint8_t> in, wire::Bytes& out, Opened* info = nullptr) {
    out.assign(in.begin(), in.end());
    std::span<const uint8_t> plain;
    Result r = open(std::span<uint8_t>(out), plain, info);
    if (r == Result::Ok) out = wire::Bytes(plain.begin(), plain.end());
    return r;
  }
  // node answered our challenge in its datagram of this counter.
  void prove(wire::NodeId node, uint64_t counter);
  static bool is_sealed(std::span<const uint8_t> in);

 private:
  struct Peer {
    EVP_CIPHER_CTX* ctx = nullptr;      // keyed with the sender's subkey
    uint64_t top = 0;                   // highest counter accepted
    std::array<uint64_t, 16> window{};  // the 1024 counters below top
    bool any = false;
  };
  EVP_CIPHER_CTX* make_ctx(const ClusterKey& k, wire::NodeId node, bool encrypt);
  bool replayed(Peer& p, uint64_t counter) const;
  void accept(Peer& p, uint64_t counter);

  std::vector<ClusterKey> keys_;
  wire::NodeId self_;
  uint64_t counter_ = 0;
  EVP_CIPHER_CTX* send_ctx_ = nullptr;
  std::map<std::pair<uint32_t, wire::NodeId>, Peer> peers_;
  std::unordered_map<wire::NodeId, uint64_t> proven_;  // node -> the counter of its answer
};

const char* to_string(Sealer::Result r);

}  // namespace makuo
