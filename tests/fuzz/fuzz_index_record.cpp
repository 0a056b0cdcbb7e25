// Tree-index files: whatever bytes a crash or a disk leaves, decoding never reads out of
// bounds, and what it decodes re-encodes to the same bytes. Release 0.1's records are decoded
// too (not re-encoded: they are rewritten in the current format).
#include <cstdlib>
#include <cstring>

#include "sync/index_record.hpp"

using namespace makuo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  size_t pos = 0;
  while (pos < size) {
    IndexRecord r;
    size_t used = 0;
    if (decode_index_record(in.subspan(pos), r, used) != IndexDecode::Ok) break;
    if (used == 0 || used > size - pos) abort();
    std::vector<uint8_t> again;
    encode_index_record(again, r);
    if (again.size() != used || std::memcmp(again.data(), data + pos, used) != 0) abort();
    pos += used;
  }
  IndexRecord old;
  size_t used = 0;
  if (decode_index_record(in, old, used, true) == IndexDecode::Ok && (used == 0 || used > size))
    abort();
  return 0;
}
