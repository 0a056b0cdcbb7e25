// Console lines: the tokenizer, option parsing and path normalisation of every token.
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
  for (auto& t : tok) (void)ctl::escape_spaces(t);
  return 0;
}
