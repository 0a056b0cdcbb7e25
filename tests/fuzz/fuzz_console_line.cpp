// Console lines: the tokenizer, option parsing and path normalisation of every token, and
// msync's quoting, which must give back every byte string it is handed.
#include <string>

#include "ctl/console_line.hpp"
#include "sync/paths.hpp"

using namespace makuo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string line(reinterpret_cast<const char*>(data), size);
  auto tok = ctl::tokenize(line);
  auto a = ctl::parse_args(tok, "nrt:g:");
  for (auto& arg : a.args) {
    std::string out, why;
    if (normalize_console_path(arg, out, why) && !out.empty() && !valid_relpath(out))
      __builtin_trap();
  }
  if (!line.empty()) {
    auto back = ctl::tokenize("send " + ctl::quote_token(line) + " -r");
    if (back.size() != 3 || back[1] != line || back[2] != "-r") __builtin_trap();
  }
  return 0;
}
