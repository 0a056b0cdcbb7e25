// Whole-file content hash (XXH3-128): receivers verify every file against the sender's.
#pragma once
#include <xxhash.h>

#include <cstdint>
#include <span>

#include "sync/wire.hpp"

namespace makuo {

class Hasher {
 public:
  Hasher() : st_(XXH3_createState()) { XXH3_128bits_reset(st_); }
  ~Hasher() { XXH3_freeState(st_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::span<const uint8_t> b) { XXH3_128bits_update(st_, b.data(), b.size()); }
  wire::Hash128 digest() const {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st_));
    wire::Hash128 h;
    static_assert(sizeof(c.digest) == 16);
    for (int i = 0; i < 16; ++i) h[i] = c.digest[i];
    return h;
  }

 private:
  XXH3_state_t* st_;
};

// Feeds bytes [from, EOF) of fd into h; returns 0 or an errno.
int hash_fd(int fd, uint64_t from, Hasher& h);

}  // namespace makuo
