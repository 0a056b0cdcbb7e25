// NACK bodies: decode, and round-trip what decodes.
#include <cstdlib>

#include "sync/wire.hpp"

using namespace makuo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wire::Nack n;
  if (wire::decode({data, size}, n) != wire::Error::Ok) return 0;
  wire::Bytes b;
  wire::encode(b, 1, n);
  wire::Nack again;
  if (wire::decode(std::span(b).subspan(wire::kHeaderSize), again) != wire::Error::Ok) abort();
  if (again.files != n.files || again.poll_seq != n.poll_seq) abort();
  return 0;
}
