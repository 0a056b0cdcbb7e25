#include "ctl/console_line.hpp"

#include <cctype>

#include "sync/paths.hpp"

namespace makuo::ctl {

namespace {

// A $'...' token at line[i] (i at the '$'): its bytes, and i past its closing quote. false: not
// one (no closing quote followed by a space or the end).
bool dollar_quoted(std::string_view line, size_t& i, std::string& out) {
  size_t j = i + 2;
  std::string v;
  while (j < line.size()) {
    char c = line[j++];
    if (c == '\'') {
      if (j < line.size() && line[j] != ' ') return false;
      out = std::move(v);
      i = j;
      return true;
    }
    if (c != '\\' || j >= line.size()) {
      v += c;
      continue;
    }
    char e = line[j++];
    auto hex = [&](char h) { return std::isxdigit(static_cast<unsigned char>(h)); };
    if (e == 'n') {
      v += '\n';
    } else if (e == 'r') {
      v += '\r';
    } else if (e == 't') {
      v += '\t';
    } else if (e == 'x' && j + 2 <= line.size() && hex(line[j]) && hex(line[j + 1])) {
      v += char(std::stoi(std::string(line.substr(j, 2)), nullptr, 16));
      j += 2;
    } else {
      v += e;  // \\ \' and anything else: the character itself
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> tokenize(std::string_view line) {
  if (auto cr = line.find('\r'); cr != std::string_view::npos) line = line.substr(0, cr);
  std::vector<std::string> out;
  std::string cur;
  bool joining = false;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size()) break;
    if (!joining && line.substr(i).starts_with("$'")) {
      size_t at = i;
      std::string q;
      if (dollar_quoted(line, at, q)) {
        out.push_back(std::move(q));
        i = at;
        continue;
      }
    }
    size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    std::string tok(line.substr(i, j - i));
    i = j;
    if (joining) {
      cur += ' ';
      cur += tok;
    } else {
      cur = tok;
    }
    if (!cur.empty() && cur.back() == '\\' && i < line.size()) {
      cur.pop_back();
      joining = true;
      continue;
    }
    joining = false;
    out.push_back(std::move(cur));
    cur.clear();
  }
  if (joining) out.push_back(cur);
  return out;
}

std::string escape_spaces(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == ' ') r += '\\';
    r += c;
  }
  return r;
}

std::string quote_token(std::string_view s) {
  std::string q = shown(s);
  return q != s ? q : escape_spaces(s);
}

std::string quote_arg(std::string_view path) {
  return quote_token(path.starts_with("-") ? "./" + std::string(path) : std::string(path));
}

CommandArgs parse_args(const std::vector<std::string>& tokens, std::string_view spec) {
  CommandArgs r;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (t.size() < 2 || t[0] != '-') {
      r.args.push_back(t);
      continue;
    }
    for (size_t k = 1; k < t.size(); ++k) {
      char c = t[k];
      auto pos = spec.find(c);
      if (c == ':' || pos == std::string_view::npos) {
        r.error = std::string("invalid option -- ") + c;
        return r;
      }
      bool takes = pos + 1 < spec.size() && spec[pos + 1] == ':';
      if (!takes) {
        r.opts[c] = "";
        continue;
      }
      if (k + 1 < t.size()) {
        r.opts[c] = t.substr(k + 1);
      } else if (i + 1 < tokens.size()) {
        r.opts[c] = tokens[++i];
      } else {
        r.error = std::string("option requires an argument -- ") + c;
        return r;
      }
      break;
    }
  }
  return r;
}

}  // namespace makuo::ctl
