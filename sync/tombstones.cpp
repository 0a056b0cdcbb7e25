#include "sync/tombstones.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sstream>

namespace makuo {
namespace {

// One per line: "NS<TAB>PATH", or "NS/BASE_MTIME_NS/BASE_SIZE<TAB>PATH" when the deleted
// version is known, with '\\' and newlines in paths escaped.
std::string escape(const std::string& p) {
  std::string o;
  for (char c : p) {
    if (c == '\\')
      o += "\\\\";
    else if (c == '\n')
      o += "\\n";
    else
      o += c;
  }
  return o;
}

std::string unescape(const std::string& p) {
  std::string o;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size()) {
      o += p[i + 1] == 'n' ? '\n' : p[i + 1];
      ++i;
    } else {
      o += p[i];
    }
  }
  return o;
}

}  // namespace

Tombstones::Tombstones(int dirfd, std::string name, int64_t keep_ns)
    : dirfd_(dirfd), name_(std::move(name)), keep_ns_(keep_ns) {}

int Tombstones::load() {
  int fd = openat(dirfd_, name_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : errno;
  std::string body;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) body.append(buf, size_t(n));
  close(fd);
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    Value v;
    std::istringstream head(line.substr(0, tab));
    head >> v.when_ns;
    char slash = 0;
    wire::Version base;
    if (head >> slash >> base.mtime_ns >> slash >> base.size) v.base = base;
    std::string p = unescape(line.substr(tab + 1));
    if (!p.empty() && v.when_ns >= map_[p].when_ns) map_[p] = v;
  }
  return 0;
}

void Tombstones::add(const std::string& path, int64_t when_ns, std::optional<wire::Version> base) {
  Value& t = map_[path];
  if (when_ns > t.when_ns) {
    t.when_ns = when_ns;
    t.base = base;
    dirty_ = true;
  }
}

void Tombstones::erase(const std::string& path) {
  if (map_.erase(path)) dirty_ = true;
}

std::vector<Tombstones::Tomb> Tombstones::list(int64_t now_ns) const {
  std::vector<Tomb> v;
  for (auto& [p, t] : map_)
    if (now_ns - t.when_ns <= keep_ns_) v.push_back({p, t.when_ns, t.base});
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return std::count(a.path.begin(), a.path.end(), '/') >
           std::count(b.path.begin(), b.path.end(), '/');
  });
  return v;
}

int Tombstones::save(int64_t now_ns) {
  for (auto it = map_.begin(); it != map_.end();) {
    if (now_ns - it->second.when_ns > keep_ns_) {
      it = map_.erase(it);
      dirty_ = true;
    } else {
      ++it;
    }
  }
  if (!dirty_) return 0;
  std::string body;
  for (auto& [p, t] : map_) {
    body += std::to_string(t.when_ns);
    if (t.base) body += "/" + std::to_string(t.base->mtime_ns) + "/" + std::to_string(t.base->size);
    body += "\t" + escape(p) + "\n";
  }
  std::string tmp = "." + name_ + ".tmp";
  int fd = openat(dirfd_, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t off = 0; off < body.size() && !err;) {
    ssize_t n = write(fd, body.data() + off, body.size() - off);
    if (n < 0) {
      if (errno != EINTR) err = errno;
    } else {
      off += size_t(n);
    }
  }
  if (!err && fdatasync(fd) != 0) err = errno;
  close(fd);
  if (!err && renameat(dirfd_, tmp.c_str(), dirfd_, name_.c_str()) != 0) err = errno;
  if (!err) dirty_ = false;
  return err;
}

}  // namespace makuo
