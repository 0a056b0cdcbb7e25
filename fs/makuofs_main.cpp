// makuofs: mounts BASEDIR (again, or over itself) so that every change made through the mount
// is recorded in the change journal that makuosan propagates.
#include <fcntl.h>
#include <getopt.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fs/cache_pruner.hpp"
#include "fs/invalidator.hpp"
#include "fs/kernel_channel.hpp"
#include "fs/passthrough.hpp"
#include "fs/request_loop.hpp"
#include "fs/uring_queues.hpp"
#include "state/journal.hpp"
#include "state/state_dir.hpp"
#include "sync/version.hpp"

namespace {

const char* kUsage = R"(Usage: makuofs [options] BASEDIR MOUNTPOINT
       mount -t fuse.makuofs BASEDIR MOUNTPOINT [-o options]

Mounts BASEDIR at MOUNTPOINT (which may be BASEDIR itself). Every change made through the
mount is recorded in the change journal under the state directory, and the makuosan daemon
serving BASEDIR sends it to every other server. The mount keeps working, and recording,
while the daemon is down; what it recorded is sent when the daemon is back.

Options:
  -o OPT[,OPT...]  mount options, below
  -f               stay in the foreground, log to stderr
  -d               as -f, and log every FUSE request
  -h, --help       this help
  -V, --version    version

Mount options:
  allow_other      let every user use the mount (permissions are checked as on BASEDIR,
                   and what a user creates belongs to that user)
  state_dir=DIR    the journal's directory, shared with makuosan --state-dir
                   (default: /var/lib/makuo/ + BASEDIR escaped like systemd-escape --path)
  timeout=SECONDS  how long the kernel caches names and attributes (default 1)
  writeback        let the kernel cache writes (faster small writes; no passthrough)
  xattr            extended attributes through the mount. They are not replicated, so by
                   default the mount has none (EOPNOTSUPP), which also spares the kernel's
                   security.capability question on each new file's first write
  nopassthrough    do not let the kernel read and write files directly (kernel 6.9+)
  nouring          do not serve requests on per-CPU io_uring queues (kernel 6.14+,
                   when /sys/module/fuse/parameters/enable_uring is Y)
  threads=N        at most N request threads (default 16)
  spin=US          after a request, watch for the next one for US microseconds before
                   sleeping (default 50; 0: never): a busy caller's next request is then
                   served without waking a thread. Ignored with a single CPU
  max_inodes=N     past N inodes cached by the kernel (each costs makuofs a descriptor), ask
                   it to drop the least recently used quarter (default: the descriptor
                   limit, RLIMIT_NOFILE, less a quarter for open files)
  fsname=NAME      the source shown in /proc/mounts (default BASEDIR)
  subtype=NAME     default makuofs
  ro, rw, suid, nosuid, dev, nodev, exec, noexec, atime, noatime, sync, async, dirsync,
  allow_root, default_permissions (always on)
  _netdev, nofail, noauto, auto, defaults, user, users, x-*, comment=*: for mount(8), ignored

Exit status: 0 once the mount exists, 1 when it could not be made.
)";

std::atomic<bool> g_stop{false};

struct Args {
  std::string base, mountpoint, state_dir, fsname, subtype = "makuofs";
  std::vector<std::string> fuse_opts;
  double timeout = 1.0;
  bool writeback = false, foreground = false, debug = false, xattr = false;
  bool passthrough = true, uring = true;
  unsigned threads = 16;
  unsigned spin_us = 50;
  size_t max_inodes = 0;  // 0: from the descriptor limit
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "makuofs: %s\n%s", msg.c_str(), kUsage);
  std::exit(1);
}

