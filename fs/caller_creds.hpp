// Creating as the caller. makuofs runs as root and hands what it creates to the user who asked.
// A chown by name after mkdirat, mknodat or symlinkat (which return no descriptor) would give
// away whatever stands at that name by then: an object the daemon or a user with write access
// to the directory put there in the meantime. Instead the serving thread's filesystem uid and
// gid are the caller's for the creation itself, so the kernel makes the object the caller's
// (and applies a set-group-ID directory's group), while the thread keeps root's capabilities:
// the kernel's permission check (default_permissions) already decided, with the caller's
// supplementary groups, which we cannot take on.
#pragma once
#include <sys/types.h>

namespace makuo::fs {

// Once, in the thread that starts the request threads, before it does (the setting is
// per-thread and inherited): keeps capabilities across filesystem uid changes
// (SECBIT_NO_SETUID_FIXUP) and checks that a switch works. False when it does not (not root,
// no CAP_SETPCAP): creations are then handed over by name, as before.
bool enable_create_as_caller();

// For the scope: this thread's filesystem uid and gid are uid and gid (no-op for root's).
class AsCaller {
 public:
  AsCaller(uid_t uid, gid_t gid);
  ~AsCaller();
  AsCaller(const AsCaller&) = delete;
  AsCaller& operator=(const AsCaller&) = delete;

 private:
  bool switched_ = false;
};

}  // namespace makuo::fs
