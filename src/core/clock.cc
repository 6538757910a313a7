#include "core/clock.h"

#include <algorithm>
#include <cmath>

namespace dray {

SmoothClock::SmoothClock(WallMs wall, SteadyNs steady, double max_slew)
    : wall_(wall ? std::move(wall) : WallMs([] { return SystemClock::Default()->NowMs(); })),
      steady_(steady ? std::move(steady) : SteadyNs([] {
        return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             std::chrono::steady_clock::now().time_since_epoch())
                                             .count());
      })),
      max_slew_(max_slew),
      last_steady_ns_(steady_()),
      last_ms_(static_cast<double>(wall_())) {}

TimeMs SmoothClock::NowMs() const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::int64_t s = steady_();
  const double dt = static_cast<double>(std::max<std::int64_t>(0, s - last_steady_ns_)) / 1e6;
  const double free_run = last_ms_ + dt;
  const double error = static_cast<double>(wall_()) - free_run;
  const double allowed = max_slew_ * dt;
  last_ms_ = free_run + std::clamp(error, -allowed, allowed);
  last_steady_ns_ = s;
  return static_cast<TimeMs>(std::floor(last_ms_));
}

}  // namespace dray