bool starts(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

void parse_opts(Args& a, const std::string& list) {
  static const char* pass[] = {"allow_other", "allow_root", "ro",    "rw",    "suid",
                               "nosuid",      "dev",        "nodev", "exec",  "noexec",
                               "atime",       "noatime",    "sync",  "async", "dirsync"};
  static const char* ignored[] = {"_netdev",  "nofail", "noauto", "auto",
                                  "defaults", "user",   "users",  "default_permissions"};
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string o = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (o.empty()) continue;
    bool done = false;
    for (auto* p : pass)
      if (o == p) {
        a.fuse_opts.push_back(o);
        done = true;
      }
    for (auto* p : ignored)
      if (o == p) done = true;
    if (done || starts(o, "x-") || starts(o, "comment=")) continue;
    if (starts(o, "state_dir=")) {
      a.state_dir = o.substr(10);
    } else if (starts(o, "timeout=")) {
      char* end = nullptr;
      a.timeout = std::strtod(o.c_str() + 8, &end);
      if (*end || a.timeout < 0 || a.timeout > 86400) usage_error("bad timeout: " + o);
    } else if (starts(o, "threads=")) {
      a.threads = unsigned(std::atoi(o.c_str() + 8));
      if (a.threads < 1 || a.threads > 1024) usage_error("bad threads: " + o);
    } else if (starts(o, "spin=")) {
      char* end = nullptr;
      unsigned long n = std::strtoul(o.c_str() + 5, &end, 10);
      if (*end || o.size() == 5 || n > 10000) usage_error("bad spin (0 to 10000): " + o);
      a.spin_us = unsigned(n);
    } else if (starts(o, "max_inodes=")) {
      char* end = nullptr;
      unsigned long long n = std::strtoull(o.c_str() + 11, &end, 10);
      if (*end || n < 64 || n > (1ull << 32)) usage_error("bad max_inodes (64 or more): " + o);
      a.max_inodes = size_t(n);
    } else if (o == "writeback") {
      a.writeback = true;
    } else if (o == "no_writeback") {
      a.writeback = false;
    } else if (o == "xattr") {
      a.xattr = true;
    } else if (o == "noxattr") {
      a.xattr = false;
    } else if (o == "nopassthrough") {
      a.passthrough = false;
    } else if (o == "nouring") {
      a.uring = false;
    } else if (starts(o, "fsname=")) {
      a.fsname = o.substr(7);
    } else if (starts(o, "subtype=")) {
      a.subtype = o.substr(8);
    } else {
      usage_error("unknown mount option: " + o);
    }
  }
}

Args parse(int argc, char** argv) {
  Args a;
  static option longs[] = {{"help", no_argument, nullptr, 'h'},
                           {"version", no_argument, nullptr, 'V'},
                           {nullptr, 0, nullptr, 0}};
  opterr = 0;
  std::vector<std::string> pos;
  // Options may follow the operands (mount.fuse passes "-o" last).
  for (;;) {
    int c = getopt_long(argc, argv, "-o:fdhVsn", longs, nullptr);
    if (c == -1) break;
    switch (c) {
      case 1:
        pos.push_back(optarg);
        break;
      case 'o':
        parse_opts(a, optarg);
        break;
      case 'f':
        a.foreground = true;
        break;
      case 'd':
        a.foreground = a.debug = true;
        break;
      case 's':
        break;  // single-threaded: accepted for FUSE habits, we stay multi-threaded
      case 'n':
        break;  // mount(8)'s "do not write mtab"
      case 'h':
        std::fputs(kUsage, stdout);
        std::exit(0);
      case 'V':
        std::printf("makuofs %s\n", makuo::kVersion);
        std::exit(0);
      default:
        usage_error(std::string("unknown option: ") +
                    (optopt ? std::string("-") + char(optopt) : std::string(argv[optind - 1])));
    }
  }
  if (pos.size() != 2) usage_error("needs BASEDIR and MOUNTPOINT");
  a.base = pos[0];
  a.mountpoint = pos[1];
  // mount(8) hands "makuofs#BASEDIR" style sources through unchanged from old fstab lines.
  if (auto h = a.base.find('#'); h != std::string::npos && starts(a.base, "makuofs#"))
    a.base = a.base.substr(h + 1);
  return a;
}

