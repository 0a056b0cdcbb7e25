// msync: makuosan's command-line client (reference §1.2, §2.5), speaking the console protocol.
// Differences from 1.3.6: the exit status says whether everything reached everyone, paths
// with spaces are escaped, --progress, and every failure has one line on stderr.
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ctl/console_line.hpp"
#include "sync/version.hpp"

namespace {

void usage(FILE* out) {
  fprintf(out,
          "msync version %s (CLI for makuosan)\n"
          "usage: msync [OPTION] [FILENAME]...\n"
          "  -l num             # log level (0-9, default 0)\n"
          "  -v                 # log level +1\n"
          "  -c target          # daemon: tcp:HOST:PORT, unix:PATH or PATH\n"
          "                     #   (default: $MSYNC_TARGET or tcp:127.0.0.1:5000)\n"
          "  -f file            # run the console commands in file (- = stdin)\n"
          "  -K file            # console password file\n"
          "  -n                 # dry run\n"
          "  -r                 # recursive\n"
          "  -t host            # push to this member only\n"
          "  -g group           # chgrp the source files to group before sending\n"
          "  --sync             # like send; a path missing here is deleted there\n"
          "  --delete           # first delete on the targets what is missing here\n"
          "  --check            # compare contents (hash) without sending\n"
          "  --exclude=PATTERN  # skip matching paths (repeatable)\n"
          "  --exclude-from=FILE # patterns, one per line (- = stdin)\n"
          "  --status           # daemon status\n"
          "  --json             # with --status: one JSON document (members, pushes, counters)\n"
          "  --members          # cluster members\n"
          "  --progress         # live progress line on a terminal\n"
          "  -h, --help         # this help\n"
          "  -V, --version      # version\n"
          "Paths are relative to the daemon's base directory.\n"
          "Exit status: 0 all done on every target; 1 an error, a difference (--check),\n"
          "a lost target, or a daemon that is not there.\n",
          makuo::kVersion);
}

class Client {
 public:
  bool connect_to(const std::string& target, std::string& why) {
    std::string t = target;
    if (t.rfind("tcp:", 0) == 0) {
      std::string rest = t.substr(4);
      auto colon = rest.rfind(':');
      std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
      std::string port = colon == std::string::npos ? "5000" : rest.substr(colon + 1);
      addrinfo hints{}, *res = nullptr;
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_STREAM;
      if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        why = gai_strerror(rc);
        return false;
      }
      fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int rc = ::connect(fd_, res->ai_addr, res->ai_addrlen);
      freeaddrinfo(res);
      if (rc != 0) {
        why = strerror(errno);
        return false;
      }
      return true;
    }
    std::string path = t.rfind("unix:", 0) == 0 ? t.substr(5) : t;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) {
      why = "socket path too long";
      return false;
    }
    memcpy(sa.sun_path, path.c_str(), path.size());
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      why = strerror(errno);
      return false;
    }
    return true;
  }

  bool send_line(const std::string& l) {
    std::string s = l + "\r\n";
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return false;
      }
      off += size_t(n);
    }
    return true;
  }

  enum class Read { Prompt, Eof, Timeout, Error };

  // Reads until the prompt; calls on_line for every complete line. The password prompt is
  // answered with password.
  template <class F>
  Read until_prompt(int timeout_ms, const std::string& password, F on_line) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      size_t pos;
      while ((pos = buf_.find('\n')) != std::string::npos) {
        std::string l = buf_.substr(0, pos);
        buf_.erase(0, pos + 1);
        if (!l.empty()) on_line(l);
      }
      if (buf_ == "> ") {
        buf_.clear();
        return Read::Prompt;
      }
      if (buf_ == "password: \x1b]E") {
        buf_.clear();
        if (!send_line(password)) return Read::Error;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (timeout_ms > 0 && left <= 0) return Read::Timeout;
      pollfd p{fd_, POLLIN, 0};
      int rc = poll(&p, 1, timeout_ms > 0 ? int(left) : -1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return Read::Error;
      if (rc == 0) return Read::Timeout;
      char tmp[4096];
      ssize_t n = ::read(fd_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Read::Error;
      if (n == 0) return Read::Eof;
      for (ssize_t i = 0; i < n; ++i)
        if (tmp[i] != '\r') buf_ += tmp[i];
      deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    }
  }

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

std::string human(double b) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) {
    b /= 1024;
    ++i;
  }
  char s[32];
  snprintf(s, sizeof s, "%.1f %s", b, u[i]);
  return s;
}

bool read_lines(const std::string& file, std::vector<std::string>& out) {
  std::ifstream f;
  std::istream* in = &std::cin;
  if (file != "-") {
    f.open(file);
    if (!f) return false;
    in = &f;
  }
  std::string l;
  while (std::getline(*in, l)) {
    if (auto cr = l.find('\r'); cr != std::string::npos) l.resize(cr);
    if (l.size() > 1023) return false;
    if (!l.empty()) out.push_back(l);
  }
  return true;
}

