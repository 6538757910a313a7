// Registered workers through the real server (issue 7, first step): a
// worker that stops heartbeating is declared dead after the grace and its
// task goes to another worker at once, long before the lease would end.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dray/client.h"
#include "dray/worker.h"
#include "support/json.h"
#include "support/server_process.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

TEST(WorkerRegistryHttpTest, ADeadWorkersTaskIsReassignedAfterTheGraceNotTheLease) {
  // The grace must outlast the few calls between the lease and the
  // heartbeat below on a loaded machine (a sanitizer build under ctest -j4
  // on PostgreSQL took over 1 s), and still be far shorter than the lease.
  ServerProcess server({"--worker-grace-ms", "5000"});
  server.Start();
  HttpConn c(server.port());
  HttpResult reg = c.Call("POST", "/v1/workers",
                          R"({"id":"gpu-1","capacity":{"cpu":8000,"memory_mb":32768,"gpu":2},
                              "gpu_devices":["0","1"],"labels":{"zone":"a"},"queues":["render"]})");
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(reg.json().at("grace_ms"), 5000);
  EXPECT_EQ(reg.json().at("capacity").at("gpu"), 2);
  HttpResult bad = c.Call("POST", "/v1/workers", R"({"id":"x","capacity":{"gpu":1},"gpu_devices":["0","1"]})");
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_NE(bad.body.find("gpu_devices"), std::string::npos) << bad.body;
  EXPECT_EQ(c.Call("POST", "/v1/workers", R"({"capacity":{}})").status, 422);

  HttpResult sub = c.Call("POST", "/v1/tasks", R"({"type":"frame","queue":"render","backoff":{"initial_ms":0,"max_ms":0}})");
  ASSERT_EQ(sub.status, 201);
  const std::string task = Str(sub.json().at("id"));
  HttpResult lease = c.Call("POST", "/v1/leases",
                            R"({"worker":"gpu-1","queues":["render"],"lease_ms":600000})");
  ASSERT_EQ(lease.json().at("tasks").as_array().size(), 1u);
  json::value w = c.Call("GET", "/v1/workers/gpu-1").json();
  ASSERT_EQ(w.at("running").as_array().size(), 1u);
  EXPECT_EQ(Str(w.at("running").at(0)), task);
  ASSERT_EQ(c.Call("POST", "/v1/workers/gpu-1/heartbeat").status, 200);

  // gpu-1 goes silent. Another worker waits for work; it gets the frame
  // once gpu-1 is declared dead, long before the ten-minute lease ends.
  HttpResult next = c.Call("POST", "/v1/leases",
                           R"({"worker":"gpu-2","queues":["render"],"wait_ms":60000})");
  ASSERT_EQ(next.status, 200) << next.body;
  ASSERT_EQ(next.json().at("tasks").as_array().size(), 1u) << next.body;
  EXPECT_EQ(Str(next.json().at("tasks").at(0).at("id")), task);
  EXPECT_NE(Str(next.json().at("tasks").at(0).at("error")).find("gpu-1 declared dead"),
            std::string::npos);
  EXPECT_EQ(c.Call("GET", "/v1/workers/gpu-1").status, 404);
  EXPECT_EQ(c.Call("POST", "/v1/workers/gpu-1/heartbeat").status, 404);  // register again
  EXPECT_TRUE(c.Call("GET", "/v1/workers").json().at("workers").as_array().empty());

  // `dray workers` lists a registered one.
  ASSERT_EQ(c.Call("POST", "/v1/workers", R"({"id":"cpu-1","capacity":{"cpu":2000},"queues":["q"]})").status,
            200);
  auto [rc, out] = RunDray("workers --server http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("cpu-1"), std::string::npos) << out;
  EXPECT_NE(out.find("cpu=2000"), std::string::npos) << out;
  ASSERT_EQ(c.Call("DELETE", "/v1/workers/cpu-1").status, 200);
  EXPECT_EQ(c.Call("DELETE", "/v1/workers/cpu-1").status, 404);
}

// A server and an SDK client for it.
struct SdkSetup {
  SdkSetup() {
    server.Start();
    options.server = "http://127.0.0.1:" + std::to_string(server.port());
    if (auto c = Client::Create(options); c.ok()) client = std::move(*c);
  }
  ServerProcess server;
  ClientOptions options;
  std::unique_ptr<Client> client;
};

