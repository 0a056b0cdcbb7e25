// Negotiates what libfuse 3.14 cannot ask the kernel for itself: FUSE_HANDLE_KILLPRIV_V2. With
// it the kernel marks the superblock SB_NOSEC and stops asking for "security.capability" before
// every write (one round trip per write(2) otherwise), and leaves clearing set-ID bits to us.
// Done by wrapping the session's device I/O and adding the flag to the INIT reply when the
// kernel offered it.
#pragma once

struct fuse_session;

namespace makuo::fs {

// After fuse_session_mount(). Returns 0 or -errno.
int negotiate_killpriv_v2(fuse_session* se);
// Whether the kernel accepted it (known once INIT was answered).
bool killpriv_v2_active();

}  // namespace makuo::fs
