// What survives a restart and a crash: the server is a real child process,
// stopped with SIGTERM or killed with SIGKILL in the middle of a load.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "support/json.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

TEST(DurabilityTest, StateSurvivesAGracefulRestart) {
  ServerProcess server;
  server.Start();
  HttpConn c(server.port());
  auto submit = [&](const std::string& extra) {
    HttpResult r = c.Call("POST", "/v1/tasks", R"({"type":"t","queue":"r")" + extra + "}");
    EXPECT_TRUE(r.status == 201 || r.status == 200) << r.body;
    return Str(r.json().at("id"));
  };
  std::string done_id = submit(R"(,"key":"k-done")");
  std::string held_id = submit(R"(,"lease_ms":300,"backoff":{"initial_ms":0,"max_ms":0})");
  std::string ready_id = submit(R"(,"priority":5)");
  std::string later_id = submit(R"(,"delay_ms":600000)");
  c.Call("PATCH", "/v1/queues/r", R"({"lease_ms":45000})");
  auto lease = [&](int max) {
    HttpResult r = c.Call("POST", "/v1/leases", R"({"worker":"w","queues":["r"],"max":)" +
                                                    std::to_string(max) + "}");
    return r.json().at("tasks").as_array();
  };
  auto leased = lease(2);
  ASSERT_EQ(leased.size(), 2u);
  ASSERT_EQ(Str(leased[0].at("id")), done_id);
  const std::string old_token = Str(leased[1].at("lease").at("token"));
  HttpResult comp = c.Call("POST", "/v1/tasks/" + done_id + "/complete",
                           R"({"lease":")" + Str(leased[0].at("lease").at("token")) +
                               R"(","result":{"ok":true}})");
  ASSERT_EQ(comp.status, 200) << comp.body;

  EXPECT_EQ(server.Stop(), 0);
  server.Start();
  HttpConn c2(server.port());

  json::value done = c2.Call("GET", "/v1/tasks/" + done_id).json();
  EXPECT_EQ(done.at("state"), "succeeded");
  EXPECT_EQ(done.at("result").at("ok"), true);
  EXPECT_EQ(c2.Call("GET", "/v1/tasks/" + later_id).json().at("state"), "scheduled");
  EXPECT_EQ(c2.Call("GET", "/v1/tasks/" + ready_id).json().at("state"), "ready");
  json::value queue = c2.Call("GET", "/v1/queues/r").json();
  EXPECT_EQ(queue.at("settings").at("lease_ms"), 45000);
  EXPECT_EQ(queue.at("counts").at("succeeded"), 1);  // finished counts are rebuilt too
  // The key still maps to the first task.
  HttpResult again = c2.Call("POST", "/v1/tasks", R"({"type":"t","queue":"r","key":"k-done"})");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(Str(again.json().at("id")), done_id);
  // The lease held across the restart runs out and the task is handed out
  // again, under a newer token; the old token is refused.
  ASSERT_TRUE(WaitFor([&] {
    auto t = c2.Call("GET", "/v1/tasks/" + held_id).json();
    return t.at("state") != "running";
  }));
  json::value held = c2.Call("GET", "/v1/tasks/" + held_id).json();
  EXPECT_EQ(held.at("history").at(0).at("outcome"), "expired");
  HttpResult r = c2.Call("POST", "/v1/leases", R"({"worker":"w2","queues":["r"],"max":5})");
  auto again_leased = r.json().at("tasks").as_array();
  ASSERT_EQ(again_leased.size(), 2u);  // the expired one and the ready one
  for (const auto& t : again_leased) {
    EXPECT_GT(std::stoull(Str(t.at("lease").at("token"))), std::stoull(old_token));
  }
  HttpResult stale = c2.Call("POST", "/v1/tasks/" + held_id + "/complete",
                             R"({"lease":")" + old_token + R"("})");
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(DurabilityTest, SigtermAnswersWaitingLongPollsAndExitsZero) {
  ServerProcess server;
  server.Start();
  std::atomic<int> status{-1};
  std::thread waiter([&] {
    HttpConn c(server.port());
    status = c.Call("POST", "/v1/leases", R"({"worker":"w","queues":["q"],"wait_ms":60000})").status;
  });
  ASSERT_TRUE(WaitFor([&] {
    return Http(server.port(), "GET", "/metrics").body.find("dray_lease_waiters 1") !=
           std::string::npos;
  }));
  EXPECT_EQ(server.Stop(), 0);
  waiter.join();
  EXPECT_EQ(status.load(), 200);
}

// kill -9 under a submit load from several clients: every submit that got a
// 2xx is there after restart, and no task exists twice.
TEST(DurabilityTest, KillNineLosesNoAcknowledgedSubmit) {
  ServerProcess server;
  server.Start();
  std::mutex mu;
  std::map<std::string, std::string> acked;  // key -> id
  int cycle_keys = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    std::atomic<bool> stop{false};
    std::atomic<int> acks{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t, cycle] {
        HttpConn c(server.port());
        for (int i = 0; !stop; ++i) {
          std::string key = "c" + std::to_string(cycle) + "-" + std::to_string(t) + "-" +
                            std::to_string(i);
          HttpResult r = c.Call("POST", "/v1/tasks",
                                R"({"type":"t","queue":"load","payload":{"i":)" +
                                    std::to_string(i) + R"(},"key":")" + key + "\"}",
                                std::chrono::seconds(5));
          if (r.status == 0) {
            if (!c.connected() && stop) break;
            continue;  // the server is gone; the loop ends once stop is set
          }
          if (r.status == 201) {
            json::value body = r.json();
            ASSERT_TRUE(body.is_object()) << r.body;
            std::lock_guard<std::mutex> lock(mu);
            acked[key] = Str(body.at("id"));
            acks++;
          }
        }
      });
    }
    ASSERT_TRUE(WaitFor([&] { return acks >= 300; }, std::chrono::seconds(60)));
    server.Kill();
    stop = true;
    for (auto& th : clients) th.join();
    cycle_keys += acks;
    server.Start();
  }
  HttpConn c(server.port());
  // Every acknowledged task is there, with its own id.
  for (const auto& [key, id] : acked) {
    HttpResult r = c.Call("GET", "/v1/tasks/" + id);
    ASSERT_EQ(r.status, 200) << "lost acknowledged task " << id << " (key " << key << ")";
    ASSERT_EQ(Str(r.json().at("key")), key);
  }
  // No key twice: nothing was duplicated.
  std::set<std::string> keys;
  std::string cursor;
  std::size_t total = 0;
  for (;;) {
    HttpResult r = c.Call("GET", "/v1/tasks?queue=load&limit=1000&order=asc" +
                                     (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200);
    const json::value page = r.json();
    for (const auto& t : page.at("tasks").as_array()) {
      ASSERT_TRUE(keys.insert(Str(t.at("key"))).second) << "duplicate " << t.at("key");
      ++total;
    }
    if (page.at("next_cursor").is_null()) break;
    cursor = Str(page.at("next_cursor"));
  }
  EXPECT_GE(total, acked.size());
  EXPECT_EQ(cycle_keys, static_cast<int>(acked.size()));
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::testing
