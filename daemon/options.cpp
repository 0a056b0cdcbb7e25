#include "daemon/options.hpp"

#include <getopt.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "sync/crypto.hpp"
#include "sync/version.hpp"

namespace makuo {

void print_daemon_usage(FILE* out) {
  fprintf(out,
          "makuosan version %s (makuo: multicast file sync, successor of makuosan 1.3.6)\n"
          "\n"
          "usage: makuosan [OPTION]          (every option in detail: man makuosan)\n"
          "  -d num       # log level 0-9 (SIGUSR1 +1, SIGUSR2 -1)\n"
          "  -u uid       # user to drop to after binding the sockets\n"
          "  -g gid       # group\n"
          "  -G gid,...   # supplementary groups (also what send -g accepts)\n"
          "  -b dir       # base directory (default: current directory)\n"
          "  -p port      # UDP port and console TCP port (default: 5000)\n"
          "  -m addr      # multicast group (default: 239.255.10.8)\n"
          "  -i addr      # interface address for multicast (default: 0.0.0.0)\n"
          "  -l addr      # console listen address (default: 127.0.0.1)\n"
          "  -U path      # console on a unix socket instead of TCP\n"
          "  -k file      # cluster key (required unless --insecure; twice to roll keys)\n"
          "  -K file      # console password file\n"
          "  -f num       # parallel sends (accepted for compatibility)\n"
          "  -R num       # SO_RCVBUF bytes (default: 4194304)\n"
          "  -S num       # SO_SNDBUF bytes (default: the kernel's)\n"
          "  -T num       # send rate cap, Mbit/s (default: none)\n"
          "  -n           # don't fork\n"
          "  -r           # don't receive\n"
          "  -s           # don't send\n"
          "  -o           # no console\n"
          "  -O           # send only files owned by -u\n"
          "  -c --chroot  # chroot to the base directory\n"
          "  -C --core    # allow core dumps\n"
          "  -V --version # print version\n"
          "  -h --help    # this help\n"
          "  --name NODE         # node name (default: hostname)\n"
          "  --state-dir DIR     # journal and index (default: /var/lib/makuo/BASE)\n"
          "  --exclude PAT       # recorded changes matching PAT are not propagated\n"
          "  --quiet MS          # propagate once writers paused MS ms (default: 50)\n"
          "  --watch             # record changes with inotify (no makuofs mount)\n"
          "  --tombstone-days N  # remember deletions N days (default: 7)\n"
          "  --no-catch-up       # msync alone decides what is sent (1.3.6 behaviour)\n"
          "  --retry SEC         # catch a failed member up again after SEC (default: 30)\n"
          "  --keep-conflicts    # keep a losing concurrent version as a conflict copy\n"
          "  --max-skew SEC      # warn about members' clocks further than SEC (default: 2)\n"
          "  --recv-memory MIB   # memory all received pushes may hold (default: 256)\n"
          "  --gen-key FILE      # write a new cluster key to FILE and exit\n"
          "  --insecure          # run without a cluster key\n"
          "  --metrics-file PATH # Prometheus text file, every 5 s\n"
          "  --mtu BYTES         # path MTU (default: 1500)\n"
          "  --timeout SEC       # drop a target that does not answer (default: 10)\n"
          "  --loop              # hear our own multicast\n",
          kVersion);
}

namespace {

bool to_int(const char* s, long lo, long hi, long& out) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) return false;
  out = v;
  return true;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(item);
  return v;
}

}  // namespace

