// The console's push commands (send, sync, dsync, check): what msync asks for, checked and
// turned into a push: the walk on the engine's worker, versions for what it changes, -g.
#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>

#include "ctl/console_connection.hpp"
#include "ctl/console_server.hpp"
#include "sync/fsops.hpp"
#include "sync/push_request.hpp"

namespace makuo::ctl {
namespace {

const char* kSendHelp =
    "send [-n] [-r] [-t host] [path]\n"
    "  -n  # dry run\n"
    "  -r  # recursive\n"
    "  -t  # target host\n"
    "  -g  # chgrp before sending\n";

// A group by name or number, either way one of the daemon's -g/-G groups.
std::optional<gid_t> group_id(const std::string& g) {
  char* end = nullptr;
  long v = strtol(g.c_str(), &end, 10);
  if (!g.empty() && *end == '\0' && v >= 0) return gid_t(v);
  if (group* gr = getgrnam(g.c_str())) return gr->gr_gid;
  return std::nullopt;
}

}  // namespace

void Connection::push(const std::vector<std::string>& tok) {
  const std::string& c = tok[0];
  bool is_check = c == "check" || c == "md5";
  bool is_dsync = c == "dsync";
  auto a = parse_args(tok, is_check ? "rt:" : is_dsync ? "nrt:" : "nrt:g:");
  auto& cfg = srv_.config();
  if (!a.error.empty()) {
    write("error: " + a.error + "\n");
    return finish();
  }
  if (!is_check && cfg.nosend) {
    write("error: this server can't send\n");
    return finish();
  }
  if (a.args.size() > 1) {
    write("error: one path per command (got " + std::to_string(a.args.size()) + ")\n");
    return finish();
  }
  std::string raw = a.args.empty() ? "" : a.args[0];
  bool recursive = a.has('r');
  if (raw.empty() && !recursive && !is_dsync) {
    write(is_check ? "usage: check [-t host] [-r] [path]\n  -r  # dir recursive\n"
                     "  -t  # target host\n"
                   : kSendHelp);
    return finish();
  }
  if (is_dsync && tok.size() < 2) {
    write("dsync [-n] [-r] [-t host] [path]\n");
    return finish();
  }
  std::string path, why;
  if (!normalize_console_path(raw, path, why)) {
    write("error: " + why + ": " + shown(raw) + "\n");
    return finish();
  }
  // targets
  SessionRequest req;
  auto& eng = srv_.engine();
  if (!msync_targets(eng.members(), a.has('t') ? &a.opts['t'] : nullptr, req)) {
    write("error: " + a.opts['t'] + " is not contained in members\n");
    return finish();
  }
  ScanOptions so;
  so.root = path;
  so.recursive = recursive || is_dsync;
  so.with_hash = is_check;
  so.owner_only = is_check || is_dsync ? std::nullopt : cfg.owner_only;
  so.base_path = cfg.base_path;
  // The walk (and the hashes of a check) on the engine's worker: heartbeats and other
  // consoles are answered meanwhile. Lines typed now wait, as during the push itself.
  begin_async();
  auto self = shared_from_this();
  auto excludes = std::make_shared<Excludes>(excludes_);
  eng.worker().post([this, self, so, excludes, basefd = cfg.basefd, a, path, c, is_check, is_dsync,
                     recursive, req = std::move(req)]() mutable -> Worker::Done {
    ScanOptions o = so;
    o.excludes = excludes.get();
    auto sr = std::make_shared<ScanResult>(scan(basefd, o));
    return [this, self, sr, a, path, c, is_check, is_dsync, recursive,
            req = std::move(req)]() mutable {
      if (closed_) return;
      start_push(std::move(req), *sr, a, path, c, is_check, is_dsync, recursive);
    };
  });
}

bool Connection::chgrp(const std::string& g, std::vector<wire::Entry>& entries) {
  std::optional<gid_t> want = group_id(g);
  bool allowed = false;
  for (auto& n : srv_.config().group_names) allowed |= want && group_id(n) == want;
  if (!allowed) {
    write("error: not found group " + g + "\n");
    return false;
  }
  gid_t gid = *want;
  for (auto& e : entries) {
    if (e.kind == wire::Kind::Absent || e.gid == gid) continue;
    int dfd = open_beneath(srv_.config().basefd, parent_of(e.path), O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || fchownat(dfd, std::string(leaf_of(e.path)).c_str(), uid_t(-1), gid,
                            AT_SYMLINK_NOFOLLOW) != 0) {
      write("error: can't chgrp (" + std::string(strerror(dfd < 0 ? -dfd : errno)) + ") [" +
            std::to_string(e.gid) + "->" + std::to_string(gid) + "] " + e.path + "\n");
    } else {
      e.gid = gid;
      group* gr = getgrgid(gid);
      e.group = gr ? gr->gr_name : "";
    }
    if (dfd >= 0) ::close(dfd);
  }
  return true;
}

void Connection::start_push(SessionRequest req, ScanResult& sr, CommandArgs& a,
                            const std::string& path, const std::string& c, bool is_check,
                            bool is_dsync, bool recursive) {
  auto& cfg = srv_.config();
  bool missing_sync = c == "sync" && !recursive && sr.root_missing;
  for (auto& e : sr.errors)
    if (!(missing_sync || (is_dsync && sr.root_missing))) write(e + "\n");
  for (auto& s : sr.skips) line(2, s);
  if (missing_sync) {
    wire::Entry e;
    e.kind = wire::Kind::Absent;
    e.path = path;
    sr.entries.push_back(e);
  }
  if (is_dsync && !path.empty() && sr.root_missing) sr.entries.clear();
  if (a.has('g') && !a.has('n')) {
    if (!chgrp(a.opts['g'], sr.entries)) return finish();
  }
  if (sr.entries.empty() && !is_dsync) return finish();
  req.flags = uint16_t((a.has('n') ? wire::kDryRun : 0) | (is_check ? wire::kCheck : 0) |
                       (is_dsync ? wire::kDsync : 0) | (recursive ? wire::kRecursive : 0));
  req.entries = std::move(sr.entries);
  req.loglevel = loglevel_;
  req.root = path;
  req.excludes = excludes_.list();
  bool scan_failed = !sr.errors.empty();
  if (!a.has('n') && !is_check && cfg.version_push) cfg.version_push(req);
  auto self = shared_from_this();
  SessionSink sink;
  sink.line = [this, self](int level, const std::string& l) {
    if (level <= 1) spdlog::debug("push: {}", l);  // the daemon's log at -d 1
    line(level, l);
  };
  sink.done = [this, self, scan_failed](bool ok) {
    if (!ok || scan_failed) spdlog::debug("console: '{}' finished with errors", cmdline_);
    boost::asio::post(channel_.executor(), [this, self] {
      if (!closed_) finish();
    });
  };
  spdlog::info("console: {}", cmdline_);
  sid_ = srv_.engine().start_session(std::move(req), std::move(sink), Clock::now());
  srv_.node().poke();
}

}  // namespace makuo::ctl
