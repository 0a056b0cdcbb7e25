#include "fs/uring_queues.hpp"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

#include "fs/kernel_channel.hpp"

namespace makuo::fs {
namespace {

// The kernel's uapi (7.42), newer than Debian 12's <linux/fuse.h>.
constexpr uint32_t kCmdRegister = 1, kCmdCommitAndFetch = 2;
struct UringEntInOut {  // struct fuse_uring_ent_in_out
  uint64_t flags;
  uint64_t commit_id;
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct UringReqHeader {  // struct fuse_uring_req_header
  char in_out[128];      // fuse_in_header in, fuse_out_header out
  char op_in[128];       // the opcode's fixed argument
  UringEntInOut ent;
};
struct UringCmdReq {  // struct fuse_uring_cmd_req, in the SQE's command area
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
static_assert(sizeof(UringReqHeader) == 288 && sizeof(UringCmdReq) == 24);
constexpr uint64_t kStopTag = ~uint64_t(0), kEntryTag = 0;
constexpr unsigned kRingSize = 4;  // the entry's command and the stop read, with room to spare

bool cpu_online(unsigned cpu) {
  if (cpu == 0) return true;
  std::ifstream f("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/online");
  int v = 0;
  return f >> v && v == 1;
}

}  // namespace

unsigned possible_cpus() {
  std::ifstream f("/sys/devices/system/cpu/possible");
  std::string s;
  if (!(f >> s)) return unsigned(std::max(1L, sysconf(_SC_NPROCESSORS_CONF)));
  unsigned top = 0;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    size_t dash = part.find('-');
    top = std::max(top,
                   unsigned(std::stoul(dash == std::string::npos ? part : part.substr(dash + 1))));
  }
  return top + 1;
}

// One thread serving queue qid from an io_uring of its own, with one entry registered: a second
// would wait behind whatever request the thread is serving.
struct UringQueues::Server final : ReplySink {
  struct Entry {
    UringReqHeader hdr{};
    // Left uninitialised: only the pages a request or reply touches become resident.
    std::unique_ptr<char[]> payload;
    size_t payload_size = 0;
    iovec iov[2]{};
    bool replied = false;
  };

  unsigned qid = 0;
  fuse_session* se = nullptr;
  int devfd = -1;
  io_uring ring{};
  bool ring_up = false;
  Entry entry;
  std::vector<char> req;  // a request reassembled as /dev/fuse would have delivered it
  Entry* cur = nullptr;
  int stopfd = -1;
  uint64_t stopbuf = 0;
  std::thread th;
  std::atomic<uint64_t> served{0};

  ~Server() {
    if (stopfd >= 0) close(stopfd);
  }

  // libfuse's reply to the request in cur: the out header goes into the entry's header, the
  // rest into its payload buffer.
  ssize_t reply(const iovec* iov, int count) override {
    if (!cur || count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return -EINVAL;
    size_t total = 0, used = 0;
    std::memcpy(cur->hdr.in_out, iov[0].iov_base, sizeof(fuse_out_header));
    for (int k = 0; k < count; ++k) {
      total += iov[k].iov_len;
      const char* p = static_cast<const char*>(iov[k].iov_base);
      size_t n = iov[k].iov_len;
      if (k == 0) {
        p += sizeof(fuse_out_header);
        n -= sizeof(fuse_out_header);
      }
      if (used + n > cur->payload_size) return -EOVERFLOW;
      std::memcpy(cur->payload.get() + used, p, n);
      used += n;
    }
    cur->hdr.ent.payload_sz = uint32_t(used);
    cur->replied = true;
    return ssize_t(total);
  }

  // The submission queue has room for the entry's command and the stop read; a full one is
  // flushed.
  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
      io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
  }

  void prep_cmd(uint32_t op, uint64_t commit_id) {
    io_uring_sqe* sqe = next_sqe();
    if (!sqe) return;
    std::memset(static_cast<void*>(sqe), 0, 128);  // SQE128
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = devfd;
    sqe->cmd_op = op;
    if (op == kCmdRegister) {
      sqe->addr = reinterpret_cast<uint64_t>(entry.iov);
      sqe->len = 2;
    }
    auto* c = reinterpret_cast<UringCmdReq*>(sqe->cmd);
    c->commit_id = commit_id;
    c->qid = uint16_t(qid);
    io_uring_sqe_set_data64(sqe, kEntryTag);
  }

  void prep_stop_read() {
    io_uring_sqe* sqe = next_sqe();
    if (!sqe) return;
    io_uring_prep_read(sqe, stopfd, &stopbuf, sizeof stopbuf, 0);
    io_uring_sqe_set_data64(sqe, kStopTag);
  }