TEST(WorkerRegistryHttpTest, TheSdkRegistersHeartbeatsListsAndLeaves) {
  SdkSetup sdk;
  ASSERT_TRUE(sdk.client);
  Client* client = sdk.client.get();
  WorkerSpec spec;
  spec.id = "w-1";
  spec.capacity = {{"cpu", 4000}, {"memory_mb", 8192}, {"licenses", 3}};
  spec.labels = {{"zone", "b"}};
  spec.queues = {"q"};
  auto reg = client->RegisterWorker(spec);
  ASSERT_OK(reg);
  spec.ns = "default";
  EXPECT_EQ(reg->spec, spec);
  EXPECT_GT(reg->registered_at, 0);
  auto beat = client->WorkerHeartbeat("w-1");
  ASSERT_OK(beat);
  EXPECT_GE(beat->last_seen, reg->last_seen);
  auto all = client->Workers();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->at(0).spec.capacity.at("licenses"), 3);
  ASSERT_OK(client->DeregisterWorker("w-1"));
  EXPECT_EQ(client->WorkerHeartbeat("w-1").status().code(), StatusCode::kNotFound);
}

// The SDK worker runtime registers itself with its capacity, runs the
// tasks placed on it with their GPU devices and shard, registers again when
// the server forgets it (a restart), and leaves when it stops.
TEST(WorkerRegistryHttpTest, TheSdkWorkerRegistersRunsPlacedTasksAndLeaves) {
  SdkSetup sdk;
  ASSERT_TRUE(sdk.client);
  Client* client = sdk.client.get();
  const ClientOptions& o = sdk.options;
  WorkerOptions wo;
  wo.name = "sdk-gpu";
  wo.queues = {"ml"};
  wo.poll_wait = std::chrono::milliseconds(200);
  wo.worker_heartbeat = std::chrono::milliseconds(100);
  WorkerSpec reg;
  reg.capacity = {{"cpu", 2000}, {"gpu", 2}};
  reg.gpu_devices = {"3", "5"};
  reg.labels = {{"accel", "a100"}};
  wo.registration = reg;
  Worker worker(o, wo);
  std::mutex mu;
  std::vector<std::string> seen;  // devices and shards, as handlers saw them
  worker.HandleAll([&](TaskContext& ctx) {
    std::lock_guard<std::mutex> lock(mu);
    std::string devices;
    for (const std::string& d : ctx.gpu_devices()) devices += d;
    seen.push_back(devices + "/" + std::to_string(ctx.shard_index()) + ":" +
                   std::to_string(ctx.shard_total()));
    return std::string("null");
  });
  std::thread runner([&] { ASSERT_OK(worker.Run()); });
  ASSERT_TRUE(WaitFor([&] {
    auto all = client->Workers();
    return all.ok() && all->size() == 1;
  }));
  auto listed = client->Workers();
  EXPECT_EQ(listed->at(0).spec.queues, std::vector<std::string>{"ml"});
  EXPECT_EQ(listed->at(0).spec.labels.at("accel"), "a100");

  TaskSpec t;
  t.type = "infer";
  t.queue = "ml";
  t.placement.resources = {{"gpu", 2}};
  t.placement.require = {LabelSelector{"accel", SelectorOp::kEquals, {"a100"}}};
  auto id = client->Submit(t);
  ASSERT_OK(id);
  auto done = client->Wait(id->id, std::chrono::seconds(60));
  ASSERT_OK(done);
  EXPECT_EQ(done->state, TaskState::kSucceeded);
  TaskSpec b;
  b.type = "flush";
  b.queue = "ml";
  auto copies = client->Broadcast(b);
  ASSERT_OK(copies);
  ASSERT_EQ(copies->size(), 1u);
  EXPECT_EQ(copies->at(0).worker, "sdk-gpu");
  ASSERT_OK(client->Wait(copies->at(0).id, std::chrono::seconds(60)));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen, (std::vector<std::string>{"35/0:0", "/0:1"}));
  }

  // The server forgets it (as a restart would): it registers again.
  ASSERT_OK(client->DeregisterWorker("sdk-gpu"));
  EXPECT_TRUE(WaitFor([&] {
    auto all = client->Workers();
    return all.ok() && all->size() == 1;
  }));
  worker.Stop();
  runner.join();
  auto after = client->Workers();
  ASSERT_OK(after);
  EXPECT_TRUE(after->empty()) << "the worker did not leave";
}

}  // namespace
}  // namespace dray::testing
