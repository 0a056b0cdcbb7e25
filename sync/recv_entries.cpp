#include "sync/recv_entries.hpp"

namespace makuo {

namespace {

// By size, not capacity: the copy we keep and the entry it was made from cost the same.
size_t heap(const std::string& s) {
  return s.size() > 15 ? s.size() + 1 : 0;
}

}  // namespace

size_t RecvEntries::entry_cost(const wire::Entry& e) {
  return sizeof(wire::Entry) + 16 + heap(e.path) + heap(e.link) + heap(e.from) + heap(e.user) +
         heap(e.group) + heap(e.version.origin) + e.version.vv.dots().size() * 16;
}

const RecvEntries::Slot* RecvEntries::find(uint32_t idx) const {
  uint32_t n = idx / kPage;
  if (n != last_n_) {
    auto it = pages_.find(n);
    if (it == pages_.end()) return nullptr;
    last_n_ = n;
    last_ = it->second.get();
  }
  return &(*last_)[idx % kPage];
}

size_t RecvEntries::cost(uint32_t idx, const wire::Entry& e) const {
  return entry_cost(e) + (pages_.count(idx / kPage) ? 0 : sizeof(Page) + 32);
}

RecvEntries::Slot& RecvEntries::add(uint32_t idx, const wire::Entry& e) {
  memory_ += cost(idx, e);
  auto& page = pages_[idx / kPage];
  if (!page) page = std::make_unique<Page>();
  last_n_ = idx / kPage;
  last_ = page.get();
  Slot& s = (*page)[idx % kPage];
  s.entry = std::make_unique<wire::Entry>(e);
  s.kind = e.kind;
  s.present = true;
  return s;
}

size_t RecvEntries::release(uint32_t idx) {
  Slot* s = find(idx);
  if (!s || !s->entry) return 0;
  size_t n = entry_cost(*s->entry);
  s->entry.reset();
  memory_ -= n;
  return n;
}

}  // namespace makuo
