// The entries of one push as its receiver knows them, by index. Allocated as they arrive, in
// pages of 256 slots, never by the total the sender claims; an entry's full description is
// released once it is answered for good (directories stay until their metadata is applied at
// the end), leaving its kind and answer, which the receiver repeats when an answer was lost.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <utility>

#include "sync/wire.hpp"

namespace makuo {

class RecvEntries {
 public:
  struct Slot {
    std::unique_ptr<wire::Entry> entry;  // null once released
    wire::Code code = wire::Code::Unknown;
    wire::Kind kind = wire::Kind::File;
    uint16_t err = 0;
    bool present = false;
    bool late = false;  // arrived after the data stream had passed it
  };

  bool has(uint32_t idx) const {
    const Slot* s = find(idx);
    return s && s->present;
  }
  // The slot of an entry that arrived.
  Slot& at(uint32_t idx) { return *find(idx); }
  const Slot& at(uint32_t idx) const { return *find(idx); }
  // Bytes that adding e at idx takes (its page too, when that is new).
  size_t cost(uint32_t idx, const wire::Entry& e) const;
  Slot& add(uint32_t idx, const wire::Entry& e);
  // Frees entry idx's description; the bytes it took.
  size_t release(uint32_t idx);
  size_t memory() const { return memory_; }

 private:
  static constexpr uint32_t kPage = 256;
  using Page = std::array<Slot, kPage>;
  static size_t entry_cost(const wire::Entry& e);
  const Slot* find(uint32_t idx) const;
  Slot* find(uint32_t idx) { return const_cast<Slot*>(std::as_const(*this).find(idx)); }

  std::unordered_map<uint32_t, std::unique_ptr<Page>> pages_;
  mutable uint32_t last_n_ = UINT32_MAX;
  mutable Page* last_ = nullptr;
  size_t memory_ = 0;
};

}  // namespace makuo
