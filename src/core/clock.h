// Time as the rest of Dray sees it. Nothing outside this interface reads the
// wall clock, so tests move time by hand (FakeClock) and never sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

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

// Wall time that never jumps: it advances with the monotonic clock and
// steers toward the wall clock by at most `max_slew` of the elapsed time
// (5%: 50 ms per second), as ntpd slews. The engine keeps lease, timeout
// and backoff deadlines as times of this clock, so when the system clock is
// stepped (by an operator, a VM resume, a bad NTP source) leases neither all
// expire at once (forward step) nor hang on for the size of the step
// (backward step): a step of D is absorbed over D / max_slew, during which
// every duration runs at most max_slew fast or slow. Reported times stay
// within the step of the wall clock meanwhile and never go backwards.
//
// The sources are injectable for tests; the defaults are system_clock and
// steady_clock. Thread-safe.
class SmoothClock final : public Clock {
 public:
  using WallMs = std::function<TimeMs()>;
  using SteadyNs = std::function<std::int64_t()>;
  explicit SmoothClock(WallMs wall = {}, SteadyNs steady = {}, double max_slew = 0.05);
  TimeMs NowMs() const override;

 private:
  WallMs wall_;
  SteadyNs steady_;
  const double max_slew_;
  mutable std::mutex mu_;
  mutable std::int64_t last_steady_ns_;  // guarded by mu_
  mutable double last_ms_;               // guarded by mu_
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
