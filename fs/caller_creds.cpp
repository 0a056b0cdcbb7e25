#include "fs/caller_creds.hpp"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace makuo::fs {
namespace {

constexpr uid_t kProbeId = 65534;

// Whether this thread still has what creating in any directory as another user takes.
bool has_file_caps() {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3]{};
  if (syscall(SYS_capget, &h, d) != 0) return false;
  uint32_t need = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_FOWNER) | (1u << CAP_FSETID) |
                  (1u << CAP_SETUID) | (1u << CAP_SETGID);
  return (d[0].effective & need) == need;
}

}  // namespace

bool enable_create_as_caller() {
  if (geteuid() != 0) return false;
  int bits = prctl(PR_GET_SECUREBITS);
  if (bits < 0) return false;
  if (!(bits & SECBIT_NO_SETUID_FIXUP) &&
      prctl(PR_SET_SECUREBITS, unsigned(bits) | SECBIT_NO_SETUID_FIXUP) != 0)
    return false;
  setfsgid(kProbeId);
  setfsuid(kProbeId);
  // An invalid id changes nothing and answers the current one.
  bool ok = setfsuid(uid_t(-1)) == int(kProbeId) && setfsgid(gid_t(-1)) == int(kProbeId) &&
            has_file_caps();
  setfsuid(0);
  setfsgid(0);
  ok = ok && setfsuid(uid_t(-1)) == 0 && setfsgid(gid_t(-1)) == 0;
  if (!ok) prctl(PR_SET_SECUREBITS, unsigned(bits));
  return ok;
}

AsCaller::AsCaller(uid_t uid, gid_t gid) {
  if (uid == 0 && gid == 0) return;
  setfsgid(gid);
  setfsuid(uid);
  switched_ = true;
}

AsCaller::~AsCaller() {
  if (!switched_) return;
  setfsuid(0);
  setfsgid(0);
}

}  // namespace makuo::fs