ParseResult parse_daemon_options(int argc, char** argv, DaemonOptions& o) {
  if (argc <= 1) {  // as makuosan: no arguments at all prints usage
    print_daemon_usage(stdout);
    return ParseResult::ExitOk;
  }
  if (const char* e = getenv("MAKUOSAN_BASE")) o.base = e;
  if (const char* e = getenv("MAKUOSAN_USER")) o.user = e;
  if (const char* e = getenv("MAKUOSAN_GROUP")) o.group = e;
  if (const char* e = getenv("MAKUOSAN_GROUPS")) o.groups = split_commas(e);
  if (const char* e = getenv("MAKUOSAN_SOCK")) o.unix_path = e;
  long v;
  auto bad = [&](const char* what, const char* val) {
    fprintf(stderr, "makuosan: invalid %s: '%s'\n", what, val);
    print_daemon_usage(stderr);
    return ParseResult::ExitError;
  };
  if (const char* e = getenv("MAKUOSAN_PORT")) {
    if (!to_int(e, 1, 65535, v)) return bad("MAKUOSAN_PORT", e);
    o.port = uint16_t(v);
  }
  if (const char* e = getenv("MAKUOSAN_RCVBUF")) {
    if (!to_int(e, 0, 1 << 30, v)) return bad("MAKUOSAN_RCVBUF", e);
    o.rcvbuf = int(v);
  }
  if (const char* e = getenv("MAKUOSAN_SNDBUF")) {
    if (!to_int(e, 0, 1 << 30, v)) return bad("MAKUOSAN_SNDBUF", e);
    o.sndbuf = int(v);
  }
  enum {
    kName = 256,
    kStateDir,
    kMtu,
    kLoop,
    kTimeout,
    kExclude,
    kQuiet,
    kWatch,
    kMetrics,
    kTombstoneDays,
    kKeepConflicts,
    kNoCatchUp,
    kRetry,
    kMaxSkew,
    kRecvMemory,
    kInsecure,
    kGenKey
  };
  static const option longs[] = {{"chroot", no_argument, nullptr, 'c'},
                                 {"core", no_argument, nullptr, 'C'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {"version", no_argument, nullptr, 'V'},
                                 {"name", required_argument, nullptr, kName},
                                 {"state-dir", required_argument, nullptr, kStateDir},
                                 {"mtu", required_argument, nullptr, kMtu},
                                 {"loop", no_argument, nullptr, kLoop},
                                 {"timeout", required_argument, nullptr, kTimeout},
                                 {"exclude", required_argument, nullptr, kExclude},
                                 {"quiet", required_argument, nullptr, kQuiet},
                                 {"watch", no_argument, nullptr, kWatch},
                                 {"metrics-file", required_argument, nullptr, kMetrics},
                                 {"tombstone-days", required_argument, nullptr, kTombstoneDays},
                                 {"keep-conflicts", no_argument, nullptr, kKeepConflicts},
                                 {"no-catch-up", no_argument, nullptr, kNoCatchUp},
                                 {"retry", required_argument, nullptr, kRetry},
                                 {"max-skew", required_argument, nullptr, kMaxSkew},
                                 {"recv-memory", required_argument, nullptr, kRecvMemory},
                                 {"insecure", no_argument, nullptr, kInsecure},
                                 {"gen-key", required_argument, nullptr, kGenKey},
                                 {nullptr, 0, nullptr, 0}};
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":T:R:S:f:u:g:G:d:b:p:m:i:l:U:k:K:VhnsroOcC", longs,
                          nullptr)) != -1) {
    switch (c) {
      case 'd':
        if (!to_int(optarg, 0, 9, v)) return bad("-d", optarg);
        o.loglevel = int(v);
        break;
      case 'u':
        o.user = optarg;
        break;
      case 'g':
        o.group = optarg;
        break;
      case 'G':
        o.groups = split_commas(optarg);
        break;
      case 'b':
        o.base = optarg;
        break;
      case 'p':
        if (!to_int(optarg, 1, 65535, v)) return bad("-p", optarg);
        o.port = uint16_t(v);
        break;
      case 'm':
        o.mcast = optarg;
        break;
      case 'i':
        o.iface = optarg;
        break;
      case 'l':
        o.listen = optarg;
        break;
      case 'U':
        o.unix_path = optarg;
        break;
      case 'k':
        o.keyfiles.push_back(optarg);
        break;
      case 'K':
        o.passfile = optarg;
        break;
      case 'f':
        if (!to_int(optarg, 1, 1000, v)) return bad("-f", optarg);
        o.parallel = int(v);
        break;
      case 'R':
        if (!to_int(optarg, 0, 1 << 30, v)) return bad("-R", optarg);
        o.rcvbuf = int(v);
        break;
      case 'S':
        if (!to_int(optarg, 0, 1 << 30, v)) return bad("-S", optarg);
        o.sndbuf = int(v);
        break;
      case 'T': {
        char* end = nullptr;
        double d = strtod(optarg, &end);
        if (!*optarg || *end || d < 0 || d > 1e6) return bad("-T", optarg);
        o.rate_mbps = d;
        break;
      }
      case 'n':
        o.foreground = true;
        break;
      case 'r':
        o.noreceive = true;
        break;
      case 's':
        o.nosend = true;
        break;
      case 'o':
        o.noconsole = true;
        break;
      case 'O':
        o.owner_match = true;
        break;
      case 'c':
        o.chroot = true;
        break;
      case 'C':
        o.core = true;
        break;
      case 'V':
        printf("makuosan version %s\n", kVersion);
        return ParseResult::ExitOk;
      case 'h':
        print_daemon_usage(stdout);
        return ParseResult::ExitOk;
      case kName:
        if (!*optarg || strlen(optarg) > 255) return bad("--name", optarg);
        o.name = optarg;
        break;
      case kStateDir:
        o.state_dir = optarg;
        break;
      case kMtu:
        if (!to_int(optarg, 576, 65000, v)) return bad("--mtu", optarg);
        o.mtu = int(v);
        break;
      case kLoop:
        o.loop = true;
        break;
      case kTimeout:
        if (!to_int(optarg, 1, 3600, v)) return bad("--timeout", optarg);
        o.target_timeout = int(v);
        break;
      case kExclude:
        if (!*optarg) return bad("--exclude", optarg);
        o.excludes.push_back(optarg);
        break;
      case kQuiet:
        if (!to_int(optarg, 1, 60000, v)) return bad("--quiet", optarg);
        o.quiet_ms = int(v);
        break;
      case kWatch:
        o.watch = true;
        break;
      case kTombstoneDays:
        if (!to_int(optarg, 1, 3650, v)) return bad("--tombstone-days", optarg);
        o.tombstone_days = int(v);
        break;
      case kKeepConflicts:
        o.keep_conflicts = true;
        break;
      case kNoCatchUp:
        o.catch_up = false;
        break;
      case kRetry:
        if (!to_int(optarg, 1, 86400, v)) return bad("--retry", optarg);
        o.retry_secs = int(v);
        break;
      case kMaxSkew: {
        char* end = nullptr;
        double d = strtod(optarg, &end);
        if (!*optarg || *end || !(d > 0 && d <= 86400)) return bad("--max-skew", optarg);
        o.max_skew_s = d;
        break;
      }
      case kRecvMemory:
        if (!to_int(optarg, 4, 1 << 20, v)) return bad("--recv-memory", optarg);
        o.recv_memory_mib = size_t(v);
        break;
      case kInsecure:
        o.insecure = true;
        break;
      case kGenKey:
        try {
          generate_key_file(optarg);
        } catch (const std::exception& e) {
          fprintf(stderr, "makuosan: %s\n", e.what());
          return ParseResult::ExitError;
        }
        printf(
            "%s: a new cluster key (32 random bytes, mode 0600). Copy it to every server and\n"
            "start each makuosan with -k %s\n",
            optarg, optarg);
        return ParseResult::ExitOk;
      case kMetrics:
        if (!*optarg) return bad("--metrics-file", optarg);
        o.metrics_file = optarg;
        break;
      case ':':
        fprintf(stderr, "makuosan: option requires an argument: %s\n", argv[optind - 1]);
        print_daemon_usage(stderr);
        return ParseResult::ExitError;
      default:
        fprintf(stderr, "makuosan: unknown option: %s\n", argv[optind - 1]);
        print_daemon_usage(stderr);
        return ParseResult::ExitError;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "makuosan: unexpected argument: %s\n", argv[optind]);
    print_daemon_usage(stderr);
    return ParseResult::ExitError;
  }
  if (o.name.empty()) {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    o.name = h;
  }
  return ParseResult::Run;
}

}  // namespace makuo
