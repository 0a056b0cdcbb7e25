#include "sync/crypto.hpp"

#include <fcntl.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "sync/secret_file.hpp"

namespace makuo {
namespace {

constexpr size_t kTag = 16;
constexpr size_t kPeerCacheMax = 4096;
const char kPbkdfSalt[] = "makuo cluster key v1";
constexpr int kPbkdfIterations = 200000;

void put64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = uint8_t(v);
}
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = uint8_t(v);
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | p[i];
  return v;
}

std::array<uint8_t, 32> hkdf(const ClusterKey& k, wire::NodeId node) {
  std::array<uint8_t, 32> out{};
  uint8_t info[8];
  put64(info, node);
  EVP_PKEY_CTX* pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  bool ok =
      pc && EVP_PKEY_derive_init(pc) > 0 && EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
      EVP_PKEY_CTX_set1_hkdf_salt(pc, reinterpret_cast<const unsigned char*>("makuo v1"), 8) > 0 &&
      EVP_PKEY_CTX_set1_hkdf_key(pc, k.key.data(), int(k.key.size())) > 0 &&
      EVP_PKEY_CTX_add1_hkdf_info(pc, info, 8) > 0;
  size_t len = out.size();
  if (!ok || EVP_PKEY_derive(pc, out.data(), &len) <= 0 || len != out.size()) {
    EVP_PKEY_CTX_free(pc);
    throw std::runtime_error("HKDF failed");
  }
  EVP_PKEY_CTX_free(pc);
  return out;
}

}  // namespace

const char* to_string(Sealer::Result r) {
  switch (r) {
    case Sealer::Result::Ok:
      return "ok";
    case Sealer::Result::NotSealed:
      return "not sealed";
    case Sealer::Result::Truncated:
      return "truncated";
    case Sealer::Result::UnknownKey:
      return "unknown key";
    case Sealer::Result::BadTag:
      return "authentication failed";
    case Sealer::Result::Replay:
      return "replayed";
  }
  return "?";
}

ClusterKey key_from_bytes(std::span<const uint8_t> raw) {
  ClusterKey k;
  if (raw.size() != 32) throw std::runtime_error("a cluster key is 32 bytes");
  std::copy(raw.begin(), raw.end(), k.key.begin());
  std::vector<uint8_t> msg = {'m', 'a', 'k', 'u', 'o', ' ', 'k', 'e', 'y', ' ', 'i', 'd'};
  msg.insert(msg.end(), k.key.begin(), k.key.end());
  uint8_t d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (EVP_Digest(msg.data(), msg.size(), d, &dl, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 unavailable");
  k.id = get32(d);
  return k;
}

void generate_key_file(const std::string& path) {
  std::array<uint8_t, 32> k{};
  if (RAND_bytes(k.data(), int(k.size())) != 1) throw std::runtime_error("no random bytes");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("key file " + path + ": " + strerror(errno) +
                             (errno == EEXIST ? " (not overwritten)" : ""));
  bool ok =
      fchmod(fd, 0600) == 0 && write(fd, k.data(), k.size()) == ssize_t(k.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  OPENSSL_cleanse(k.data(), k.size());
  if (!ok) {
    unlink(path.c_str());
    throw std::runtime_error("key file " + path + ": " + strerror(err));
  }
}

ClusterKey load_key_file(const std::string& path) {
  std::string s = read_secret_file(
      path, "key file", 4096,
      " (make one with makuosan --gen-key " + path + " and copy it to every server)");
  if (s.size() == 32) return key_from_bytes({reinterpret_cast<const uint8_t*>(s.data()), 32});
  s = s.substr(0, s.find_first_of("\r\n"));
  if (s.size() < 16)
    throw std::runtime_error("key file " + path +
                             ": holds neither 32 key bytes nor a passphrase of 16+ characters");
  std::array<uint8_t, 32> k{};
  if (PKCS5_PBKDF2_HMAC(s.data(), int(s.size()), reinterpret_cast<const uint8_t*>(kPbkdfSalt),
                        int(sizeof kPbkdfSalt - 1), kPbkdfIterations, EVP_sha256(), int(k.size()),
                        k.data()) != 1)
    throw std::runtime_error("PBKDF2 failed");
  return key_from_bytes(k);
}

Sealer::Sealer(std::vector<ClusterKey> keys, wire::NodeId self)
    : keys_(std::move(keys)), self_(self) {
  if (keys_.empty()) throw std::runtime_error("no cluster key");
  send_ctx_ = make_ctx(keys_.front(), self_, true);
}

Sealer::~Sealer() {
  EVP_CIPHER_CTX_free(send_ctx_);
  for (auto& [k, p] : peers_) EVP_CIPHER_CTX_free(p.ctx);
}

EVP_CIPHER_CTX* Sealer::make_ctx(const ClusterKey& k, wire::NodeId node, bool encrypt) {
  auto sub = hkdf(k, node);
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int ok = encrypt ? EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, sub.data(), nullptr)
                   : EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), nullptr, sub.data(), nullptr);
  OPENSSL_cleanse(sub.data(), sub.size());
  if (ok != 1) {
    EVP_CIPHER_CTX_free(c);
    throw std::runtime_error("AES-256-GCM unavailable");
  }
  return c;
}

bool Sealer::is_sealed(std::span<const uint8_t> in) {
  wire::Header h;
  auto e = wire::decode_header(in, h);
  return (e == wire::Error::Ok || e == wire::Error::BadType) && (in[7] & kSealedFlag);
}

