#include "ctl/console_connection.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

#include "ctl/console_server.hpp"
#include "ctl/status_report.hpp"

namespace makuo::ctl {
namespace {

const char* kPrompt = "> ";
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

}  // namespace

Connection::Connection(ConsoleServer& srv, LineChannel::stream::socket sock)
    : srv_(srv),
      channel_(
          std::move(sock), [this] { pump_lines(); }, [this] { close(); }),
      alive_timer_(channel_.executor()),
      login_timer_(channel_.executor()) {}

void Connection::start() {
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
  channel_.start(shared_from_this());
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (sid_) srv_.engine().cancel_session(*sid_);  // a vanished client aborts its push
  sid_.reset();
  alive_timer_.cancel();
  login_timer_.cancel();
  channel_.close();
  srv_.forget(this);
}

// Lines typed while a command runs wait for it (makuosan threw them away).
void Connection::pump_lines() {
  std::string l;
  while (!working_ && !closed_ && channel_.next_line(l)) {
    if (!authed_) {
      check_password(l);
      continue;
    }
    execute(l);
  }
}

void Connection::check_password(std::string l) {
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
    channel_.close_after_writes();
  });
}

void Connection::finish() {
  working_ = false;
  sid_.reset();
  cmdline_.clear();
  alive_timer_.cancel();
  write(kPrompt);
  pump_lines();
}

void Connection::begin_async() {
  working_ = true;
  tick();
}

// While a command runs: "alive" keeps msync's 30 s timeout away; progress on request.
void Connection::tick() {
  alive_timer_.expires_after(progress_ ? std::chrono::milliseconds(500) : std::chrono::seconds(1));
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

void Connection::execute(const std::string& raw) {
  auto tok = tokenize(raw);
  if (tok.empty()) return write(kPrompt);
  cmdline_ = raw;
  if (auto cr = cmdline_.find('\r'); cr != std::string::npos) cmdline_.resize(cr);
  const std::string& c = tok[0];
  if (c == "quit" || c == "exit" || c == "bye") {
    channel_.close_after_writes();
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

void Connection::exclude(const std::vector<std::string>& tok) {
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

void Connection::members() {
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

void Connection::status_json() {
  StatusReport r = collect_status(srv_.engine(), srv_.node(), srv_.config().base_path,
                                  srv_.config().started, Clock::now());
  if (srv_.config().extra_report) srv_.config().extra_report(r);
  write(to_json(r) + "\n");
  finish();
}

void Connection::status() {
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
       " failed=" + std::to_string(rs.files_failed) + " bytes=" + std::to_string(rs.bytes_written) +
       " syncs=" + std::to_string(e.committer().syncs()) + "\n";
  s += "sessions: sent=" + std::to_string(st.sessions_sent) +
       " received=" + std::to_string(st.sessions_received) + "\n";
  if (srv_.config().extra_status)
    for (auto& line : srv_.config().extra_status()) s += line + "\n";
  write(s);
  finish();
}

}  // namespace makuo::ctl
