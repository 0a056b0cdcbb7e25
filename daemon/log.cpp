#include "daemon/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>

#include <cstdio>

namespace makuo {
namespace {

bool on_stderr = true;

spdlog::level::level_enum level_for(int d) {
  if (d >= 9) return spdlog::level::trace;
  if (d >= 1) return spdlog::level::debug;
  return spdlog::level::info;
}

}  // namespace

void log_to_stderr(int level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("makuosan", sink));
  set_log_level(level);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
}

void log_to_syslog() {
  auto sys =
      std::make_shared<spdlog::sinks::syslog_sink_mt>("makuosan", LOG_PID, LOG_DAEMON, false);
  spdlog::default_logger()->sinks() = {sys};
  on_stderr = false;
}

void set_log_level(int level) {
  spdlog::set_level(level_for(level));
}

void log_fatal(const std::string& msg) {
  if (on_stderr)
    std::fprintf(stderr, "makuosan: %s\n", msg.c_str());
  else
    spdlog::critical("{}", msg);
}

}  // namespace makuo
