// The change journal: what makuofs (and makuosan --watch) record and the daemon propagates.
//
// A journal is a directory of segments. Each writer appends to segments of its own and holds an
// exclusive flock on the one it writes for as long as it may write to it, so the reader knows
// that a segment whose lock it can take will never grow again. The reader keeps a cursor (how
// far each segment was propagated) in the same directory, advanced only after a push finished,
// and deletes segments that are both fully propagated and unlocked. A record is appended with
// one write(2) before the operation it describes returns, so it survives a crash of either
// process; fdatasync follows within the writer's flush interval, or at once on fsync().
//
// A full or failing disk loses no change silently. A record that cannot be written whole is cut
// off again, and the writer then owes the reader a Rescan of the whole base, which it writes
// as soon as it can (at the next append or sync). Segments are preallocated ahead of what they
// hold, and the last kReserve bytes of that are kept for those Rescans: the first failure is
// covered at once, durably, even while the disk stays full. The reader skips over anything that
// is not a whole record (a tail torn by a crash, a damaged block) to the next one that is.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace makuo::journal {

enum class Op : uint8_t {
  Write = 1,  // content changed (recorded when the writer closes or syncs)
  Create,
  Mkdir,
  Unlink,
  Rmdir,
  Symlink,
  Link,
  Rename,   // path -> to
  Setattr,  // mode, owner, times or size
  Xattr,
  Rescan,  // anything below path may have changed (watch overflow, a new watched directory)
};
constexpr uint8_t kMaxOp = uint8_t(Op::Rescan);
const char* to_string(Op op);

struct Record {
  Op op = Op::Write;
  int64_t time_ns = 0;
  std::string path;  // relative to the base directory, "" = the base itself
  std::string to;    // Rename only
  bool operator==(const Record&) const = default;
};

constexpr size_t kMaxPathLen = 4095;
constexpr size_t kMaxRecord = 4 + 1 + 1 + 2 + 2 + 8 + 2 * kMaxPathLen + 8;

// Appends one encoded record to out.
void encode(std::vector<uint8_t>& out, const Record& r);

enum class Decoded { Ok, Short, Corrupt };
// Decodes whole records from the front of in into out; consumed = bytes they took. Stops at the
// first record that is incomplete (Short: a writer may be mid-append) or fails its checksum.
Decoded decode(std::span<const uint8_t> in, std::vector<Record>& out, size_t& consumed);
// The offset of the first whole, valid record in in after its first byte, or in.size() if none.
size_t next_record(std::span<const uint8_t> in);

class Writer {
 public:
  static constexpr uint64_t kSegmentBytes = 16 << 20;

  // dir: the journal directory (created if missing); tag names this writer in segment names;
  // a segment is closed and another begun once it holds segment_bytes.
  Writer(std::string dir, std::string tag, uint64_t segment_bytes = kSegmentBytes);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Creates the first segment in dirfd (the journal directory: StateDir::journal_fd), or, when
  // none is given, in the directory named at construction, created if missing. 0 or errno.
  int open(int dirfd = -1);
  // Thread-safe. 0 or errno; on an error the record is not in the journal, and a Rescan of the
  // whole base is (from the reserve) or will be (owed()) instead.
  int append(const Record& r);
  // Writes an owed Rescan if it can, then fdatasyncs what was appended since the last sync.
  // Thread-safe. 0 or errno.
  int sync();
  uint64_t appended() const { return appended_; }
  // Records that could not be written since the last Rescan made it into the journal.
  bool owed() const { return owed_; }

  static constexpr uint64_t kPrealloc = 64 << 10;  // allocated at a time, ahead of the end
  static constexpr uint64_t kReserve = 4 << 10;    // of that, kept for Rescans

 private:
  int new_segment();
  // Appends one record, within the preallocated space (the reserve too when reserve is set).
  // A record written in part is cut off again. 0 or errno.
  int put(const Record& r, bool reserve);
  // Makes room for len more bytes before the reserve. 0 or errno.
  int allocate(uint64_t len);
  int pay_rescan(bool reserve);

  std::string dir_, tag_;
  int dirfd_ = -1;
  uint64_t segment_bytes_;
  std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t alloc_end_ = 0;  // the segment's blocks are allocated up to here
  bool prealloc_ = true;    // false where fallocate is not supported
  bool torn_ = false;       // a partial record could not be cut off: begin another segment
  std::atomic<bool> owed_ = false;
  bool dirty_ = false;
  uint64_t appended_ = 0;
  uint32_t seq_ = 0;
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  explicit Reader(std::string dir);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Loads the cursor of the journal in dirfd (StateDir::journal_fd), or, when none is given,
  // of the directory named at construction, created if missing. 0 or errno.
  int open(int dirfd = -1);

  // Where each segment's reading stands: committed once the records before it were pushed.
  using Position = std::map<std::string, uint64_t>;

  // Appends to out the records written since the last read (at most max_bytes' worth) and
  // returns the position after them. warnings gets a line per corrupt tail skipped.
  Position read(std::vector<Record>& out, std::vector<std::string>& warnings,
                size_t max_bytes = 4 << 20);
  // Everything up to pos was propagated: persist it, delete finished segments. 0 or errno.
  int commit(const Position& pos);
  // Forget what was read but not committed: the next read starts at the cursor again.
  void rewind();
  // Bytes appended but not yet committed (the backlog).
  uint64_t backlog() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    int fd = -1;
    uint64_t size = 0;  // last seen
    uint64_t read = 0;  // next byte to read
    uint64_t done = 0;  // committed
  };
  void refresh();
  int save_cursor();

  std::string dir_;
  int dirfd_ = -1;  // everything below goes through it: it keeps working after a chroot
  std::map<std::string, Segment> segs_;
};

}  // namespace makuo::journal
