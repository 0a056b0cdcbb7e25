// makuosan, the daemon: one object that owns every part that runs in it (the engine and its UDP
// node, the console, automatic propagation of recorded changes, catch-up, the --watch recorder,
// the tree index) and wires them together. Construction does what needs root and then drops to
// the daemon's user (sockets, console, state directory, chroot, privileges, the index brought
// in line with the disk); run() forks, starts the event sources and serves until SIGINT or
// SIGTERM. Start-up misconfiguration throws StartupError.
#pragma once
#include <boost/asio.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctl/console_server.hpp"
#include "daemon/daemon_status.hpp"
#include "daemon/last_contact.hpp"
#include "daemon/options.hpp"
#include "daemon/periodic.hpp"
#include "daemon/process.hpp"
#include "state/journal.hpp"
#include "state/state_dir.hpp"
#include "sync/auto_push.hpp"
#include "sync/catch_up.hpp"
#include "sync/crypto.hpp"
#include "sync/engine.hpp"
#include "sync/hybrid_clock.hpp"
#include "sync/mount_notify.hpp"
#include "sync/paths.hpp"
#include "sync/tree_index.hpp"
#include "sync/udp_node.hpp"
#include "sync/watcher.hpp"

namespace makuo {

class Daemon {
 public:
  explicit Daemon(DaemonOptions o);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Forks unless -n, serves until a stop signal. The exit status.
  int run();

 private:
  // As root.
  void open_base();
  void open_state();
  void open_network();
  void open_console();
  // As the daemon's user.
  void load_index();
  // The event sources.
  void start_services();
  void stop(int sig);
  void wait_level_signal();
  DaemonParts parts() const;
  TimePoint autopush_round();
  TimePoint catchup_round();
  TimePoint write_metrics();
  ctl::ConsoleConfig console_config(std::optional<std::string> password);
  EngineConfig engine_config();
  std::string console_where() const;

  DaemonOptions o_;
  std::vector<ClusterKey> keys_;
  std::string base_;
  Fd basefd_;
  Ids ids_;
  state::StateDir state_;
  int journal_inotify_ = -1;  // until OnReadable owns it
  std::unique_ptr<journal::Writer> watch_journal_;
  std::unique_ptr<journal::Reader> reader_;
  std::unique_ptr<LastContact> contact_;
  int64_t keep_tombs_ns_ = 0;
  Excludes excludes_;
  std::unique_ptr<TreeIndex> index_;
  HybridClock hlc_;
  std::unique_ptr<MountNotifier> notifier_;
  size_t stale_temps_ = 0;

  boost::asio::io_context io_;
  std::unique_ptr<UdpNode> node_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Sealer> sealer_;
  ctl::ConsoleConfig console_cfg_;
  std::unique_ptr<ctl::ConsoleServer> console_;
  std::unique_ptr<AutoPush> autopush_;
  std::unique_ptr<CatchUp> catchup_;
  std::unique_ptr<Watcher> watcher_;

  std::unique_ptr<Periodic> autopush_timer_, catchup_timer_, metrics_timer_, watch_timer_;
  std::unique_ptr<OnReadable> journal_ready_, watch_ready_;
  std::unique_ptr<boost::asio::signal_set> stop_signals_, level_signals_;
  int level_ = 0;
};

}  // namespace makuo
