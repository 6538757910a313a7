#include "store/disk_guard.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace dray {

namespace {

// Space an unprivileged writer could still use, in bytes; 0 if unknown.
std::uint64_t FreeBytes(const std::string& dir) {
  struct statvfs s;
  if (statvfs(dir.c_str(), &s) != 0) return 0;
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

}  // namespace

DiskGuard::DiskGuard(std::string dir, std::uint64_t reserve_bytes)
    : path_((std::filesystem::path(dir) / "dray.reserve").string()), reserve_(reserve_bytes) {
  if (reserve_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  // A reserve left by an earlier run is counted as ours again.
  std::error_code ec;
  if (std::filesystem::file_size(path_, ec) >= reserve_ && !ec) {
    free_ = FreeBytes(std::filesystem::path(path_).parent_path().string());
    return;
  }
  if (!AllocateReserve()) {
    full_ = true;
    spdlog::warn("disk: no room for the {} MiB reserve in {}: submits are refused until space is freed",
                 reserve_ >> 20, std::filesystem::path(path_).parent_path().string());
  }
}

bool DiskGuard::AllocateReserve() {
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const int rc = posix_fallocate(fd, 0, static_cast<off_t>(reserve_));
  const bool ok = rc == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) ::unlink(path_.c_str());
  return ok;
}

void DiskGuard::CheckIfStale(std::chrono::milliseconds every) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = checked_at_ns_.load(std::memory_order_relaxed);
  if (now - last < std::chrono::duration_cast<std::chrono::nanoseconds>(every).count()) return;
  if (!checked_at_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  Check();
}

void DiskGuard::Check() {
  if (reserve_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  const std::uint64_t free = FreeBytes(std::filesystem::path(path_).parent_path().string());
  free_.store(free, std::memory_order_relaxed);
  if (!full_.load(std::memory_order_relaxed)) {
    if (free >= reserve_) return;
    ::unlink(path_.c_str());
    full_.store(true, std::memory_order_release);
    spdlog::warn("disk: {} KiB free: released the {} MiB reserve; submits are refused with 507 "
                 "until space is freed, running tasks can still report",
                 free >> 10, reserve_ >> 20);
    return;
  }
  if (free < 3 * reserve_) return;
  if (AllocateReserve()) {
    full_.store(false, std::memory_order_release);
    spdlog::info("disk: {} MiB free again: reserve restored, submits accepted", free >> 20);
  }
}

}  // namespace dray
