// Time as the rest of Dray sees it. Nothing outside this interface reads the
// wall clock, so tests move time by hand (FakeClock) and never sleep.
#pragma once

#include <atomic>
#include <chrono>

#include "dray/types.h"

namespace dray {

// Thread-safe: implementations may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch, UTC.
  virtual TimeMs NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimeMs NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // The process-wide instance.
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that only moves when told. Relaxed ordering is enough: readers need
// a recent value, and tests order their steps through the engine's lock.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimeMs start = 1'700'000'000'000) : now_(start) {}
  TimeMs NowMs() const override { return now_.load(std::memory_order_relaxed); }
  void Set(TimeMs t) { now_.store(t, std::memory_order_relaxed); }
  void Advance(TimeMs d) { now_.fetch_add(d, std::memory_order_relaxed); }

 private:
  std::atomic<TimeMs> now_;
};

}  // namespace dray