void Sealer::seal(std::span<const uint8_t> plain, std::span<uint8_t> out) {
  std::memcpy(out.data(), plain.data(), wire::kHeaderSize);
  out[7] |= kSealedFlag;
  uint64_t ctr = ++counter_;
  put32(out.data() + wire::kHeaderSize, keys_.front().id);
  put64(out.data() + wire::kHeaderSize + 4, ctr);
  uint8_t iv[12] = {};
  put64(iv + 4, ctr);
  int len = 0;
  size_t aad = wire::kHeaderSize + 12;
  size_t body = plain.size() - wire::kHeaderSize;
  EVP_EncryptInit_ex(send_ctx_, nullptr, nullptr, nullptr, iv);
  EVP_EncryptUpdate(send_ctx_, nullptr, &len, out.data(), int(aad));
  EVP_EncryptUpdate(send_ctx_, out.data() + aad, &len, plain.data() + wire::kHeaderSize, int(body));
  EVP_EncryptFinal_ex(send_ctx_, out.data() + aad + len, &len);
  EVP_CIPHER_CTX_ctrl(send_ctx_, EVP_CTRL_GCM_GET_TAG, kTag, out.data() + aad + body);
}

bool Sealer::replayed(Peer& p, uint64_t c) const {
  if (!p.any || c > p.top) return false;
  uint64_t back = p.top - c;
  if (back >= 1024) return true;  // too old to tell: refuse
  if (back == 0) return true;
  uint64_t bit = back - 1;
  return p.window[bit / 64] & (1ull << (bit % 64));
}

void Sealer::accept(Peer& p, uint64_t c) {
  if (!p.any) {
    p.any = true;
    p.top = c;
    return;
  }
  if (c <= p.top) {
    uint64_t bit = p.top - c - 1;
    p.window[bit / 64] |= 1ull << (bit % 64);
    return;
  }
  // Slide: bit i (counter top-1-i) moves to bit i+shift; the old top becomes bit shift-1.
  uint64_t shift = c - p.top;
  std::array<uint64_t, 16> w{};
  if (shift < 1024) {
    size_t ws = size_t(shift / 64), bs = size_t(shift % 64);
    for (size_t i = ws; i < 16; ++i) {
      w[i] = p.window[i - ws] << bs;
      if (bs && i > ws) w[i] |= p.window[i - ws - 1] >> (64 - bs);
    }
    size_t tb = size_t(shift - 1);
    w[tb / 64] |= 1ull << (tb % 64);
  }
  p.window = w;
  p.top = c;
}

void Sealer::prove(wire::NodeId node, uint64_t counter) {
  // Forgetting is safe (a forgotten sender is challenged again), so the table stays bounded.
  if (proven_.size() >= kPeerCacheMax && !proven_.count(node)) proven_.clear();
  proven_[node] = counter;
}

Sealer::Result Sealer::open(std::span<uint8_t> in, std::span<const uint8_t>& plain, Opened* info) {
  if (!is_sealed(in)) return Result::NotSealed;
  if (in.size() < wire::kHeaderSize + kSealOverhead) return Result::Truncated;
  uint32_t kid = get32(in.data() + wire::kHeaderSize);
  uint64_t ctr = get64(in.data() + wire::kHeaderSize + 4);
  wire::NodeId node = get64(in.data() + 8);
  const ClusterKey* key = nullptr;
  for (auto& k : keys_)
    if (k.id == kid) key = &k;
  if (!key) return Result::UnknownKey;
  auto pk = std::make_pair(kid, node);
  auto it = peers_.find(pk);
  Peer fresh;
  Peer* p = it != peers_.end() ? &it->second : &fresh;
  if (replayed(*p, ctr)) return Result::Replay;
  auto floor = proven_.find(node);
  if (floor != proven_.end() && ctr < floor->second) return Result::Replay;  // sealed before
  if (!p->ctx) p->ctx = make_ctx(*key, node, false);
  size_t aad = wire::kHeaderSize + 12;
  size_t body = in.size() - aad - kTag;
  uint8_t iv[12] = {};
  put64(iv + 4, ctr);
  uint8_t tag[kTag];
  std::memcpy(tag, in.data() + aad + body, kTag);
  int len = 0;
  // In place: the body is decrypted where it lies, then the header moves up to meet it.
  bool ok = EVP_DecryptInit_ex(p->ctx, nullptr, nullptr, nullptr, iv) == 1 &&
            EVP_DecryptUpdate(p->ctx, nullptr, &len, in.data(), int(aad)) == 1 &&
            EVP_DecryptUpdate(p->ctx, in.data() + aad, &len, in.data() + aad, int(body)) == 1 &&
            EVP_CIPHER_CTX_ctrl(p->ctx, EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
            EVP_DecryptFinal_ex(p->ctx, in.data() + aad + len, &len) == 1;
  if (!ok) {
    if (p == &fresh) EVP_CIPHER_CTX_free(fresh.ctx);
    return Result::BadTag;
  }
  if (p == &fresh) {
    // Only authenticated senders get a cache entry, so forged node ids cannot fill it.
    if (peers_.size() >= kPeerCacheMax) {
      for (auto& [k, q] : peers_) EVP_CIPHER_CTX_free(q.ctx);
      peers_.clear();
    }
    p = &peers_.emplace(pk, fresh).first->second;
  }
  accept(*p, ctr);
  size_t shift = aad - wire::kHeaderSize;
  std::memmove(in.data() + shift, in.data(), wire::kHeaderSize);
  in[shift + 7] &= uint8_t(~kSealedFlag);
  plain = in.subspan(shift, wire::kHeaderSize + body);
  if (info) *info = {ctr, floor != proven_.end()};
  return Result::Ok;
}

}  // namespace makuo
