// Versions of a path, which never come from an mtime: a version vector, one counter per node
// that changed the path, bumped by the node where a change is made (a write through the mount,
// a change found by --watch or by the start-up rescan, an msync push). Version A replaces B when
// it descends from it (every counter of B is in A, at least as high); two versions that do not
// descend either way were made concurrently, and are ordered the same way on every node by the
// clock of their latest change (a hybrid logical clock value, hybrid_clock.hpp) and then by the
// name of the node that made it. Counters are such clock values too (a bump takes
// max(counter + 1, clock)), so a node that lost its index still bumps past what it issued
// before. Pure values and functions.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace makuo {

// A node's key in version vectors: the XXH3-64 of its name, which is stable across restarts
// (the random node id is not) and the same on every node.
using NodeKey = uint64_t;
NodeKey node_key(std::string_view name);

struct Dot {
  NodeKey node = 0;
  uint64_t counter = 0;
  bool operator==(const Dot&) const = default;
};

// Node -> counter, sorted by node, counters > 0. Empty = "no change seen yet": the version of
// a path that was there before makuo kept versions; every other version descends from it.
class VersionVector {
 public:
  static constexpr size_t kMaxDots = 32;  // what a wire entry or an index record may carry

  VersionVector() = default;
  explicit VersionVector(std::vector<Dot> dots);  // sorts; drops zero counters and duplicates
  const std::vector<Dot>& dots() const { return dots_; }
  bool empty() const { return dots_.empty(); }
  size_t size() const { return dots_.size(); }
  uint64_t get(NodeKey n) const;
  void set(NodeKey n, uint64_t counter);
  // The largest counter of any node: a hybrid clock that saw this version is past it.
  uint64_t max_counter() const;
  // Every counter at least as high as in either.
  static VersionVector merge(const VersionVector& a, const VersionVector& b);
  bool operator==(const VersionVector&) const = default;

 private:
  std::vector<Dot> dots_;
};

enum class Order {
  Equal,       // the same version
  After,       // a descends from b (a is newer)
  Before,      // b descends from a
  Concurrent,  // neither: written apart
};
Order compare(const VersionVector& a, const VersionVector& b);
const char* to_string(Order o);

// The version a path holds: its vector, and the node that made its latest change ("" with an
// empty vector: no change seen yet).
struct PathVersion {
  VersionVector vv;
  std::string origin;
  // The clock value of the latest change (its origin's counter; 0 when unknown).
  uint64_t clock() const { return origin.empty() ? 0 : vv.get(node_key(origin)); }
  bool operator==(const PathVersion&) const = default;
};

// A change made on node self (with clock value now) on top of version base: base's vector
// with self's counter raised to max(counter + 1, now).
PathVersion bump(const PathVersion& base, const std::string& self, uint64_t now);

// Of two concurrent versions, whether a wins: the later clock, then the greater node name.
// 0 when both are the same change (equal clock and origin).
int concurrent_winner(const PathVersion& a, const PathVersion& b);

// "node1:1733600000.123456789+2" style text of a vector, for logs.
std::string describe(const PathVersion& v);

}  // namespace makuo
