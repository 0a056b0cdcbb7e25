// makuosan: the daemon. Start-up order follows makuosan 1.3.6 (sockets, console, chroot,
// privileges, daemonize), with a real privilege drop.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstring>
#include <fstream>
#include <random>

#include "ctl/console_server.hpp"
#include "ctl/status_report.hpp"
#include "fs/journal.hpp"
#include "state/state_dir.hpp"
#include "sync/auto_push.hpp"
#include "sync/catch_up.hpp"
#include "sync/crypto.hpp"
#include "sync/engine.hpp"
#include "sync/fsops.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/mount_notify.hpp"
#include "sync/options.hpp"
#include "sync/paths.hpp"
#include "sync/rescan.hpp"
#include "sync/sd_notify.hpp"
#include "sync/secret_file.hpp"
#include "sync/tree_index.hpp"
#include "sync/udp_node.hpp"
#include "sync/version.hpp"
#include "sync/watcher.hpp"

using namespace makuo;

namespace {

// Until the daemon forks, its log is the terminal (or systemd's journal): one line there.
bool log_is_stderr = true;

[[noreturn]] void die(const std::string& msg) {
  if (log_is_stderr)
    fprintf(stderr, "makuosan: %s\n", msg.c_str());
  else
    spdlog::critical("{}", msg);
  exit(1);
}

// -d 0: events and problems; 1-8: also a line per file pushed (debug); 9: every packet (trace).
spdlog::level::level_enum level_for(int d) {
  if (d >= 9) return spdlog::level::trace;
  if (d >= 1) return spdlog::level::debug;
  return spdlog::level::info;
}

// Removes temporaries that a crash left behind (they are never the only copy of anything).
size_t remove_stale_temps(int dirfd) {
  size_t n = 0;
  std::vector<std::string> names;
  if (list_dir(dirfd, names) != 0) return 0;
  for (auto& name : names) {
    if (is_temp_name(name)) {
      if (remove_tree_at(dirfd, name) == 0) ++n;
      continue;
    }
    // O_NOFOLLOW|O_DIRECTORY: only real subdirectories are descended into
    int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    n += remove_stale_temps(fd);
    close(fd);
  }
  return n;
}

uint32_t parse_ipv4(const std::string& s, const char* what) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) die(std::string("invalid ") + what + ": " + s);
  return ntohl(a.s_addr);
}

struct Ids {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::vector<gid_t> groups;
};

Ids resolve_ids(const DaemonOptions& o) {
  Ids ids;
  if (!o.user.empty()) {
    if (passwd* pw = getpwnam(o.user.c_str())) {
      ids.uid = pw->pw_uid;
      ids.gid = pw->pw_gid;  // as makuosan: -u NAME also brings its primary group
    } else {
      char* end = nullptr;
      long v = strtol(o.user.c_str(), &end, 10);
      if (*end || v < 0) die("unknown user: " + o.user);
      ids.uid = uid_t(v);
    }
  }
  auto gid_of = [](const std::string& g) {
    if (group* gr = getgrnam(g.c_str())) return gr->gr_gid;
    char* end = nullptr;
    long v = strtol(g.c_str(), &end, 10);
    if (*end || v < 0) die("unknown group: " + g);
    return gid_t(v);
  };
  if (!o.group.empty()) ids.gid = gid_of(o.group);
  for (auto& g : o.groups) ids.groups.push_back(gid_of(g));
  return ids;
}

