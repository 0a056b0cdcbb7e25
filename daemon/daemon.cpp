#include "daemon/daemon.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>

#include "ctl/status_report.hpp"
#include "daemon/daemon_status.hpp"
#include "daemon/log.hpp"
#include "daemon/sd_notify.hpp"
#include "sync/rescan.hpp"
#include "sync/version.hpp"

namespace makuo {
namespace {

std::string sys_error(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

uint32_t parse_ipv4(const std::string& s, const char* what) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1)
    throw StartupError(std::string("invalid ") + what + ": " + s);
  return ntohl(a.s_addr);
}

}  // namespace

Daemon::Daemon(DaemonOptions o) : o_(std::move(o)), hlc_(realtime_ns), level_(o_.loglevel) {
  if (o_.keyfiles.empty() && !o_.insecure)
    throw StartupError(
        "no cluster key (-k): without one any host that reaches port " + std::to_string(o_.port) +
        " can write and delete files here. Make one with 'makuosan --gen-key /etc/makuo.key', "
        "copy it to every server and give -k /etc/makuo.key (or --insecure to run without)");
  for (auto& f : o_.keyfiles) {
    try {
      keys_.push_back(load_key_file(f));
    } catch (const std::exception& e) {
      throw StartupError(e.what());
    }
  }
  open_base();
  std::optional<std::string> password;
  if (!o_.passfile.empty()) password = read_password(o_.passfile);
  ids_ = resolve_ids(o_);
  open_state();
  for (auto& x : o_.excludes) excludes_.add(x);
  keep_tombs_ns_ = int64_t(o_.tombstone_days) * 86400 * 1000000000LL;
  if (!o_.chroot) notifier_ = std::make_unique<MountNotifier>(state_.path() + "/" + state::kNotify);
  raise_limits(o_.core);
  open_network();
  console_cfg_ = console_config(std::move(password));
  open_console();
  if (o_.chroot) {
    setenv("TZ", "UTC", 0);
    if (chroot(base_.c_str()) != 0 || chdir("/") != 0) throw StartupError(sys_error("chroot"));
  } else if (chdir(base_.c_str()) != 0) {
    throw StartupError(sys_error("chdir"));
  }
  drop_privileges(ids_);
  // As the daemon's user from here: what it alone writes in the state directory.
  stale_temps_ = remove_stale_temps(basefd_.get());
  reader_ = std::make_unique<journal::Reader>(state_.journal_path());
  if (int e = reader_->open(state_.journal_fd()))
    throw StartupError("change journal " + state_.journal_path() + ": " + std::strerror(e));
  contact_ = std::make_unique<LastContact>(state_.daemon_fd());
  if (int64_t last = contact_->load(); last && realtime_ns() - last > keep_tombs_ns_)
    spdlog::warn(
        "this server had no contact with the cluster for {} days, longer than "
        "--tombstone-days {}: deletions made meanwhile are not known here, and files "
        "deleted elsewhere may come back; run msync --delete -r from an up-to-date "
        "server to make sure",
        (realtime_ns() - last) / 86400000000000LL, o_.tombstone_days);
  load_index();
}

Daemon::~Daemon() {
  if (journal_inotify_ >= 0) close(journal_inotify_);
}

void Daemon::open_base() {
  if (o_.base.empty()) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) throw StartupError("getcwd failed");
    o_.base = cwd;
  }
  char real[PATH_MAX];
  if (!realpath(o_.base.c_str(), real)) throw StartupError(sys_error("base directory " + o_.base));
  base_ = real;
  basefd_ = Fd(open(base_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!basefd_) throw StartupError(sys_error("base directory " + base_));
}