// What the command line asks for.
struct Args {
  std::string mcmd = "send", mopt, sopt, target, script, passfile, group;
  int loglevel = 0;
  bool del = false, progress = false, single = false, json = false;
  std::vector<std::string> excludes, paths;
};

// -1: go on; otherwise the exit status (--help, --version, a bad option).
int parse(int argc, char** argv, Args& a) {
  const char* env = getenv("MSYNC_TARGET");
  a.target = env ? env : "tcp:127.0.0.1:5000";
  enum {
    kStatus = 256,
    kMembers,
    kCheck,
    kSync,
    kDelete,
    kExclude,
    kExcludeFrom,
    kProgress,
    kJson
  };
  static const option longs[] = {{"status", no_argument, nullptr, kStatus},
                                 {"members", no_argument, nullptr, kMembers},
                                 {"check", no_argument, nullptr, kCheck},
                                 {"sync", no_argument, nullptr, kSync},
                                 {"delete", no_argument, nullptr, kDelete},
                                 {"exclude", required_argument, nullptr, kExclude},
                                 {"exclude-from", required_argument, nullptr, kExcludeFrom},
                                 {"progress", no_argument, nullptr, kProgress},
                                 {"json", no_argument, nullptr, kJson},
                                 {"help", no_argument, nullptr, 'h'},
                                 {"version", no_argument, nullptr, 'V'},
                                 {nullptr, 0, nullptr, 0}};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":g:c:f:t:K:l:hvrnV", longs, nullptr)) != -1) {
    switch (c) {
      case kStatus:
        a.mcmd = "status";
        a.single = true;
        break;
      case kMembers:
        a.mcmd = "members";
        a.single = true;
        break;
      case kCheck:
        a.mcmd = "check";
        break;
      case kSync:
        a.mcmd = "sync";
        break;
      case kDelete:
        a.del = true;
        break;
      case kExclude:
        a.excludes.push_back(optarg);
        break;
      case kExcludeFrom:
        if (!read_lines(optarg, a.excludes)) {
          fprintf(stderr, "msync: can't read exclude file %s\n", optarg);
          return 1;
        }
        break;
      case kProgress:
        a.progress = true;
        break;
      case kJson:
        a.json = true;
        break;
      case 'r':
        a.mopt += " -r";
        break;
      case 'n':
        a.mopt += " -n";
        break;
      case 't':
        a.mopt += std::string(" -t ") + optarg;
        break;
      case 'g':
        a.group = optarg;
        break;
      case 'c':
        a.target = optarg;
        break;
      case 'f':
        a.script = optarg;
        break;
      case 'K':
        a.passfile = optarg;
        break;
      case 'l':
        a.loglevel = atoi(optarg);
        break;
      case 'v':
        ++a.loglevel;
        break;
      case 'h':
        usage(stdout);
        return 0;
      case 'V':
        printf("msync version %s (CLI for makuosan)\n", makuo::kVersion);
        return 0;
      case ':':
        fprintf(stderr, "msync: option requires an argument: %s\n", argv[optind - 1]);
        usage(stderr);
        return 1;
      default:
        fprintf(stderr, "msync: unknown option: %s\n", argv[optind - 1]);
        usage(stderr);
        return 1;
    }
  }
  a.paths.assign(argv + optind, argv + argc);
  if (a.json) {
    if (a.mcmd != "status") {
      fprintf(stderr, "msync: --json works only with --status\n");
      usage(stderr);
      return 1;
    }
    a.mcmd = "status json";
  }
  bool send_mode = a.mcmd == "send" || a.mcmd == "sync";
  if (a.del && !send_mode) {
    fprintf(stderr, "msync: --delete works only with send or --sync\n");
    usage(stderr);
    return 1;
  }
  if (!a.group.empty()) {
    if (!send_mode) {
      fprintf(stderr, "msync: -g works only with send or --sync\n");
      return 1;
    }
    a.sopt = " -g " + a.group;
  }
  return -1;
}

// The console commands to run: from -f's file, or one (two with --delete) per path.
bool commands_of(const Args& a, std::vector<std::string>& commands) {
  if (!a.script.empty()) {
    if (read_lines(a.script, commands)) return true;
    fprintf(stderr, "msync: can't read command file %s\n", a.script.c_str());
    return false;
  }
  bool send_mode = a.mcmd == "send" || a.mcmd == "sync";
  std::vector<std::string> paths = a.paths;
  if (paths.empty() || a.single) paths = {""};
  for (auto& p : paths) {
    std::string ep = makuo::ctl::quote_arg(p);
    if (a.del) commands.push_back("dsync" + a.mopt + " " + ep);
    commands.push_back(a.mcmd + a.mopt + (send_mode ? a.sopt : "") + " " + ep);
  }
  return true;
}

