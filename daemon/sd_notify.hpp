// The systemd notification protocol (sd_notify(3)) without libsystemd: a datagram to
// $NOTIFY_SOCKET. A no-op when the variable is not set (not started by systemd, or Type=simple).
#pragma once
#include <string>

namespace makuo {

// Returns true when the message was delivered.
bool sd_notify_message(const std::string& msg);

}  // namespace makuo
