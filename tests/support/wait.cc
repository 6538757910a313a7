#include "support/wait.h"

#include <algorithm>
#include <thread>

namespace dray::testing {

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  auto pause = std::chrono::milliseconds(1);
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(pause);  // a poll interval, not a wait for an event
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return cond();
}

}  // namespace dray::testing
