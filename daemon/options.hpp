// makuosan's command line and MAKUOSAN_* environment (reference §1.1), plus our additions.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace makuo {

struct DaemonOptions {
  int loglevel = 0;                    // -d
  std::string user, group;             // -u -g
  std::vector<std::string> groups;     // -G
  std::string base;                    // -b (default: cwd)
  uint16_t port = 5000;                // -p: UDP and console TCP
  std::string mcast = "239.255.10.8";  // -m (1.3.6: 224.0.0.108, link-local control block)
  std::string iface = "0.0.0.0";       // -i
  std::string listen = "127.0.0.1";    // -l
  std::string unix_path;               // -U
  std::vector<std::string> keyfiles;   // -k (twice: key rotation)
  bool insecure = false;               // --insecure: run without a key
  std::string passfile;                // -K
  int parallel = 5;                    // -f (accepted; the engine pipelines every file)
  int rcvbuf = 0, sndbuf = 0;          // -R -S
  double rate_mbps = 0;                // -T
  bool foreground = false;             // -n
  bool noreceive = false;              // -r
  bool nosend = false;                 // -s
  bool noconsole = false;              // -o
  bool owner_match = false;            // -O
  bool chroot = false;                 // -c
  bool core = false;                   // -C
  std::string name;                    // --name (default: hostname)
  std::string state_dir;               // --state-dir ("" = derived from the base directory)
  std::vector<std::string> excludes;   // --exclude: never propagated from the journal
  int quiet_ms = 50;                   // --quiet
  bool watch = false;                  // --watch
  std::string metrics_file;            // --metrics-file
  int tombstone_days = 7;              // --tombstone-days
  bool keep_conflicts = false;         // --keep-conflicts
  bool catch_up = true;                // --no-catch-up turns it off
  int retry_secs = 30;                 // --retry
  double max_skew_s = 2;               // --max-skew
  size_t recv_memory_mib = 256;        // --recv-memory
  int mtu = 1500;                      // --mtu
  bool loop = false;                   // --loop
  int target_timeout = 10;             // --timeout seconds
};

enum class ParseResult { Run, ExitOk, ExitError };

// Parses argv over the environment; prints usage/version/errors itself.
ParseResult parse_daemon_options(int argc, char** argv, DaemonOptions& o);
void print_daemon_usage(FILE* out);

}  // namespace makuo