// Every inode the kernel holds costs us one descriptor: systemd's soft limit of 1024 would fail
// a tree of a thousand files with EMFILE. Raised as far as the hard limit, and the hard limit as
// far as the kernel allows when we may.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = rl.rlim_max;
  std::ifstream nr("/proc/sys/fs/nr_open");
  unsigned long nr_open = 0;
  if (nr >> nr_open && nr_open > want) {
    rlimit up{nr_open, nr_open};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return;
  }
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (want < 16384)
    std::fprintf(stderr,
                 "makuofs: warning: at most %lu open descriptors: the kernel may hold no more "
                 "inodes than that (raise LimitNOFILE)\n",
                 static_cast<unsigned long>(want));
}

// The kernel grows a descriptor table by doubling it, and in a process with several threads
// each doubling waits for a full RCU grace period (expand_fdtable: 10-30 ms on a VM), inside
// whichever request opened the descriptor. With a descriptor per cached inode, creating 10,000
// files crossed seven doublings mid-workload (mount_bench's create: 0.63 s; grown here, 0.54 s).
// Grown once here, while we are one thread, it costs no grace period.
constexpr rlim_t kFdTableSlots = 65536;  // 512 KiB of kernel memory
void presize_fd_table() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 2) return;
  int top = int(std::min(rl.rlim_cur, kFdTableSlots) - 1);
  int fd = open("/", O_PATH | O_CLOEXEC);
  if (fd < 0) return;
  if (dup2(fd, top) == top) close(top);
  close(fd);
}