// Root's, with subdirectories of the daemon's user (state/state_dir.hpp). What only that user
// writes (the index, last-contact, the journal's cursor) is opened after the privilege drop.
void Daemon::open_state() {
  std::string what;
  if (int e = state_.open(o_.state_dir.empty() ? state::default_path(base_) : o_.state_dir,
                          ids_.uid ? *ids_.uid : uid_t(-1), ids_.gid ? *ids_.gid : gid_t(-1), what))
    throw StartupError("state directory: " + what + ": " +
                       (e == ELOOP ? "a symlink or a file is in the way" : std::strerror(e)));
  if (o_.watch && o_.chroot) throw StartupError("--watch cannot be combined with -c (chroot)");
  // Watched from here, before chroot and privilege drop can take the path away from us.
  journal_inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (journal_inotify_ < 0 ||
      inotify_add_watch(
          journal_inotify_, state_.journal_path().c_str(),
          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
    throw StartupError(sys_error("inotify on the change journal"));
  if (o_.watch) {
    watch_journal_ = std::make_unique<journal::Writer>(state_.journal_path(), "watch");
    if (int e = watch_journal_->open(state_.journal_fd()))
      throw StartupError("change journal for --watch: " + std::string(std::strerror(e)));
  }
  index_ = std::make_unique<TreeIndex>(state_.daemon_fd(), state::kIndex);
}

void Daemon::open_network() {
  NetConfig nc;
  nc.group = parse_ipv4(o_.mcast, "multicast group (-m)");
  if ((nc.group >> 28) != 0xe) throw StartupError("-m " + o_.mcast + " is not a multicast address");
  nc.port = o_.port;
  nc.iface = parse_ipv4(o_.iface, "interface address (-i)");
  nc.rcvbuf = o_.rcvbuf;
  nc.sndbuf = o_.sndbuf;
  nc.loop = o_.loop;
  try {
    node_ = std::make_unique<UdpNode>(io_, nc);
  } catch (const std::exception& e) {
    throw StartupError(std::string("udp socket: ") + e.what());
  }
  wire::NodeId id = std::random_device{}();
  id = id << 32 | std::random_device{}();
  // The engine starts talking only when attached to the node (run()).
  engine_ = std::make_unique<Engine>(engine_config(), *node_, id);
  if (!keys_.empty()) {
    sealer_ = std::make_unique<Sealer>(keys_, id);
    node_->set_sealer(sealer_.get());
  }
}

EngineConfig Daemon::engine_config() {
  EngineConfig ec;
  ec.name = o_.name;
  ec.version = kVersion;
  ec.recv.basefd = basefd_.get();
  ec.recv.base_path = base_;
  ec.recv.readonly = o_.noreceive;
  ec.recv.privileged = ids_.uid ? *ids_.uid == 0 : geteuid() == 0;  // uid after the drop
  ec.nosend = o_.nosend;
  ec.tuning.block_size = uint16_t(o_.mtu - 128);
  ec.tuning.target_timeout = std::chrono::seconds(o_.target_timeout);
  ec.rate_bytes = uint64_t(o_.rate_mbps * 1e6 / 8);
  ec.threads = true;
  ec.clock = &hlc_;
  ec.max_skew = std::chrono::milliseconds(int64_t(o_.max_skew_s * 1000));
  ec.recv_memory = o_.recv_memory_mib << 20;
  ec.recv.index = index_.get();
  ec.recv.clock = &hlc_;
  ec.recv.self = o_.name;
  ec.recv.keep_conflicts = o_.keep_conflicts;
  ec.recv.on_conflict_copy = [this](const std::string& path) {
    TimePoint now = Clock::now();
    if (notifier_) notifier_->changed(path, now);
    if (autopush_) autopush_->local_change(path, now);
  };
  ec.recv.on_newer_here = [this](const std::string& path) {
    if (autopush_) autopush_->local_change(path, Clock::now());
  };
  ec.recv.on_applied = [this](const std::string& path) {
    TimePoint now = Clock::now();
    if (notifier_) notifier_->changed(path, now);
    if (autopush_) autopush_->applied(path, now);
  };
  return ec;
}

ctl::ConsoleConfig Daemon::console_config(std::optional<std::string> password) {
  ctl::ConsoleConfig cc;
  cc.password = std::move(password);
  cc.listen_addr = o_.listen;
  cc.port = o_.port;
  cc.unix_path = o_.unix_path;
  cc.basefd = basefd_.get();
  cc.base_path = base_;
  cc.version = kVersion;
  cc.nosend = o_.nosend;
  if (o_.owner_match) cc.owner_only = ids_.uid ? *ids_.uid : geteuid();
  cc.group_names = o_.groups;
  if (!o_.group.empty()) cc.group_names.push_back(o_.group);
  // An msync push is a change made here: a new version of every path it sends, on top of ours
  // (the receivers merge it with theirs), and of every deletion it makes.
  cc.version_push = [this](SessionRequest& req) {
    uint64_t now = hlc_.tick();
    if (req.flags & wire::kDsync) {
      req.deletion = bump({}, o_.name, now);
      return;
    }
    for (auto& e : req.entries) index_->stamp_push(e, o_.name, now);
  };
  cc.started = Clock::now();
  cc.extra_report = [this](ctl::StatusReport& r) { add_daemon_metrics(r, parts()); };
  cc.extra_status = [this] {
    ctl::StatusReport r;
    add_daemon_metrics(r, parts());
    std::vector<std::string> v;
    if (autopush_) v = autopush_->status_lines();
    for (auto& l : daemon_status_lines(r, o_.max_skew_s, o_.keep_conflicts))
      v.push_back(std::move(l));
    return v;
  };
  return cc;
}

void Daemon::open_console() {
  if (o_.noconsole) return;
  console_ = std::make_unique<ctl::ConsoleServer>(io_, console_cfg_, *engine_, *node_);
  try {
    console_->listen();
  } catch (const std::exception& e) {
    throw StartupError(std::string("console: ") + e.what());
  }
  if (!o_.unix_path.empty() && (ids_.uid || ids_.gid))
    if (chown(o_.unix_path.c_str(), ids_.uid ? *ids_.uid : uid_t(-1),
              ids_.gid ? *ids_.gid : gid_t(-1)) != 0)
      spdlog::warn("chown {}: {}", o_.unix_path, std::strerror(errno));
}

// The tree index, brought in line with what changed on disk while we were not running, and
// the clock that versions changes made here: past every version the index holds.
void Daemon::load_index() {
  TreeIndex& index = *index_;
  std::vector<std::string> warnings;
  if (int e = index.load(warnings))
    throw StartupError("tree index in " + state_.path() + "/" + state::kDaemon + ": " +
                       std::strerror(e));
  for (auto& w : warnings) spdlog::warn("{}", w);
  if (index.upgraded())
    spdlog::info(
        "tree index of release 0.1 read: its paths start with no version (\"no change seen "
        "yet\"); every change from now on is versioned");
  if (int e = import_legacy_tombstones(state_.daemon_fd(), "tombstones", index, o_.name))
    spdlog::warn("tombstones of release 0.1 in {}: {}", state_.path(), std::strerror(e));
  auto t0 = Clock::now();
  RescanStats rs = rescan(basefd_.get(), base_, &excludes_, index, o_.name, index.stamp_ns());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  if (index.fresh())
    spdlog::info("tree index: {} entries indexed in {} ms (first run)", rs.entries, ms);
  else
    spdlog::info(
        "tree index: {} entries checked in {} ms; since we stopped {} added, {} changed, {} "
        "deleted here (tombstoned), {} gone without a sign of deletion",
        rs.entries, ms, rs.added, rs.changed, rs.deleted, rs.forgotten);
  index.expire(realtime_ns(), keep_tombs_ns_);
  if (int e = index.flush(realtime_ns(), true))
    throw StartupError("tree index: " + std::string(std::strerror(e)));
  hlc_.raise_to(index.max_clock());
  // Loading and checking a large index leaves much freed heap behind (the file read whole, the
  // rescan's bookkeeping): give it back.
  malloc_trim(0);
}

DaemonParts Daemon::parts() const {
  return {engine_.get(), index_.get(),   autopush_.get(),
          reader_.get(), catchup_.get(), watcher_.get()};
}

std::string Daemon::console_where() const {
  if (o_.noconsole) return "off";
  return o_.unix_path.empty() ? o_.listen + ":" + std::to_string(o_.port) : o_.unix_path;
}

int Daemon::run() {
  if (!o_.foreground)
    daemonize([this] { io_.notify_fork(boost::asio::io_context::fork_prepare); },
              [this] {
                io_.notify_fork(boost::asio::io_context::fork_child);
                log_to_syslog();
              });
  spdlog::info("makuosan {} started: node {} base {} group {}:{} console {}", kVersion, o_.name,
               base_, o_.mcast, o_.port, console_where());
  if (stale_temps_) spdlog::info("removed {} stale temporary files", stale_temps_);
  if (keys_.empty())
    spdlog::warn(
        "--insecure: no cluster key, any host that reaches this port can write files here");
  else
    spdlog::info("cluster key {:08x} seals; {} key(s) open", keys_.front().id, keys_.size());
  start_services();
  // Sockets bound, membership announced, journal and console up: systemd may go on.
  sd_notify_message("READY=1\nSTATUS=" + std::to_string(engine_->members().size()) +
                    " members at start");
  io_.run();
  return 0;
}

void Daemon::stop(int sig) {
  spdlog::info("signal {}: stopping", sig);
  sd_notify_message("STOPPING=1");
  engine_->stop(Clock::now());
  node_->flush();  // the goodbyes
  if (int e = index_->flush(realtime_ns(), true)) spdlog::warn("tree index: {}", std::strerror(e));
  if (console_) console_->close();
  io_.stop();
}

// SIGUSR1 raises the log level, SIGUSR2 lowers it (makuosan 1.3.6).
void Daemon::wait_level_signal() {
  level_signals_->async_wait([this](const boost::system::error_code& e, int sig) {
    if (e) return;
    level_ = std::clamp(level_ + (sig == SIGUSR1 ? 1 : -1), 0, 9);
    set_log_level(level_);
    spdlog::info("loglevel {}", level_);
    wait_level_signal();
  });
}

TimePoint Daemon::autopush_round() {
  TimePoint next = autopush_->run(Clock::now());
  if (autopush_->take_started()) node_->poke();
  return next;
}

TimePoint Daemon::catchup_round() {
  TimePoint now = Clock::now();
  TimePoint next = std::min(catchup_->run(now), now + 1s);
  if (catchup_->take_started()) node_->poke();
  int64_t rt = realtime_ns();
  index_->expire(rt, keep_tombs_ns_);
  if (int e = index_->flush(rt)) spdlog::warn("tree index: {}", std::strerror(e));
  if (engine_->members().size() > 0) contact_->save(rt);
  return next;
}

// --metrics-file: the same counters as "status json", for node_exporter's textfile collector.
TimePoint Daemon::write_metrics() {
  ctl::StatusReport r =
      ctl::collect_status(*engine_, *node_, base_, console_cfg_.started, Clock::now());
  add_daemon_metrics(r, parts());
  std::string tmp = o_.metrics_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << ctl::to_prometheus(r);
    if (!f) spdlog::warn("metrics file {}: cannot write", tmp);
  }
  if (rename(tmp.c_str(), o_.metrics_file.c_str()) != 0)
    spdlog::warn("metrics file {}: {}", o_.metrics_file, std::strerror(errno));
  return Clock::now() + 5s;
}

void Daemon::start_services() {
  stop_signals_ = std::make_unique<boost::asio::signal_set>(io_, SIGINT, SIGTERM);
  stop_signals_->async_wait([this](const boost::system::error_code& e, int sig) {
    if (!e) stop(sig);
  });
  level_signals_ = std::make_unique<boost::asio::signal_set>(io_, SIGUSR1, SIGUSR2);
  wait_level_signal();
  signal(SIGPIPE, SIG_IGN);
  node_->attach(*engine_);

  AutoPushConfig ac;
  ac.basefd = basefd_.get();
  ac.base_path = base_;
  ac.excludes = &excludes_;
  ac.quiet = std::chrono::milliseconds(o_.quiet_ms);
  ac.max_delay = std::chrono::milliseconds(o_.quiet_ms * 10);
  ac.hold_while_receiving = o_.watch;
  ac.index = index_.get();
  ac.clock = &hlc_;
  ac.self = o_.name;
  autopush_ = std::make_unique<AutoPush>(ac, *engine_, *reader_, Clock::now());
  spdlog::info("change journal {}: {} bytes to propagate", state_.journal_path(),
               reader_->backlog());
  autopush_timer_ = std::make_unique<Periodic>(io_, [this] { return autopush_round(); });
  autopush_->set_wake([this] { autopush_timer_->kick(); });
  // A record is picked up as soon as it is written.
  int ino = journal_inotify_;
  journal_inotify_ = -1;
  journal_ready_ = std::make_unique<OnReadable>(io_, ino, [this, ino] {
    char buf[4096];
    while (read(ino, buf, sizeof buf) > 0) {
    }
    autopush_timer_->start();
  });
  journal_ready_->start();
  autopush_timer_->start();

  // Catch-up of members that join, and of ourselves when we (re)join.
  CatchUpConfig cuc;
  cuc.basefd = basefd_.get();
  cuc.base_path = base_;
  cuc.excludes = &excludes_;
  cuc.index = index_.get();
  cuc.clock = &hlc_;
  cuc.self = o_.name;
  cuc.retry = std::chrono::seconds(o_.retry_secs);
  catchup_ = std::make_unique<CatchUp>(cuc, *engine_);
  catchup_timer_ = std::make_unique<Periodic>(io_, [this] { return catchup_round(); });
  catchup_->set_wake([this] { catchup_timer_->kick(); });
  if (o_.catch_up) {
    engine_->set_member_hook([this](const Member& m, bool joined, TimePoint now) {
      catchup_->on_member(m, joined, now);
    });
    autopush_->set_on_failed(
        [this](const std::vector<Target>& ts) { catchup_->failed(ts, Clock::now()); });
  } else {
    spdlog::info("catch-up off (--no-catch-up): only msync decides what is sent");
  }
  catchup_timer_->start();

  if (!o_.metrics_file.empty()) {
    metrics_timer_ = std::make_unique<Periodic>(io_, [this] { return write_metrics(); });
    metrics_timer_->start();
  }
  if (o_.watch) {
    watcher_ = std::make_unique<Watcher>(base_, *watch_journal_);
    if (int e = watcher_->start())
      throw StartupError("--watch: inotify on " + base_ + ": " + std::strerror(e));
    watch_ready_ = std::make_unique<OnReadable>(io_, dup(watcher_->fd()),
                                                [this] { watcher_->on_readable(Clock::now()); });
    watch_timer_ =
        std::make_unique<Periodic>(io_, [this] { return watcher_->on_timer(Clock::now()); });
    watch_ready_->start();
    watch_timer_->start();
  }
}

}  // namespace makuo
