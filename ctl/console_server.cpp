#include "ctl/console_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>

#include "ctl/console_line.hpp"
#include "ctl/status_report.hpp"
#include "sync/fsops.hpp"
#include "sync/paths.hpp"
#include "sync/push_request.hpp"
#include "sync/scan.hpp"

namespace makuo::ctl {
namespace asio = boost::asio;
using stream = asio::generic::stream_protocol;

namespace {

const char* kPrompt = "> ";
// A client that typed ahead waits (we stop reading) once this many lines are queued.
constexpr size_t kMaxQueuedLines = 64;
// A client that reads nothing back while a push prints lines is cut off here.
constexpr size_t kMaxQueuedOutput = 8 << 20;
// A connection that has not given the password by then is closed.
constexpr auto kLoginTime = std::chrono::seconds(10);
const char* kPasswordPrompt = "password: \x1b]E";

const char* kHelp =
    "COMMAND:\n"
    "  quit\n"
    "  exit\n"
    "  bye\n"
    "  send  [-n] [-r] [-t host] [-g group] [path]\n"
    "  sync  [-n] [-r] [-t host] [-g group] [path]\n"
    "  dsync [-n] [-r] [-t host] [path]\n"
    "  check [-r] [-t host] [path]\n"
    "  md5   [-r] [-t host] [path]\n"
    "  members\n"
    "  status\n"
    "  echo  [text]\n"
    "  exclude add|del|list|clear [pattern]\n"
    "  loglevel num (0-9)\n"
    "  alive on|off\n"
    "  progress on|off\n"
    "  help\n";

const char* kSendHelp =
    "send [-n] [-r] [-t host] [path]\n"
    "  -n  # dry run\n"
    "  -r  # recursive\n"
    "  -t  # target host\n"
    "  -g  # chgrp before sending\n";

}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ConsoleServer& srv, stream::socket sock)
      : srv_(srv),
        sock_(std::move(sock)),
        alive_timer_(sock_.get_executor()),
        login_timer_(sock_.get_executor()) {}

  void start() {
    authed_ = !srv_.config().password;
    write(authed_ ? kPrompt : kPasswordPrompt);
    if (!authed_) {
      login_timer_.expires_after(kLoginTime);
      auto self = shared_from_this();
      login_timer_.async_wait([this, self](boost::system::error_code ec) {
        if (ec || authed_ || closed_) return;
        spdlog::warn("console: no password within {} s, connection closed",
                     std::chrono::seconds(kLoginTime).count());
        close();
      });
    }
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (sid_) srv_.engine().cancel_session(*sid_);  // a vanished client aborts its push
    sid_.reset();
    boost::system::error_code ec;
    alive_timer_.cancel();
    login_timer_.cancel();
    sock_.shutdown(stream::socket::shutdown_both, ec);
    sock_.close(ec);
    srv_.forget(this);
  }

  bool working() const { return working_; }
  const std::string& command() const { return cmdline_; }

 private:
  void read() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(rbuf_),
                          [this, self](boost::system::error_code ec, size_t n) {
                            if (ec || closed_) return close();
                            inbuf_.append(rbuf_.data(), n);
                            size_t pos;
                            while ((pos = inbuf_.find('\n')) != std::string::npos) {
                              lines_.push_back(inbuf_.substr(0, pos));
                              inbuf_.erase(0, pos + 1);
                            }
                            if (inbuf_.size() > 8192) {
                              spdlog::warn("console: line too long, connection closed");
                              return close();
                            }
                            pump_lines();
                            if (closed_) return;
                            if (lines_.size() < kMaxQueuedLines)
                              read();
                            else
                              reading_paused_ = true;
                          });
  }

  void write(std::string s) {
    if (closed_) return;
    outq_bytes_ += s.size();
    if (outq_bytes_ > kMaxQueuedOutput) {
      spdlog::warn("console: the client read none of the last {} MiB of output, connection closed",
                   kMaxQueuedOutput >> 20);
      return close();
    }
    outq_.push_back(std::move(s));
    if (!writing_) flush();
  }

  void flush() {
    if (outq_.empty() || closed_) {
      writing_ = false;
      if (quit_after_write_) close();
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    auto msg = std::make_shared<std::string>(std::move(outq_.front()));
    outq_.pop_front();
    outq_bytes_ -= msg->size();
    asio::async_write(sock_, asio::buffer(*msg),
                      [this, self, msg](boost::system::error_code ec, size_t) {
                        if (ec) return close();
                        flush();
                      });
  }

  void line(int level, const std::string& text) {
    if (level <= loglevel_) write(text + "\n");
  }

  // Lines typed while a command runs wait for it (makuosan threw them away).
  void pump_lines() {
    while (!working_ && !closed_ && !lines_.empty()) {
      std::string l = lines_.front();
      lines_.pop_front();
      if (!authed_) {
        check_password(l);
        continue;
      }
      execute(l);
    }
    if (reading_paused_ && lines_.empty() && !closed_) {
      reading_paused_ = false;
      read();
    }
  }

  void check_password(std::string l) {
    if (auto cr = l.find('\r'); cr != std::string::npos) l.resize(cr);
    const std::string& pw = *srv_.config().password;
    bool ok = l.size() == pw.size() && CRYPTO_memcmp(l.data(), pw.data(), pw.size()) == 0;
    if (ok) {
      authed_ = true;
      login_timer_.cancel();
      write(std::string("\r") + kPrompt);
      return;
    }
    spdlog::warn("console: wrong password");
    working_ = true;  // ignore anything else; answer after a delay that slows guessing
    alive_timer_.expires_after(std::chrono::seconds(1));
    auto self = shared_from_this();
    alive_timer_.async_wait([this, self](boost::system::error_code) {
      write("\rsorry.\n");
      quit_after_write_ = true;
    });
  }

  void finish() {
    working_ = false;
    sid_.reset();
    cmdline_.clear();
    alive_timer_.cancel();
    write(kPrompt);
    pump_lines();
  }

  void begin_async() {
    working_ = true;
    tick();
  }

  // While a command runs: "alive" keeps msync's 30 s timeout away; progress on request.
  void tick() {
    alive_timer_.expires_after(progress_ ? std::chrono::milliseconds(500)
                                         : std::chrono::seconds(1));
    auto self = shared_from_this();
    alive_timer_.async_wait([this, self](boost::system::error_code ec) {
      if (ec || !working_ || closed_) return;
      auto now = Clock::now();
      if (alive_ && now - last_alive_ >= std::chrono::seconds(1)) {
        write("alive\n");
        last_alive_ = now;
      }
      if (progress_ && sid_) {
        if (const SendSession* s = srv_.engine().session(*sid_)) {
          Progress p = s->progress();
          write("progress " + std::to_string(p.files_done) + " " + std::to_string(p.files_total) +
                " " + std::to_string(p.bytes_sent) + " " + std::to_string(p.bytes_total) + "\n");
        }
      }
      tick();
    });
  }

  void execute(const std::string& raw) {
    auto tok = tokenize(raw);
    if (tok.empty()) return write(kPrompt);
    cmdline_ = raw;
    if (auto cr = cmdline_.find('\r'); cr != std::string::npos) cmdline_.resize(cr);
    const std::string& c = tok[0];
    if (c == "quit" || c == "exit" || c == "bye") {
      quit_after_write_ = true;
      if (!writing_) close();
      return;
    }
    if (c == "send" || c == "sync" || c == "dsync" || c == "check" || c == "md5") return push(tok);
    if (c == "members") return members();
    if (c == "status") {
      if (tok.size() > 1 && tok[1] == "json") return status_json();
      return status();
    }
    if (c == "echo") {
      std::string s;
      for (size_t i = 1; i < tok.size(); ++i) s += (i > 1 ? " " : "") + tok[i];
      write(s + "\n");
      return finish();
    }
    if (c == "help") {
      write(kHelp);
      return finish();
    }
    if (c == "loglevel") {
      if (tok.size() > 1) loglevel_ = std::clamp(atoi(tok[1].c_str()), 0, 9);
      return finish();
    }
    if (c == "alive" || c == "progress") {
      bool& flag = c == "alive" ? alive_ : progress_;
      if (tok.size() > 1 && tok[1] == "on") {
        flag = true;
      } else if (tok.size() > 1 && tok[1] == "off") {
        flag = false;
      } else {
        write(c + " on|off\n");
      }
      return finish();
    }
    if (c == "exclude") return exclude(tok);
    write("mexec: command error '" + c + "'\n");
    finish();
  }

  void exclude(const std::vector<std::string>& tok) {
    const char* usage =
        "usage: exclude add pattern\n"
        "       exclude del pattern\n"
        "       exclude list\n"
        "       exclude clear\n";
    std::string sub = tok.size() > 1 ? tok[1] : "";
    if (sub == "add" && tok.size() > 2) {
      if (!excludes_.add(tok[2])) write(usage);
    } else if (sub == "del" && tok.size() > 2) {
      if (!excludes_.del(tok[2])) write("pattern not found " + shown(tok[2]) + "\n" + usage);
    } else if (sub == "list") {
      for (auto& p : excludes_.list()) write(shown(p) + "\n");
    } else if (sub == "clear") {
      excludes_.clear();
    } else {
      write(usage);
    }
    finish();
  }

  void members() {
    auto ms = srv_.engine().members().sorted();
    size_t wn = 0, wa = 0;
    std::vector<std::string> addrs;
    for (auto& m : ms) {
      std::string a = m.ep.str();
      a = a.substr(0, a.rfind(':'));
      wn = std::max(wn, m.name.size());
      wa = std::max(wa, a.size());
      addrs.push_back(a);
    }
    for (size_t i = 0; i < ms.size(); ++i) {
      std::string n = ms[i].name, a = addrs[i];
      n.resize(wn, ' ');
      a.resize(wa, ' ');
      write(n + " " + a + " (Ver" + ms[i].version + ")\n");
    }
    write("Total: " + std::to_string(ms.size()) + " members\n");
    finish();
  }

  void status_json() {
    StatusReport r = collect_status(srv_.engine(), srv_.node(), srv_.config().base_path,
                                    srv_.config().started, Clock::now());
    if (srv_.config().extra_report) srv_.config().extra_report(r);
    write(to_json(r) + "\n");
    finish();
  }

  void status() {
    auto& e = srv_.engine();
    auto& st = e.stats();
    auto& rs = e.recv_stats();
    std::string s;
    s += "process : " + std::to_string(getpid()) + "\n";
    s += "version : " + srv_.config().version + "\n";
    s += "basedir : " + srv_.config().base_path + "/\n";
    s += "node    : " + e.config().name + "\n";
    s += "members : " + std::to_string(e.members().size()) + "\n";
    s += "recvsize: " + std::to_string(srv_.node().rcvbuf()) + "\n";
    s += "sendsize: " + std::to_string(srv_.node().sndbuf()) + "\n";
    auto mbps = [](uint64_t b) { return b ? std::to_string(b * 8 / 1000000) : std::string("-"); };
    s += "sendrate: " + mbps(e.send_rate()) + "/" + mbps(e.config().rate_bytes) +
         " Mbps (now/cap; - = not limited)\n";
    auto others = srv_.working_commands(this);
    s += "command : " + std::to_string(others.size()) + "\n";
    for (auto& c : others) s += "  i> " + c + "\n";
    auto sl = e.session_lines();
    s += "send op : " + std::to_string(sl.size()) + "\n";
    for (auto& l : sl) s += "  " + l + "\n";
    auto rl = e.receive_lines();
    s += "recv op : " + std::to_string(rl.size()) + "\n";
    for (auto& l : rl) s += "  " + l + "\n";
    const MemoryBudget& mem = e.recv_memory();
    s += "recv mem: " + std::to_string(mem.used() >> 10) + " of " +
         std::to_string(mem.limit() >> 10) + " KiB (--recv-memory), refused " +
         std::to_string(rs.refused_memory) + "\n";
    s += "packets : rx=" + std::to_string(st.rx_packets) +
         " tx=" + std::to_string(srv_.node().tx_packets()) +
         " tx_errors=" + std::to_string(srv_.node().tx_errors()) +
         " tx_calls=" + std::to_string(srv_.node().tx_calls()) +
         (srv_.node().tx_gso() ? " gso=on" : " gso=off") + "\n";
    s += "dropped : truncated=" + std::to_string(st.drop_truncated) +
         " bad_magic=" + std::to_string(st.drop_magic) +
         " makuosan=" + std::to_string(st.drop_makuosan) +
         " bad_version=" + std::to_string(st.drop_version) +
         " malformed=" + std::to_string(st.drop_malformed) +
         " unknown_session=" + std::to_string(st.drop_unknown_session) +
         " too_many_sessions=" + std::to_string(st.drop_too_many_sessions) +
         " not_member=" + std::to_string(st.drop_not_member) + "\n";
    auto& au = srv_.node().auth_stats();
    s += "auth    : plaintext=" + std::to_string(au.plaintext) +
         " no_key=" + std::to_string(au.no_key) + " unknown_key=" + std::to_string(au.unknown_key) +
         " bad_tag=" + std::to_string(au.bad_tag) + " replay=" + std::to_string(au.replay) +
         " truncated=" + std::to_string(au.truncated) + " unproven=" + std::to_string(au.unproven) +
         "\n";
    s += "files   : committed=" + std::to_string(rs.files_committed) +
         " failed=" + std::to_string(rs.files_failed) +
         " bytes=" + std::to_string(rs.bytes_written) +
         " syncs=" + std::to_string(e.committer().syncs()) + "\n";
    s += "sessions: sent=" + std::to_string(st.sessions_sent) +
         " received=" + std::to_string(st.sessions_received) + "\n";
    if (srv_.config().extra_status)
      for (auto& line : srv_.config().extra_status()) s += line + "\n";
    write(s);
    finish();
  }

  void push(const std::vector<std::string>& tok) {
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
    eng.worker().post([this, self, so, excludes, basefd = cfg.basefd, a, path, c, is_check,
                       is_dsync, recursive, req = std::move(req)]() mutable -> Worker::Done {
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

  void start_push(SessionRequest req, ScanResult& sr, CommandArgs& a, const std::string& path,
                  const std::string& c, bool is_check, bool is_dsync, bool recursive) {
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
      asio::post(sock_.get_executor(), [this, self] {
        if (!closed_) finish();
      });
    };
    spdlog::info("console: {}", cmdline_);
    sid_ = srv_.engine().start_session(std::move(req), std::move(sink), Clock::now());
    srv_.node().poke();
  }

  // A group by name or number, either way one of the daemon's -g/-G groups.
  static std::optional<gid_t> group_id(const std::string& g) {
    char* end = nullptr;
    long v = strtol(g.c_str(), &end, 10);
    if (!g.empty() && *end == '\0' && v >= 0) return gid_t(v);
    if (group* gr = getgrnam(g.c_str())) return gr->gr_gid;
    return std::nullopt;
  }

  bool chgrp(const std::string& g, std::vector<wire::Entry>& entries) {
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

  ConsoleServer& srv_;
  stream::socket sock_;
  asio::steady_timer alive_timer_;
  asio::steady_timer login_timer_;
  std::array<char, 4096> rbuf_{};
  std::string inbuf_;
  std::deque<std::string> lines_;
  std::deque<std::string> outq_;
  size_t outq_bytes_ = 0;
  bool reading_paused_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool quit_after_write_ = false;
  bool authed_ = false;
  bool working_ = false;
  bool alive_ = false;
  bool progress_ = false;
  int loglevel_ = 0;
  Excludes excludes_;
  std::optional<uint32_t> sid_;
  std::string cmdline_;
  TimePoint last_alive_{};
};

ConsoleServer::ConsoleServer(asio::io_context& io, ConsoleConfig cfg, Engine& engine, UdpNode& node)
    : io_(io), cfg_(std::move(cfg)), engine_(engine), node_(node), acceptor_(io) {}

ConsoleServer::~ConsoleServer() {
  close();
}

void ConsoleServer::listen() {
  if (!cfg_.unix_path.empty()) {
    asio::local::stream_protocol::endpoint ep(cfg_.unix_path);
    // Refuse to steal the socket of a daemon that is still running.
    asio::local::stream_protocol::socket probe(io_);
    boost::system::error_code ec;
    probe.connect(ep, ec);
    if (!ec)
      throw std::system_error(EADDRINUSE, std::generic_category(),
                              "console socket " + cfg_.unix_path + " is in use");
    ::unlink(cfg_.unix_path.c_str());
    acceptor_.open(stream(AF_UNIX, 0));
    acceptor_.bind(stream::endpoint(ep.data(), ep.size()));
    ::chmod(cfg_.unix_path.c_str(), 0660);
  } else {
    asio::ip::tcp::endpoint ep(asio::ip::make_address(cfg_.listen_addr), cfg_.port);
    acceptor_.open(stream(ep.protocol().family(), SOCK_STREAM));
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(stream::endpoint(ep.data(), ep.size()));
  }
  acceptor_.listen(16);
  accept();
}

void ConsoleServer::close() {
  boost::system::error_code ec;
  if (acceptor_.is_open()) {
    acceptor_.close(ec);
    if (!cfg_.unix_path.empty()) ::unlink(cfg_.unix_path.c_str());
  }
  auto conns = conns_;
  for (auto& c : conns) c->close();
}

void ConsoleServer::forget(Connection* c) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it)
    if (it->get() == c) {
      conns_.erase(it);
      return;
    }
}

std::vector<std::string> ConsoleServer::working_commands(const Connection* except) const {
  std::vector<std::string> v;
  for (auto& c : conns_)
    if (c.get() != except && c->working()) v.push_back(c->command());
  return v;
}

void ConsoleServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, stream::socket s) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      spdlog::warn("console: accept: {}", ec.message());
    } else if (conns_.size() >= cfg_.max_connections) {
      spdlog::warn("console: too many connections ({}), refusing one", conns_.size());
      boost::system::error_code ig;
      s.close(ig);
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(s));
      conns_.insert(c);
      c->start();
    }
    accept();
  });
}

}  // namespace makuo::ctl
