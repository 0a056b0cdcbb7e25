// The daemon's log: the terminal (or systemd's journal) until it forks, syslog after.
// -d 0: events and problems; 1-8: also a line per file pushed (debug); 9: every packet (trace).
#pragma once
#include <string>

namespace makuo {

void log_to_stderr(int level);
void log_to_syslog();
void set_log_level(int level);
// A fatal start-up error: one line where the log goes now.
void log_fatal(const std::string& msg);

}  // namespace makuo