// The open files, the journal, the device and the sockets need descriptors beside the inodes.
size_t inode_budget(size_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return wanted;
  size_t limit = size_t(rl.rlim_cur);
  if (limit <= 128) return 64;
  size_t most = limit - std::max<size_t>(64, limit / 4);
  if (wanted == 0) return most;
  if (wanted > most)
    std::fprintf(stderr, "makuofs: warning: max_inodes=%zu is more than %zu descriptors allow\n",
                 wanted, most);
  return std::min(wanted, most);
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  raise_fd_limit();
  char real[PATH_MAX];
  if (!realpath(a.base.c_str(), real)) {
    std::fprintf(stderr, "makuofs: %s: %s\n", a.base.c_str(), std::strerror(errno));
    return 1;
  }
  std::string base = real;
  // Opened before the mount exists, so that mounting over BASEDIR itself works.
  int root_fd = open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat bst;
  if (root_fd < 0 || fstat(root_fd, &bst) != 0 || !S_ISDIR(bst.st_mode)) {
    std::fprintf(stderr, "makuofs: %s: not a directory\n", base.c_str());
    return 1;
  }
  if (a.state_dir.empty()) a.state_dir = makuo::state::default_path(base);
  // Root's work in the state directory goes through these descriptors only (state_dir.hpp).
  makuo::state::StateDir state;
  std::string what;
  if (int e = state.open(a.state_dir, uid_t(-1), gid_t(-1), what)) {
    std::fprintf(stderr, "makuofs: state directory: %s: %s\n", what.c_str(),
                 e == ELOOP ? "a symlink or a file is in the way" : std::strerror(e));
    return 1;
  }
  if (a.fsname.empty()) a.fsname = base;
  umask(0);  // the kernel applied the caller's umask already

  int ready[2] = {-1, -1};
  if (!a.foreground) {
    if (pipe2(ready, O_CLOEXEC) != 0) return 1;
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) {
      // The parent answers for the mount: 0 only once it exists.
      close(ready[1]);
      char ok = 0;
      return read(ready[0], &ok, 1) == 1 && ok == 'y' ? 0 : 1;
    }
    close(ready[0]);
    setsid();
  }
  presize_fd_table();  // after the fork: a child's table is only as large as its open descriptors

  makuo::journal::Writer journal(state.journal_path(), "fs");
  if (int e = journal.open(state.journal_fd())) {
    std::fprintf(stderr, "makuofs: change journal in %s/journal: %s\n", a.state_dir.c_str(),
                 std::strerror(e));
    return 1;
  }
  makuo::fs::Passthrough fs({base, a.timeout, a.writeback, a.xattr}, root_fd, journal);
  if (geteuid() == 0 && !fs.creates_as_caller())
    spdlog::warn(
        "cannot keep root's capabilities across a filesystem uid change (no CAP_SETPCAP?): "
        "directories, nodes and symlinks are created as root and given to the caller by name");

  std::string opts = "default_permissions,fsname=" + a.fsname + ",subtype=" + a.subtype;
  for (auto& o : a.fuse_opts) opts += "," + o;
  std::vector<std::string> fargv = {"makuofs", "-o", opts};
  if (a.debug) fargv.push_back("-d");
  std::vector<char*> fa;
  for (auto& s : fargv) fa.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(int(fa.size()), fa.data());
  fuse_session* se = fuse_session_new(&args, &makuo::fs::Passthrough::ops(a.xattr),
                                      sizeof(fuse_lowlevel_ops), &fs);
  if (!se) {
    std::fprintf(stderr, "makuofs: bad mount options: %s\n", opts.c_str());
    return 1;
  }
  if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, a.mountpoint.c_str()) != 0) {
    std::fprintf(stderr, "makuofs: cannot mount %s on %s\n", base.c_str(), a.mountpoint.c_str());
    fuse_session_destroy(se);
    return 1;
  }

  makuo::fs::ChannelWants wants;
  wants.passthrough = a.passthrough && !a.writeback;
  wants.uring = a.uring;
  if (makuo::fs::wrap_channel(se, wants) != 0)
    std::fprintf(stderr,
                 "makuofs: warning: cannot wrap the FUSE device; every write will cost "
                 "an extra round trip\n");
  makuo::fs::Invalidator inval(se, fs.inodes(), state.notify_fd());
  if (int e = inval.start())
    std::fprintf(stderr, "makuofs: warning: no cache invalidation socket: %s\n", std::strerror(e));
  makuo::fs::CachePruner pruner(se, fs, inode_budget(a.max_inodes));
  pruner.start();
  // Records are written before each operation is answered; this puts them on disk soon after.
  std::thread flusher([&] {
    while (!g_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      journal.sync();
    }
  });

  if (!a.foreground) {
    auto log = spdlog::syslog_logger_mt("makuofs", "makuofs", LOG_PID, LOG_DAEMON);
    spdlog::set_default_logger(log);
    char ok = 'y';
    if (write(ready[1], &ok, 1) != 1) return 1;
    close(ready[1]);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2) close(null);
    }
  }
  spdlog::info("mounted {} on {} (journal {}/journal)", base, a.mountpoint, a.state_dir);

  // Once INIT is answered: per-CPU io_uring queues, if the kernel agreed to them.
  makuo::fs::UringQueues rings(se, fuse_session_fd(se));
  std::thread ring_starter([&] {
    if (!makuo::fs::wait_init_answered()) return;
    spdlog::info("kernel: passthrough {}, io_uring {}, killpriv_v2 {}",
                 makuo::fs::passthrough_active() ? "on" : "off",
                 makuo::fs::uring_active() ? "on" : "off",
                 makuo::fs::killpriv_v2_active() ? "on" : "off");
    if (!makuo::fs::uring_active()) {
      std::ifstream param("/sys/module/fuse/parameters/enable_uring");
      char v = 0;
      if (a.uring && param >> v && v == 'N')
        spdlog::info(
            "FUSE over io_uring is off in this kernel (/sys/module/fuse/parameters/"
            "enable_uring is N): with it makuofs serves each request on the CPU that made it");
      return;
    }
    unsigned cpus = makuo::fs::possible_cpus();
    // Four of a CPU's requests may wait on the base (a frozen file system) before the next waits
    // behind them.
    constexpr unsigned kThreadsPerCpu = 4;
    if (rings.start(kThreadsPerCpu, makuo::fs::max_payload()) == 0)
      spdlog::info("requests served on {} io_uring queues, one per CPU, {} threads each", cpus,
                   kThreadsPerCpu);
    else
      spdlog::warn("io_uring queues not set up ({}): requests go through /dev/fuse", rings.error());
  });
  int rc = makuo::fs::serve_requests(se, {a.threads, a.spin_us});

  g_stop = true;
  flusher.join();
  inval.stop();
  pruner.stop();
  journal.sync();
  fuse_session_unmount(se);
  ring_starter.join();
  rings.stop();
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  spdlog::info("unmounted {}", a.mountpoint);
  return rc == 0 ? 0 : 1;
}