void drop_privileges(const Ids& ids) {
  if (!ids.uid && !ids.gid && ids.groups.empty()) return;
  std::vector<gid_t> groups = ids.groups;
  if (groups.empty() && ids.gid) groups.push_back(*ids.gid);
  if (geteuid() == 0 && setgroups(groups.size(), groups.data()) != 0)
    die(std::string("setgroups: ") + strerror(errno));
  if (ids.gid && setresgid(*ids.gid, *ids.gid, *ids.gid) != 0)
    die(std::string("setgid: ") + strerror(errno));
  if (ids.uid && setresuid(*ids.uid, *ids.uid, *ids.uid) != 0)
    die(std::string("setuid: ") + strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  DaemonOptions o;
  switch (parse_daemon_options(argc, argv, o)) {
    case ParseResult::ExitOk:
      return 0;
    case ParseResult::ExitError:
      return 1;
    case ParseResult::Run:
      break;
  }
  auto console_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("makuosan", console_sink);
  spdlog::set_default_logger(logger);
  spdlog::set_level(level_for(o.loglevel));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  if (o.keyfiles.empty() && !o.insecure)
    die("no cluster key (-k): without one any host that reaches port " + std::to_string(o.port) +
        " can write and delete files here. Make one with 'makuosan --gen-key /etc/makuo.key', "
        "copy it to every server and give -k /etc/makuo.key (or --insecure to run without)");
  std::vector<ClusterKey> keys;
  for (auto& f : o.keyfiles) {
    try {
      keys.push_back(load_key_file(f));
    } catch (const std::exception& e) {
      die(e.what());
    }
  }
  if (o.base.empty()) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) die("getcwd failed");
    o.base = cwd;
  }
  char real[PATH_MAX];
  if (!realpath(o.base.c_str(), real)) die("base directory " + o.base + ": " + strerror(errno));
  std::string base = real;
  int basefd = open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (basefd < 0) die("base directory " + base + ": " + strerror(errno));

  std::optional<std::string> password;
  if (!o.passfile.empty()) {
    std::string content;
    try {
      content = read_secret_file(o.passfile, "password file", 63);
    } catch (const std::exception& e) {
      die(e.what());
    }
    if (content.size() < 4) die("password file " + o.passfile + " must hold 4 to 63 bytes");
    content = content.substr(0, content.find_first_of("\r\n"));
    password = content;
  }
  Ids ids = resolve_ids(o);

  // The state directory: root's, with subdirectories of the daemon's user (state_dir.hpp).
  // What only that user writes (the index, last-contact, the journal's cursor) is opened after
  // the privilege drop.
  uid_t state_uid = ids.uid ? *ids.uid : uid_t(-1);
  gid_t state_gid = ids.gid ? *ids.gid : gid_t(-1);
  state::StateDir state;
  {
    std::string what;
    if (int e = state.open(o.state_dir.empty() ? state::default_path(base) : o.state_dir, state_uid,
                           state_gid, what))
      die("state directory: " + what + ": " +
          (e == ELOOP ? "a symlink or a file is in the way" : strerror(e)));
  }
  if (o.watch && o.chroot) die("--watch cannot be combined with -c (chroot)");
  // Watched from here, before chroot and privilege drop can take the path away from us.
  int journal_inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (journal_inotify < 0 ||
      inotify_add_watch(
          journal_inotify, state.journal_path().c_str(),
          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
    die(std::string("inotify on the change journal: ") + strerror(errno));
  std::unique_ptr<journal::Writer> watch_journal;
  if (o.watch) {
    watch_journal = std::make_unique<journal::Writer>(state.journal_path(), "watch");
    if (int e = watch_journal->open(state.journal_fd()))
      die("change journal for --watch: " + std::string(strerror(e)));
  }
  int64_t keep_tombs_ns = int64_t(o.tombstone_days) * 86400 * 1000000000LL;
  int64_t contact_saved = 0;
  auto save_contact = [&](int64_t now_ns) {
    if (now_ns - contact_saved < 60000000000LL) return;
    contact_saved = now_ns;
    std::string v = std::to_string(now_ns) + "\n";
    int fd = openat(state.daemon_fd(), ".last-contact.tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    bool ok = write(fd, v.data(), v.size()) == ssize_t(v.size());
    close(fd);
    if (ok)
      renameat(state.daemon_fd(), ".last-contact.tmp", state.daemon_fd(), state::kLastContact);
  };
  Excludes excludes;
  for (auto& x : o.excludes) excludes.add(x);
  // The tree index, brought in line with what changed on disk while we were not running (after
  // the privilege drop), and the clock that versions changes made here.
  TreeIndex index(state.daemon_fd(), state::kIndex);
  HybridClock hlc(realtime_ns);
  std::unique_ptr<journal::Reader> reader;
  std::unique_ptr<AutoPush> autopush;
  std::unique_ptr<MountNotifier> notifier;
  if (!o.chroot) notifier = std::make_unique<MountNotifier>(state.path() + "/" + state::kNotify);

  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;  // in-flight files each hold a descriptor or two
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (o.core) {
    prctl(PR_SET_DUMPABLE, 1);
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_CORE, &rl);
    }
  }

  boost::asio::io_context io;
  NetConfig nc;
  nc.group = parse_ipv4(o.mcast, "multicast group (-m)");
  if ((nc.group >> 28) != 0xe) die("-m " + o.mcast + " is not a multicast address");
  nc.port = o.port;
  nc.iface = parse_ipv4(o.iface, "interface address (-i)");
  nc.rcvbuf = o.rcvbuf;
  nc.sndbuf = o.sndbuf;
  nc.loop = o.loop;
  std::unique_ptr<UdpNode> node;
  try {
    node = std::make_unique<UdpNode>(io, nc);
  } catch (const std::exception& e) {
    die(std::string("udp socket: ") + e.what());
  }

  EngineConfig ec;
  ec.name = o.name;
  ec.version = kVersion;
  ec.recv.basefd = basefd;
  ec.recv.base_path = base;
  ec.recv.readonly = o.noreceive;
  ec.recv.privileged = ids.uid ? *ids.uid == 0 : geteuid() == 0;  // uid after the drop below
  ec.nosend = o.nosend;
  ec.tuning.block_size = uint16_t(o.mtu - 128);
  ec.tuning.target_timeout = std::chrono::seconds(o.target_timeout);
  ec.rate_bytes = uint64_t(o.rate_mbps * 1e6 / 8);
  ec.threads = true;
  ec.clock = &hlc;
  ec.max_skew = std::chrono::milliseconds(int64_t(o.max_skew_s * 1000));
  ec.recv_memory = o.recv_memory_mib << 20;
  ec.recv.index = &index;
  ec.recv.clock = &hlc;
  ec.recv.self = o.name;
  ec.recv.keep_conflicts = o.keep_conflicts;
  ec.recv.on_conflict_copy = [&](const std::string& path) {
    TimePoint now = Clock::now();
    if (notifier) notifier->changed(path, now);
    if (autopush) autopush->local_change(path, now);
  };
  ec.recv.on_newer_here = [&](const std::string& path) {
    if (autopush) autopush->local_change(path, Clock::now());
  };
  ec.recv.on_applied = [&](const std::string& path) {
    TimePoint now = Clock::now();
    if (notifier) notifier->changed(path, now);
    if (autopush) autopush->applied(path, now);
  };

  ctl::ConsoleConfig cc;
  cc.listen_addr = o.listen;
  cc.port = o.port;
  cc.unix_path = o.unix_path;
  cc.password = password;
  cc.basefd = basefd;
  cc.base_path = base;
  cc.version = kVersion;
  cc.nosend = o.nosend;
  if (o.owner_match) cc.owner_only = ids.uid ? *ids.uid : geteuid();
  cc.group_names = o.groups;
  // An msync push is a change made here: a new version of every path it sends, on top of ours
  // (the receivers merge it with theirs), and of every deletion it makes.
  cc.version_push = [&](SessionRequest& req) {
    uint64_t now = hlc.tick();
    if (req.flags & wire::kDsync) {
      req.deletion = bump({}, o.name, now);
      return;
    }
    for (auto& e : req.entries) index.stamp_push(e, o.name, now);
  };
  std::unique_ptr<Watcher> watcher;
  cc.started = Clock::now();
  CatchUp* catchup_ptr = nullptr;
  const Engine* engine_ptr = nullptr;  // the engine is made after the console's config
  cc.extra_report = [&](ctl::StatusReport& r) {
    if (catchup_ptr) {
      auto& c = catchup_ptr->stats();
      r.catch_up = catchup_ptr->state();
      r.add("makuo_catchup_rounds_total", "Catch-up pushes started", double(c.rounds));
      r.add("makuo_catchup_updated_total", "Files updated on members by catch-up",
            double(c.updated));
      r.add("makuo_catchup_deleted_total", "Deletions applied on members by catch-up",
            double(c.deleted));
      r.add("makuo_tombstones", "Deletions remembered for members that were away",
            double(index.tombstones_size()), false);
      r.add("makuo_index_entries", "Paths in the tree index", double(index.size()), false);
      r.add("makuo_conflicts_total",
            "Versions written here that lost to concurrent writes elsewhere",
            double(engine_ptr->recv_stats().conflicts));
      for (auto& m : engine_ptr->members().sorted())
        r.add("makuo_clock_skew_seconds",
              "A member's wall clock minus ours, from its last heartbeat",
              double(m.clock_skew_ns) / 1e9, false, "member", m.name);
      r.add("makuo_clock_skewed_members",
            "Members whose clock is further than --max-skew from ours",
            double(std::ranges::count_if(engine_ptr->members().sorted(),
                                         [](const Member& m) { return m.skewed; })),
            false);
    }
    if (autopush) {
      auto& a = autopush->stats();
      r.add("makuo_journal_backlog_bytes", "Recorded changes not yet propagated (bytes)",
            double(reader->backlog()), false);
      r.add("makuo_journal_records_total", "Change records read from the journal",
            double(a.records));
      r.add("makuo_propagate_pushes_total", "Pushes of recorded changes", double(a.pushes));
      r.add("makuo_propagate_paths_total", "Paths in pushes of recorded changes",
            double(a.entries));
      r.add("makuo_propagate_echoes_total", "Changes skipped as our own receiver's writes",
            double(a.echoes));
      r.add("makuo_propagate_held_total",
            "Files held back from a push while open for writing through the mount", double(a.held));
    }
    if (watcher) {
      auto& w = watcher->stats();
      r.add("makuo_watch_directories", "Directories watched with inotify", double(w.watched),
            false);
      r.add("makuo_watch_events_total", "inotify events", double(w.events));
      r.add("makuo_watch_overflows_total", "inotify queue overflows (each answered by a rescan)",
            double(w.overflows));
      r.add("makuo_watch_refused_total", "Directories the watch table refused",
            double(w.watch_failures));
    }
  };
  cc.extra_status = [&] {
    std::vector<std::string> v;
    if (autopush) v = autopush->status_lines();
    if (catchup_ptr) {
      auto& c = catchup_ptr->stats();
      v.push_back("catch-up  : " + catchup_ptr->state() + "; " + std::to_string(c.rounds) +
                  " rounds, " + std::to_string(c.updated) + " updated, " +
                  std::to_string(c.deleted) + " deleted, " +
                  std::to_string(index.tombstones_size()) + " tombstones");
      v.push_back("index     : " + std::to_string(index.size()) + " entries; " +
                  std::to_string(engine_ptr->recv_stats().conflicts) + " conflicts lost here" +
                  (o.keep_conflicts ? " (kept)" : ""));
    }
    if (engine_ptr) {
      std::string skewed;
      for (auto& m : engine_ptr->members().sorted()) {
        if (!m.skewed) continue;
        char b[64];
        double secs = double(m.clock_skew_ns) / 1e9;
        snprintf(b, sizeof b, " is %.1f s %s", secs < 0 ? -secs : secs,
                 secs < 0 ? "behind" : "ahead");
        skewed += (skewed.empty() ? "" : ", ") + m.name + b;
      }
      char lim[32];
      snprintf(lim, sizeof lim, "%g s", o.max_skew_s);
      v.push_back("clock     : " + (skewed.empty()
                                        ? "every member within --max-skew " + std::string(lim)
                                        : skewed + " (beyond --max-skew " + lim + ")"));
    }
    if (watcher) {
      auto& w = watcher->stats();
      v.push_back("watch     : " + std::to_string(w.watched) + " directories, " +
                  std::to_string(w.events) + " events, " + std::to_string(w.overflows) +
                  " overflows, " + std::to_string(w.watch_failures) + " refused watches");
    }
    return v;
  };
  if (!o.group.empty()) cc.group_names.push_back(o.group);

  wire::NodeId id = std::random_device{}();
  id = id << 32 | std::random_device{}();
  // The engine exists before the console so the console can refer to it; it starts talking
  // only when attached to the node.
  Engine engine(ec, *node, id);
  engine_ptr = &engine;
  std::unique_ptr<Sealer> sealer;
  if (!keys.empty()) {
    sealer = std::make_unique<Sealer>(keys, id);
    node->set_sealer(sealer.get());
  }
  std::unique_ptr<ctl::ConsoleServer> console;
  if (!o.noconsole) {
    console = std::make_unique<ctl::ConsoleServer>(io, cc, engine, *node);
    try {
      console->listen();
    } catch (const std::exception& e) {
      die(std::string("console: ") + e.what());
    }
    if (!o.unix_path.empty() && (ids.uid || ids.gid))
      if (chown(o.unix_path.c_str(), ids.uid ? *ids.uid : uid_t(-1),
                ids.gid ? *ids.gid : gid_t(-1)) != 0)
        spdlog::warn("chown {}: {}", o.unix_path, strerror(errno));
  }
  if (o.chroot) {
    setenv("TZ", "UTC", 0);
    if (chroot(base.c_str()) != 0 || chdir("/") != 0)
      die(std::string("chroot: ") + strerror(errno));
  } else if (chdir(base.c_str()) != 0) {
    die(std::string("chdir: ") + strerror(errno));
  }
  drop_privileges(ids);
  size_t stale = remove_stale_temps(basefd);
  // As the daemon's user from here: what it alone writes in the state directory.
  reader = std::make_unique<journal::Reader>(state.journal_path());
  if (int e = reader->open(state.journal_fd()))
    die("change journal " + state.journal_path() + ": " + strerror(e));
  // When this server last had company: away longer than the tombstones are kept, deletions
  // made meanwhile are forgotten, and files deleted elsewhere may come back with our catch-up.
  int64_t last_contact = 0;
  if (int fd = openat(state.daemon_fd(), state::kLastContact, O_RDONLY | O_CLOEXEC); fd >= 0) {
    char buf[32] = {};
    if (read(fd, buf, sizeof buf - 1) > 0) last_contact = strtoll(buf, nullptr, 10);
    close(fd);
  }
  if (last_contact && realtime_ns() - last_contact > keep_tombs_ns)
    spdlog::warn(
        "this server had no contact with the cluster for {} days, longer than "
        "--tombstone-days {}: deletions made meanwhile are not known here, and files "
        "deleted elsewhere may come back; run msync --delete -r from an up-to-date "
        "server to make sure",
        (realtime_ns() - last_contact) / 86400000000000LL, o.tombstone_days);
  // The tree index, brought in line with what changed on disk while we were not running, and
  // the clock that versions changes made here: past every version the index holds.
  {
    std::vector<std::string> warnings;
    if (int e = index.load(warnings))
      die("tree index in " + state.path() + "/" + state::kDaemon + ": " + strerror(e));
    for (auto& w : warnings) spdlog::warn("{}", w);
    if (index.upgraded())
      spdlog::info(
          "tree index of release 0.1 read: its paths start with no version (\"no change seen "
          "yet\"); every change from now on is versioned");
    if (int e = import_legacy_tombstones(state.daemon_fd(), "tombstones", index, o.name))
      spdlog::warn("tombstones of release 0.1 in {}: {}", state.path(), strerror(e));
    auto t0 = Clock::now();
    RescanStats rs = rescan(basefd, base, &excludes, index, o.name, index.stamp_ns());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    if (index.fresh())
      spdlog::info("tree index: {} entries indexed in {} ms (first run)", rs.entries, ms);
    else
      spdlog::info(
          "tree index: {} entries checked in {} ms; since we stopped {} added, {} changed, {} "
          "deleted here (tombstoned), {} gone without a sign of deletion",
          rs.entries, ms, rs.added, rs.changed, rs.deleted, rs.forgotten);
    index.expire(realtime_ns(), keep_tombs_ns);
    if (int e = index.flush(realtime_ns(), true)) die("tree index: " + std::string(strerror(e)));
    hlc.raise_to(index.max_clock());
    // Loading and checking a large index leaves much freed heap behind (the file read whole,
    // the rescan's bookkeeping): give it back.
    malloc_trim(0);
  }

  if (!o.foreground) {
    io.notify_fork(boost::asio::io_context::fork_prepare);
    pid_t pid = fork();
    if (pid < 0) die(std::string("fork: ") + strerror(errno));
    if (pid > 0) {
      fprintf(stderr, "pid       : %d\n", pid);
      _exit(0);
    }
    setsid();
    io.notify_fork(boost::asio::io_context::fork_child);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2) close(null);
    }
    auto sys =
        std::make_shared<spdlog::sinks::syslog_sink_mt>("makuosan", LOG_PID, LOG_DAEMON, false);
    spdlog::default_logger()->sinks() = {sys};
    log_is_stderr = false;
  }

  spdlog::info("makuosan {} started: node {} base {} group {}:{} console {}", kVersion, o.name,
               base, o.mcast, o.port,
               o.noconsole
                   ? "off"
                   : (o.unix_path.empty() ? o.listen + ":" + std::to_string(o.port) : o.unix_path));
  if (stale) spdlog::info("removed {} stale temporary files", stale);
  if (keys.empty()) {
    spdlog::warn(
        "--insecure: no cluster key, any host that reaches this port can write files here");
  } else {
    spdlog::info("cluster key {:08x} seals; {} key(s) open", keys.front().id, keys.size());
  }

  boost::asio::signal_set stop_signals(io, SIGINT, SIGTERM);
  stop_signals.async_wait([&](const boost::system::error_code& e, int sig) {
    if (e) return;
    spdlog::info("signal {}: stopping", sig);
    sd_notify_message("STOPPING=1");
    engine.stop(Clock::now());
    node->flush();  // the goodbyes
    if (int e = index.flush(realtime_ns(), true)) spdlog::warn("tree index: {}", strerror(e));
    if (console) console->close();
    io.stop();
  });
  boost::asio::signal_set level_signals(io, SIGUSR1, SIGUSR2);
  int level = o.loglevel;
  std::function<void()> wait_level = [&] {
    level_signals.async_wait([&](const boost::system::error_code& e, int sig) {
      if (e) return;
      level = std::clamp(level + (sig == SIGUSR1 ? 1 : -1), 0, 9);
      spdlog::set_level(level_for(level));
      spdlog::info("loglevel {}", level);
      wait_level();
    });
  };
  wait_level();
  signal(SIGPIPE, SIG_IGN);
  node->attach(engine);

  AutoPushConfig ac;
  ac.basefd = basefd;
  ac.base_path = base;
  ac.excludes = &excludes;
  ac.quiet = std::chrono::milliseconds(o.quiet_ms);
  ac.max_delay = std::chrono::milliseconds(o.quiet_ms * 10);
  ac.hold_while_receiving = o.watch;
  ac.index = &index;
  ac.clock = &hlc;
  ac.self = o.name;
  autopush = std::make_unique<AutoPush>(ac, engine, *reader, Clock::now());
  spdlog::info("change journal {}: {} bytes to propagate", state.journal_path(), reader->backlog());
  // A record is picked up as soon as it is written.
  int ino = journal_inotify;
  boost::asio::posix::stream_descriptor journal_watch(io, ino);
  boost::asio::steady_timer journal_timer(io);
  std::function<void()> run_autopush = [&] {
    TimePoint next = autopush->run(Clock::now());
    if (autopush->take_started()) node->poke();
    journal_timer.expires_at(next);
    journal_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) run_autopush();
    });
  };
  autopush->set_wake([&] { boost::asio::post(io, [&] { run_autopush(); }); });
  std::function<void()> wait_journal = [&] {
    journal_watch.async_wait(boost::asio::posix::descriptor::wait_read,
                             [&](const boost::system::error_code& e) {
                               if (e) return;
                               char buf[4096];
                               while (read(ino, buf, sizeof buf) > 0) {
                               }
                               run_autopush();
                               wait_journal();
                             });
  };
  wait_journal();
  run_autopush();

  // Catch-up of members that join, and of ourselves when we (re)join.
  CatchUpConfig cuc;
  cuc.basefd = basefd;
  cuc.base_path = base;
  cuc.excludes = &excludes;
  cuc.index = &index;
  cuc.clock = &hlc;
  cuc.self = o.name;
  cuc.retry = std::chrono::seconds(o.retry_secs);
  CatchUp catchup(cuc, engine);
  boost::asio::steady_timer catchup_timer(io);
  std::function<void()> run_catchup = [&] {
    TimePoint now = Clock::now();
    TimePoint next = std::min(catchup.run(now), now + 1s);
    if (catchup.take_started()) node->poke();
    int64_t rt = realtime_ns();
    index.expire(rt, keep_tombs_ns);
    if (int e = index.flush(rt)) spdlog::warn("tree index: {}", strerror(e));
    if (engine.members().size() > 0) save_contact(rt);
    catchup_timer.expires_at(next);
    catchup_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) run_catchup();
    });
  };
  catchup_ptr = &catchup;
  catchup.set_wake([&] { boost::asio::post(io, [&] { run_catchup(); }); });
  if (o.catch_up) {
    engine.set_member_hook(
        [&](const Member& m, bool joined, TimePoint now) { catchup.on_member(m, joined, now); });
    autopush->set_on_failed(
        [&](const std::vector<Target>& ts) { catchup.failed(ts, Clock::now()); });
  } else
    spdlog::info("catch-up off (--no-catch-up): only msync decides what is sent");
  run_catchup();

  // --metrics-file: the same counters as "status json", for node_exporter's textfile collector.
  boost::asio::steady_timer metrics_timer(io);
  std::function<void()> write_metrics = [&] {
    ctl::StatusReport r = ctl::collect_status(engine, *node, base, cc.started, Clock::now());
    if (cc.extra_report) cc.extra_report(r);
    std::string tmp = o.metrics_file + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << ctl::to_prometheus(r);
      if (!f) spdlog::warn("metrics file {}: cannot write", tmp);
    }
    if (rename(tmp.c_str(), o.metrics_file.c_str()) != 0)
      spdlog::warn("metrics file {}: {}", o.metrics_file, strerror(errno));
    metrics_timer.expires_after(std::chrono::seconds(5));
    metrics_timer.async_wait([&](const boost::system::error_code& e) {
      if (!e) write_metrics();
    });
  };
  if (!o.metrics_file.empty()) write_metrics();

  std::unique_ptr<boost::asio::posix::stream_descriptor> watch_fd;
  boost::asio::steady_timer watch_timer(io);
  std::function<void()> wait_watch, tick_watch;
  if (o.watch) {
    watcher = std::make_unique<Watcher>(base, *watch_journal);
    if (int e = watcher->start()) die("--watch: inotify on " + base + ": " + strerror(e));
    watch_fd = std::make_unique<boost::asio::posix::stream_descriptor>(io, dup(watcher->fd()));
    wait_watch = [&] {
      watch_fd->async_wait(boost::asio::posix::descriptor::wait_read,
                           [&](const boost::system::error_code& e) {
                             if (e) return;
                             watcher->on_readable(Clock::now());
                             wait_watch();
                           });
    };
    tick_watch = [&] {
      watch_timer.expires_at(watcher->on_timer(Clock::now()));
      watch_timer.async_wait([&](const boost::system::error_code& e) {
        if (!e) tick_watch();
      });
    };
    wait_watch();
    tick_watch();
  }
  // Sockets bound, membership announced, journal and console up: systemd may go on.
  sd_notify_message("READY=1\nSTATUS=" + std::to_string(engine.members().size()) +
                    " members at start");
  io.run();
  return 0;
}
