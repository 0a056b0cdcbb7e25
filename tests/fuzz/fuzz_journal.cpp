// Change-journal segments: whatever bytes a crash or a disk leaves, decoding never reads out of
// bounds, consumes only whole records, and what it decodes re-encodes to the same bytes.
#include <cstdlib>
#include <cstring>

#include "state/journal.hpp"

using namespace makuo::journal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<Record> recs;
  size_t used = 0;
  decode({data, size}, recs, used);
  if (used > size) abort();
  std::vector<uint8_t> again;
  for (auto& r : recs) encode(again, r);
  if (again.size() != used || (used && std::memcmp(again.data(), data, used) != 0)) abort();
  return 0;
}
