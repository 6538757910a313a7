// Waiting in tests: poll a condition until it holds or a deadline passes.
//
// This is the tests' only way to wait for something another thread or
// process does. No test sleeps a fixed time and hopes; it polls for the
// condition it needs, and the deadline is generous (a minute by default) so
// that a slow or loaded machine makes a test slower, never flaky. The
// deadline is a bound against hanging, not a claim about speed: no test
// asserts how long something took.
#pragma once

#include <chrono>
#include <functional>

namespace dray::testing {

// Calls `cond` until it returns true or `deadline` has passed; returns
// whether it held (it is called once more at the deadline). Between calls it
// sleeps a poll interval that starts at 1 ms and doubles up to 50 ms, so a
// quick condition is seen quickly and a slow one costs little CPU. `cond`
// runs on the calling thread and must be safe to call repeatedly.
bool WaitFor(const std::function<bool()>& cond,
             std::chrono::milliseconds deadline = std::chrono::seconds(60));

}  // namespace dray::testing
