#include "sync/change_queue.hpp"

#include <algorithm>

#include "sync/paths.hpp"

namespace makuo {
namespace {

// Our receivers' temporaries never travel, wherever a path names one.
bool ignored(const std::string& path) {
  if (path.empty()) return true;  // the base directory itself is not replicated
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view comp(path.data() + start,
                          (slash == std::string::npos ? path.size() : slash) - start);
    if (is_temp_name(comp)) return true;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return !valid_relpath(path);
}

}  // namespace

ChangeQueue::ChangeQueue(Duration quiet, Duration max_delay)
    : quiet_(quiet), max_delay_(max_delay) {}

void ChangeQueue::touch(const std::string& path, bool subtree) {
  // The base itself is not replicated, but everything below it may be rescanned.
  if (ignored(path) && !(subtree && path.empty())) return;
  auto [it, fresh] = items_.try_emplace(path);
  if (fresh) it->second.seq = seq_++;
  it->second.subtree |= subtree;
}

void ChangeQueue::moved(const std::string& from, const std::string& to) {
  // What was pending below the source now lives below the target.
  std::vector<std::pair<std::string, Item>> carried;
  bool source_pending = false;
  if (auto self = items_.find(from); self != items_.end()) {
    carried.emplace_back(to, self->second);
    items_.erase(self);
    source_pending = true;
  }
  // Names below "from/" sort together ("from x" may sort between "from" and "from/").
  for (auto it = items_.lower_bound(from + "/"); it != items_.end() && is_below(it->first, from);) {
    carried.emplace_back(to + it->first.substr(from.size()), it->second);
    it = items_.erase(it);
  }
  for (auto& [p, item] : carried) {
    if (ignored(p)) continue;
    items_[p] = item;
  }
  // A source that was itself pending may be unknown to the receivers: the target then goes as
  // content. Otherwise they are told where it came from.
  if (!source_pending && !ignored(to) && !ignored(from)) {
    Item& t = items_[to];
    t.from = from;
    t.subtree = true;
    t.seq = seq_++;
  } else {
    touch(to, true);
  }
  touch(from, false);  // gone, unless something took its place
}

void ChangeQueue::add(const journal::Record& r, TimePoint now) {
  if (items_.empty()) first_ = now;
  last_ = now;
  using journal::Op;
  std::string parent(parent_of(r.path));
  switch (r.op) {
    case Op::Rename:
      if (r.to.empty()) return;
      moved(r.path, r.to);
      touch(parent, false);  // both directories' mtimes changed
      touch(std::string(parent_of(r.to)), false);
      break;
    case Op::Rescan:
      touch(r.path, true);
      break;
    case Op::Write:
    case Op::Setattr:
    case Op::Xattr:
      touch(r.path, false);
      break;
    default:  // a name came or went: the directory holding it changed as well
      touch(r.path, false);
      touch(parent, false);
  }
  if (items_.empty()) first_ = last_ = {};
}

TimePoint ChangeQueue::due() const {
  if (items_.empty()) return TimePoint::max();
  return std::min(last_ + quiet_, first_ + max_delay_);
}

std::vector<Change> ChangeQueue::take() {
  std::vector<std::pair<uint64_t, Change>> v;
  v.reserve(items_.size());
  for (auto& [p, item] : items_) {
    // Renames first: their sources must still be in place when the receiver gets to them.
    uint64_t key = item.seq + (item.from.empty() ? (uint64_t(1) << 62) : 0);
    v.push_back({key, Change{p, item.from, item.subtree}});
  }
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
  items_.clear();
  first_ = last_ = {};
  std::vector<Change> out;
  out.reserve(v.size());
  for (auto& [k, c] : v) out.push_back(std::move(c));
  return out;
}

}  // namespace makuo
