// makuosan: the daemon (daemon/daemon.hpp). Start-up order follows makuosan 1.3.6 (sockets,
// console, chroot, privileges, daemonize), with a real privilege drop.
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"
#include "daemon/options.hpp"
#include "daemon/process.hpp"

int main(int argc, char** argv) {
  using namespace makuo;
  DaemonOptions o;
  switch (parse_daemon_options(argc, argv, o)) {
    case ParseResult::ExitOk:
      return 0;
    case ParseResult::ExitError:
      return 1;
    case ParseResult::Run:
      break;
  }
  log_to_stderr(o.loglevel);
  try {
    Daemon d(std::move(o));
    return d.run();
  } catch (const StartupError& e) {
    log_fatal(e.what());
    return 1;
  }
}
