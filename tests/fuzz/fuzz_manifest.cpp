// Manifest bodies: whatever decodes must re-encode to something that decodes the same, and
// every path it carries is either valid or refused by valid_relpath (never a crash).
#include <cstdlib>

#include "sync/paths.hpp"
#include "sync/wire.hpp"

using namespace makuo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wire::Manifest m;
  if (wire::decode({data, size}, m) != wire::Error::Ok) return 0;
  for (auto& e : m.entries) {
    (void)valid_relpath(e.path);
    (void)valid_relpath(e.link);
  }
  wire::Bytes b;
  wire::encode(b, 1, m);
  wire::Manifest again;
  if (wire::decode(std::span(b).subspan(wire::kHeaderSize), again) != wire::Error::Ok) abort();
  if (again.entries != m.entries || again.total != m.total || again.first != m.first) abort();
  return 0;
}