  // Hands the entry's request to libfuse and queues its commit with the next fetch.
  void serve() {
    Entry& e = entry;
    fuse_in_header h;
    std::memcpy(&h, e.hdr.in_out, sizeof h);
    uint64_t commit_id = e.hdr.ent.commit_id;
    uint32_t psz = e.hdr.ent.payload_sz;
    e.replied = false;
    if (h.len >= sizeof h + psz && h.len - sizeof h - psz <= sizeof e.hdr.op_in &&
        psz <= e.payload_size) {
      size_t oplen = h.len - sizeof h - psz;
      req.resize(h.len);
      std::memcpy(req.data(), &h, sizeof h);
      std::memcpy(req.data() + sizeof h, e.hdr.op_in, oplen);
      std::memcpy(req.data() + sizeof h + oplen, e.payload.get(), psz);
      fuse_buf fb{};
      fb.size = h.len;
      fb.mem = req.data();
      cur = &e;
      set_thread_reply_sink(this);
      fuse_session_process_buf(se, &fb);
      set_thread_reply_sink(nullptr);
      cur = nullptr;
    }
    if (!e.replied) {
      // Malformed, or a request nobody answered: an error, so that the entry is not lost.
      fuse_out_header oh{sizeof(fuse_out_header), -EIO, h.unique};
      std::memcpy(e.hdr.in_out, &oh, sizeof oh);
      e.hdr.ent.payload_sz = 0;
    }
    ++served;
    prep_cmd(kCmdCommitAndFetch, commit_id);
  }

  // The thread: registers its entry, then serves until stopped or unmounted.
  void run(uint32_t payload, std::promise<std::string>& ready) {
    if (cpu_online(qid)) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(qid, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    io_uring_params p{};
    p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN;
    int err = io_uring_queue_init_params(kRingSize, &ring, &p);
    if (err == -EINVAL) {  // kernels without DEFER_TASKRUN
      p = io_uring_params{};
      p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
      err = io_uring_queue_init_params(kRingSize, &ring, &p);
    }
    if (err < 0) {
      ready.set_value(std::string("io_uring_queue_init: ") + std::strerror(-err));
      return;
    }
    ring_up = true;
    entry.payload.reset(new char[payload]);
    entry.payload_size = payload;
    entry.iov[0] = {&entry.hdr, sizeof entry.hdr};
    entry.iov[1] = {entry.payload.get(), payload};
    prep_cmd(kCmdRegister, 0);
    prep_stop_read();
    io_uring_submit(&ring);
    // A refused registration completes at once; an accepted one waits for a request.
    __kernel_timespec ts{0, 50'000'000};
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0 && cqe && cqe->res < 0 &&
        cqe->user_data != kStopTag) {
      ready.set_value("queue " + std::to_string(qid) +
                      ": registration refused: " + std::strerror(-cqe->res));
      return;
    }
    ready.set_value({});
    bool stop = false, live = true;
    while (!stop && live) {
      // liburing returns -errno. A signal (a debugger attaching, too) is no reason to stop.
      if (int r = io_uring_submit_and_wait(&ring, 1); r < 0 && r != -EINTR) {
        // Requests made on this CPU would wait forever: stop the mount as a signal would, so
        // that they fail instead.
        spdlog::error("io_uring queue {}: {}: unmounting", qid, std::strerror(-r));
        kill(getpid(), SIGTERM);
        break;
      }
      unsigned head, n = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++n;
        uint64_t tag = cqe->user_data;
        if (tag == kStopTag) {
          stop = true;
        } else if (cqe->res < 0) {
          live = false;  // unmounted (ENOTCONN), cancelled: the entry is done
        } else if (tag == kEntryTag) {
          serve();
        }
      }
      io_uring_cq_advance(&ring, n);
    }
  }
};

UringQueues::UringQueues(fuse_session* se, int devfd) : se_(se), devfd_(devfd) {}

UringQueues::~UringQueues() {
  stop();
}

int UringQueues::start(unsigned per_cpu, uint32_t payload) {
  unsigned n = possible_cpus() * per_cpu;
  std::vector<std::promise<std::string>> ready(n);
  for (unsigned k = 0; k < n; ++k) {
    auto server = std::make_unique<Server>();
    server->qid = k / per_cpu;
    server->se = se_;
    server->devfd = devfd_;
    server->stopfd = eventfd(0, EFD_CLOEXEC);
    if (server->stopfd < 0) {
      error_ = std::string("eventfd: ") + std::strerror(errno);
      stop();
      return -EMFILE;
    }
    Server* raw = server.get();
    std::promise<std::string>* r = &ready[k];
    server->th = std::thread([raw, payload, r] { raw->run(payload, *r); });
    servers_.push_back(std::move(server));
  }
  for (auto& r : ready) {
    std::string e = r.get_future().get();
    if (!e.empty() && error_.empty()) error_ = e;
  }
  if (!error_.empty()) {
    stop();
    return -EIO;
  }
  return 0;
}

void UringQueues::stop() {
  for (auto& s : servers_) {
    uint64_t one = 1;
    if (s->stopfd >= 0) (void)!write(s->stopfd, &one, sizeof one);
  }
  for (auto& s : servers_) {
    if (s->th.joinable()) s->th.join();
    if (s->ring_up) io_uring_queue_exit(&s->ring);
    s->ring_up = false;
  }
  servers_.clear();
}

uint64_t UringQueues::requests() const {
  uint64_t n = 0;
  for (auto& s : servers_) n += s->served;
  return n;
}

}  // namespace makuo::fs
