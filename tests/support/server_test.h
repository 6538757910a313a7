// ServerTest: the fixture for black-box tests that want a `dray server` of
// their own. SetUp starts a real server (support/server_process.h) on a free
// port with a fresh data directory; the destructor kills it and removes the
// directory. The helpers below drive the task lifecycle over plain HTTP and
// record a test failure (EXPECT, not ASSERT) when the server does not answer
// as the API promises, so a test can go on and report everything that is
// wrong.
//
//   class LimitsHttpTest : public ServerTest {};
//   TEST_F(LimitsHttpTest, ...) {
//     HttpConn c(server_.port());
//     std::string id = Submit(c, "acct", R"(,"concurrency_key":"k")");
//     json::array leased = Lease(c, "acct", 1);
//     Complete(c, leased.at(0));
//   }
//
// Threading: a test's helpers are called from the test's thread; each
// HttpConn belongs to one thread at a time.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "support/json.h"
#include "support/server_process.h"

namespace dray::testing {

class ServerTest : public ::testing::Test {
 protected:
  // `args` are passed to `dray server` after the defaults (--listen, --data).
  explicit ServerTest(std::vector<std::string> args = {}) : server_(std::move(args)) {}

  void SetUp() override { server_.Start(); }

  // POST /v1/tasks {"type":"t","queue":queue <extra>}: `extra` is spliced in
  // as more members (`,"priority":3`). Expects 201; returns the new id, or ""
  // if the server refused.
  std::string Submit(HttpConn& c, const std::string& queue, const std::string& extra = "");

  // POST /v1/leases as worker "w" for up to `max` tasks of `queue`; `extra`
  // is spliced in as more members (`,"wait_ms":500`). Expects 200; returns
  // the leased tasks (each with its "lease"), or none if the server refused.
  boost::json::array Lease(HttpConn& c, const std::string& queue, int max = 10,
                           const std::string& extra = "");

  // Completes a task that Lease returned, with `result` (JSON text) if given.
  // Expects 200.
  void Complete(HttpConn& c, const boost::json::value& leased, const std::string& result = "");

  // Fails the attempt of a task that Lease returned; `retry` false fails the
  // task for good. Expects 200.
  void Fail(HttpConn& c, const boost::json::value& leased, const std::string& error,
            bool retry = true);

  ServerProcess server_;
};

// The lease token of a task that POST /v1/leases returned.
inline std::string LeaseToken(const boost::json::value& leased) {
  return Str(leased.at("lease").at("token"));
}

}  // namespace dray::testing
