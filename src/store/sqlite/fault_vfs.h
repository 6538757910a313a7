// A SQLite VFS shim for fault tests (leveldb's db/fault_injection_test.cc).
//
// It wraps another VFS (the default, "unix" on Linux) and forwards every call,
// but it can
//   - count the xSync calls made on files opened through it,
//   - fail the next xSync, or every xSync, with SQLITE_IOERR_FSYNC (the data
//     is then not synced: it stays "unsynced" for a simulated crash),
//   - simulate a crash: every write made to an open file since its last
//     successful sync is undone (old bytes written back, the file cut to its
//     synced size), and from then on writes, syncs and deletes do nothing
//     (the process is "dead"), so closing the connections cannot repair it.
//     Reset() ends the dead state before the database is reopened.
//
// Open a database through it with sqlite3_open_v2(..., name()) or
// SqliteOptions::vfs = name().
//
// Limits of the crash model: only files open at the time of the crash are
// rolled back (SQLite keeps the database and its WAL open for the life of a
// connection); directory entries are not rolled back; the -shm file is left
// alone (SQLite rebuilds it from the WAL when the first connection opens).
//
// Threading: every method may be called from any thread; SQLite calls the
// shim from the threads that use the connections. SimulateCrash() should be
// called while no statement is running.
//
// Ownership: the object must outlive every connection opened through it;
// the destructor unregisters the VFS.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/mutex.h"
#include "dray/status.h"

namespace dray {

class FaultVfs {
 public:
  // Registers a VFS called `name` (not as the default) wrapping the VFS
  // called `base` (nullptr = the default VFS). Fails if `name` is taken or
  // `base` does not exist.
  static StatusOr<std::unique_ptr<FaultVfs>> Register(const std::string& name,
                                                      const char* base = nullptr);
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const { return name_; }

  // Successful and failed xSync calls so far.
  std::uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }
  std::uint64_t failed_syncs() const { return failed_syncs_.load(std::memory_order_relaxed); }

  void FailNextSync() { fail_next_.store(true, std::memory_order_relaxed); }
  void FailAllSyncs(bool fail) { fail_all_.store(fail, std::memory_order_relaxed); }
  // From the n-th xSync on (counting from 1 since Register), every sync fails.
  void FailSyncsFrom(std::uint64_t n) { fail_from_.store(n, std::memory_order_relaxed); }
  // At the n-th xSync: that sync is not done, every unsynced write is undone
  // (SimulateCrash), and `then` runs, on the syncing thread. A server under
  // test passes _exit: power lost at that instant. Set before use.
  void CrashAtSync(std::uint64_t n, std::function<void()> then) {
    crash_then_ = std::move(then);
    crash_at_.store(n, std::memory_order_release);
  }

  // Undoes every unsynced write to the open files and plays dead (above).
  void SimulateCrash();
  // Leaves the dead state, stops failing syncs and forgets CrashAtSync.
  void Reset();

  // Internal (defined in the .cc, used by its callbacks): one open handle,
  // and the crash state of one file shared by all its handles.
  struct File;
  struct FileState;

 private:
  FaultVfs() = default;

  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags);
  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir);
  static FaultVfs* Self(sqlite3_vfs* vfs) { return static_cast<FaultVfs*>(vfs->pAppData); }

  friend struct FileMethods;

  bool dead() const { return dead_.load(std::memory_order_acquire); }
  // True when this sync should fail; counts it either way. Crashes here
  // when this is the sync CrashAtSync named.
  bool TakeSyncFault();
  void Track(File* f) DRAY_EXCLUDES(mu_);
  void Untrack(File* f) DRAY_EXCLUDES(mu_);

  std::string name_;
  sqlite3_vfs vfs_{};
  sqlite3_vfs* base_ = nullptr;
  // Counters and switches are independent flags read by SQLite's threads;
  // no other memory is published through them, so relaxed order is enough.
  std::atomic<std::uint64_t> syncs_{0};
  std::atomic<std::uint64_t> failed_syncs_{0};
  std::atomic<bool> fail_next_{false};
  std::atomic<bool> fail_all_{false};
  std::atomic<std::uint64_t> fail_from_{0};  // 0: off
  std::atomic<std::uint64_t> crash_at_{0};   // 0: off
  std::atomic<std::uint64_t> sync_calls_{0};
  std::function<void()> crash_then_;  // written before crash_at_ is set
  // Acquire/release: a thread that sees dead_ must also see the rolled-back
  // state SimulateCrash() wrote before setting it.
  std::atomic<bool> dead_{false};
  // Guards the files' crash state; held across each write so that a crash
  // cannot fall between a write and its undo record.
  Mutex mu_;
  std::map<std::string, std::unique_ptr<FileState>> states_ DRAY_GUARDED_BY(mu_);  // by path, open files only
};

}  // namespace dray
