// Exclude patterns come from the wire and from consoles: any pattern against any name must
// answer, and in time linear in their product (libFuzzer's -timeout catches a blow-up).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sync/glob.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto cut = in.find('\0');
  if (cut == std::string_view::npos) return 0;
  (void)makuo::glob_match(in.substr(0, cut), in.substr(cut + 1));
  return 0;
}