int fail_read(Client::Read r, const std::string& what) {
  switch (r) {
    case Client::Read::Eof:
      fprintf(stderr, "error: makuosan closed the connection (%s)\n", what.c_str());
      break;
    case Client::Read::Timeout:
      fprintf(stderr, "error: makuosan did not answer (%s)\n", what.c_str());
      break;
    default:
      fprintf(stderr, "error: makuosan socket error (%s)\n", what.c_str());
  }
  return 1;
}

// The live line of --progress on stderr, and the daemon's lines around it.
class Output {
 public:
  // One line from the daemon while a command runs.
  void line(const std::string& l) {
    if (l == "alive") return;
    if (l.rfind("progress ", 0) == 0) return progress(l);
    clear();
    if (l.rfind("error:", 0) == 0) {
      failed_ = true;
      fprintf(stderr, "%s\n", l.c_str());
    } else {
      if (l.find(": NG ") != std::string::npos) failed_ = true;
      printf("%s\n", l.c_str());
      fflush(stdout);
    }
  }
  void clear() {
    if (shown_) fprintf(stderr, "\r\033[K");
    shown_ = false;
  }
  bool failed() const { return failed_; }

 private:
  void progress(const std::string& l) {
    unsigned long long fd = 0, ft = 0, bs = 0, bt = 0;
    if (sscanf(l.c_str(), "progress %llu %llu %llu %llu", &fd, &ft, &bs, &bt) != 4) return;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? double(bs) / secs : 0;
    double eta = rate > 0 && bt > bs ? double(bt - bs) / rate : 0;
    fprintf(stderr, "\r\033[K files %llu/%llu  %s/%s  %s/s  ETA %.0fs", fd, ft,
            human(double(bs)).c_str(), human(double(bt)).c_str(), human(rate).c_str(), eta);
    shown_ = true;
  }
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  bool shown_ = false, failed_ = false;
};

// Logs in, sets the console up, runs the commands, quits. The exit status.
int run(Client& cl, const Args& a, const std::vector<std::string>& commands,
        const std::string& password) {
  auto quiet = [](const std::string&) {};
  if (auto r = cl.until_prompt(5000, password, quiet); r != Client::Read::Prompt)
    return fail_read(r, "connect");
  int timeout = 5000;
  std::vector<std::string> setup = {"alive on", "loglevel " + std::to_string(a.loglevel)};
  for (auto& x : a.excludes) setup.push_back("exclude add " + makuo::ctl::quote_token(x));
  if (a.progress && isatty(2)) setup.push_back("progress on");
  for (auto& s : setup) {
    int lines = 0;
    if (!cl.send_line(s)) return fail_read(Client::Read::Error, s);
    auto r = cl.until_prompt(timeout, password, [&](const std::string& l) {
      if (l != "alive") ++lines;
    });
    if (r != Client::Read::Prompt) return fail_read(r, s);
    if (s == "alive on" && lines == 0) timeout = 30000;  // the daemon says "alive" while busy
  }
  Output out;
  for (auto& cmd : commands) {
    if (cmd.size() > 1000) {
      fprintf(stderr, "error: command too long\n");
      return 1;
    }
    if (!cl.send_line(cmd)) return fail_read(Client::Read::Error, cmd);
    auto r = cl.until_prompt(timeout, password, [&](const std::string& l) { out.line(l); });
    out.clear();
    if (r != Client::Read::Prompt) return fail_read(r, cmd);
  }
  cl.send_line("quit");
  if (cl.until_prompt(5000, password, quiet) == Client::Read::Prompt) {
    fprintf(stderr, "error: quit error?!\n");
    return 1;
  }
  return out.failed() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc <= 1) {
    usage(stderr);
    return 1;
  }
  Args a;
  if (int rc = parse(argc, argv, a); rc >= 0) return rc;
  std::string password;
  if (!a.passfile.empty()) {
    std::vector<std::string> l;
    if (!read_lines(a.passfile, l)) {
      fprintf(stderr, "msync: can't read password file %s\n", a.passfile.c_str());
      return 1;
    }
    password = l.empty() ? "" : l[0];
  }
  std::vector<std::string> commands;
  if (!commands_of(a, commands)) return 1;
  Client cl;
  std::string why;
  if (!cl.connect_to(a.target, why)) {
    fprintf(stderr, "error: can't connect to makuosan at %s: %s (is the daemon running?)\n",
            a.target.c_str(), why.c_str());
    return 1;
  }
  return run(cl, a, commands, password);
}
