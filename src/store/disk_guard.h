// Keeps a full disk from turning into a broken store.
//
// When SQLite cannot write (SQLITE_FULL) the batch fails and the store stops
// taking writes until a restart. To keep that from happening, a reserve file
// (`dray.reserve`, `reserve_bytes` long, allocated with posix_fallocate)
// holds back space beside the database. Before every commit the commit
// thread calls Check(): when the free space left outside the reserve falls
// below one reserve, the reserve file is deleted and the guard turns full().
// Submits are then refused (507 out_of_space) while everything that finishes
// work already accepted (leases, heartbeats, completes, fails, retries,
// cancels) goes on writing into the space the reserve gave back: what is
// running can always report. Once free space reaches three reserves again
// (someone freed space), Check() reallocates the reserve and full() ends.
//
// The reserve is aggregate, not per task: it bounds how much the drain of
// the work in hand may write (row updates and their WAL pages), which is
// small next to what submits add. Should a burst still use it up, SQLite's
// own error breaks the store as before (503, restart).
//
// Thread-safe: Check() from any thread (it serializes itself); full() and
// free_bytes() are lock-free reads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace dray {

class DiskGuard {
 public:
  // `dir` holds the database; the reserve file goes there. A reserve of 0
  // disables the guard (full() is always false).
  DiskGuard(std::string dir, std::uint64_t reserve_bytes);
  DiskGuard(const DiskGuard&) = delete;
  DiskGuard& operator=(const DiskGuard&) = delete;

  // One statvfs, and the state change above when a threshold is crossed.
  void Check();
  // Check() unless one ran less than `every` ago: for callers on hot paths.
  void CheckIfStale(std::chrono::milliseconds every);
  bool full() const { return full_.load(std::memory_order_acquire); }
  // Free bytes seen by the last Check().
  std::uint64_t free_bytes() const { return free_.load(std::memory_order_relaxed); }
  std::uint64_t reserve_bytes() const { return reserve_; }

 private:
  bool AllocateReserve();  // requires mu_

  const std::string path_;
  const std::uint64_t reserve_;
  std::mutex mu_;
  std::atomic<bool> full_{false};
  std::atomic<std::uint64_t> free_{0};
  std::atomic<std::int64_t> checked_at_ns_{0};  // steady clock
};

}  // namespace dray
