#include "sync/version_vector.hpp"

#include <xxhash.h>

#include <algorithm>
#include <ctime>

namespace makuo {
namespace {

// A vector that grew past kMaxDots forgets its oldest changes (the smallest counters). A
// version that descends from a pruned one may then look concurrent with it; it still wins,
// as its clock is later (a node's clock passes every counter it applied), and the only cost
// is a conflict logged where there was none.
void prune(std::vector<Dot>& d) {
  if (d.size() <= VersionVector::kMaxDots) return;
  std::vector<Dot> by_age = d;
  std::nth_element(by_age.begin(), by_age.end() - VersionVector::kMaxDots, by_age.end(),
                   [](const Dot& a, const Dot& b) { return a.counter < b.counter; });
  uint64_t floor = (by_age.end() - VersionVector::kMaxDots)->counter;
  size_t below =
      size_t(std::count_if(d.begin(), d.end(), [&](const Dot& x) { return x.counter < floor; }));
  size_t drop_equal = d.size() - VersionVector::kMaxDots - below;
  std::erase_if(d, [&](const Dot& x) {
    if (x.counter < floor) return true;
    if (x.counter == floor && drop_equal > 0) {
      --drop_equal;
      return true;
    }
    return false;
  });
}

}  // namespace

NodeKey node_key(std::string_view name) {
  return XXH3_64bits(name.data(), name.size());
}

VersionVector::VersionVector(std::vector<Dot> dots) : dots_(std::move(dots)) {
  std::erase_if(dots_, [](const Dot& d) { return d.counter == 0; });
  std::sort(dots_.begin(), dots_.end(), [](const Dot& a, const Dot& b) {
    return a.node != b.node ? a.node < b.node : a.counter > b.counter;
  });
  dots_.erase(std::unique(dots_.begin(), dots_.end(),
                          [](const Dot& a, const Dot& b) { return a.node == b.node; }),
              dots_.end());
  prune(dots_);
}

uint64_t VersionVector::get(NodeKey n) const {
  auto it = std::lower_bound(dots_.begin(), dots_.end(), n,
                             [](const Dot& d, NodeKey k) { return d.node < k; });
  return it != dots_.end() && it->node == n ? it->counter : 0;
}

void VersionVector::set(NodeKey n, uint64_t counter) {
  auto it = std::lower_bound(dots_.begin(), dots_.end(), n,
                             [](const Dot& d, NodeKey k) { return d.node < k; });
  if (it != dots_.end() && it->node == n) {
    if (counter == 0)
      dots_.erase(it);
    else
      it->counter = counter;
    return;
  }
  if (counter == 0) return;
  dots_.insert(it, Dot{n, counter});
  prune(dots_);
}

uint64_t VersionVector::max_counter() const {
  uint64_t m = 0;
  for (auto& d : dots_) m = std::max(m, d.counter);
  return m;
}

VersionVector VersionVector::merge(const VersionVector& a, const VersionVector& b) {
  VersionVector out;
  auto& o = out.dots_;
  o.reserve(a.size() + b.size());
  auto i = a.dots_.begin(), j = b.dots_.begin();
  while (i != a.dots_.end() || j != b.dots_.end()) {
    if (j == b.dots_.end() || (i != a.dots_.end() && i->node < j->node)) {
      o.push_back(*i++);
    } else if (i == a.dots_.end() || j->node < i->node) {
      o.push_back(*j++);
    } else {
      o.push_back({i->node, std::max(i->counter, j->counter)});
      ++i;
      ++j;
    }
  }
  prune(o);
  return out;
}

Order compare(const VersionVector& a, const VersionVector& b) {
  bool a_ahead = false, b_ahead = false;
  auto i = a.dots().begin(), j = b.dots().begin();
  auto ie = a.dots().end(), je = b.dots().end();
  while (i != ie || j != je) {
    if (j == je || (i != ie && i->node < j->node)) {
      a_ahead = true;
      ++i;
    } else if (i == ie || j->node < i->node) {
      b_ahead = true;
      ++j;
    } else {
      if (i->counter > j->counter) a_ahead = true;
      if (j->counter > i->counter) b_ahead = true;
      ++i;
      ++j;
    }
    if (a_ahead && b_ahead) return Order::Concurrent;
  }
  if (a_ahead) return Order::After;
  if (b_ahead) return Order::Before;
  return Order::Equal;
}

const char* to_string(Order o) {
  switch (o) {
    case Order::Equal:
      return "equal";
    case Order::After:
      return "after";
    case Order::Before:
      return "before";
    case Order::Concurrent:
      return "concurrent";
  }
  return "?";
}

PathVersion bump(const PathVersion& base, const std::string& self, uint64_t now) {
  PathVersion v;
  v.vv = base.vv;
  NodeKey k = node_key(self);
  v.vv.set(k, std::max(base.vv.get(k) + 1, now));
  v.origin = self;
  return v;
}

int concurrent_winner(const PathVersion& a, const PathVersion& b) {
  uint64_t ca = a.clock(), cb = b.clock();
  if (ca != cb) return ca > cb ? 1 : -1;
  if (a.origin != b.origin) return a.origin > b.origin ? 1 : -1;
  return 0;
}

std::string describe(const PathVersion& v) {
  if (v.vv.empty()) return "no version";
  uint64_t c = v.clock();
  time_t t = time_t(c / 1000000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return (v.origin.empty() ? std::string("?") : v.origin) + "@" + when + " (" +
         std::to_string(v.vv.size()) + (v.vv.size() == 1 ? " node)" : " nodes)");
}

}  // namespace makuo
