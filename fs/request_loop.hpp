// The loop that reads requests from /dev/fuse and serves them, in place of libfuse's
// fuse_session_loop_mt. libfuse keeps every idle thread blocked in read(2), so each request
// wakes a sleeping thread, and on a virtual machine that wake-up and the switch back cost
// more than most requests (stat(2) with timeout=0: 71-84 us through the mount with libfuse's
// loop, 54-61 us with this one). Here one thread at a time, the leader, reads: after a request
// that came soon after the one before, it keeps polling the device (non-blocking reads) for
// spin_us before it sleeps in poll(2), so the next request of a busy caller is picked up
// without a wake-up. The others wait as followers and take over when they can serve in
// parallel:
//  - eight requests in a row were already queued when the leader came back from the last
//    (more callers than one thread keeps up with): the leader hands the reading to a follower
//    and serves;
//  - the leader has served one request for longer than stall_ms (a slow disk, a frozen file
//    system): a watchdog lets a follower read meanwhile.
// With one CPU there is nothing to gain from polling (the caller could not run meanwhile):
// then, and with spin_us 0, libfuse's loop serves.
#pragma once

struct fuse_session;

namespace makuo::fs {

struct LoopConfig {
  unsigned max_threads = 16;
  unsigned spin_us = 50;
  unsigned stall_ms = 2;
};

// Serves until the file system is unmounted or a signal ends the session (0), or returns 1 if
// it could not serve. Call it with the session's signal handlers installed: every thread it
// starts blocks signals, so that they reach the calling thread.
int serve_requests(fuse_session* se, const LoopConfig& cfg);

}  // namespace makuo::fs
