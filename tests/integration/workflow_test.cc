// Workflows through the real server (issue 5): submit a DAG in one
// request, run it with leases that carry the parents' results, read it,
// cancel it, and keep it across a restart.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "dray/client.h"
#include "dray/worker.h"
#include "support/json.h"
#include "support/server_test.h"
#include "support/status_assert.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

class WorkflowHttpTest : public ServerTest {};

constexpr const char* kDiamond = R"({
  "name": "thumbnails",
  "tasks": [
    {"name": "resize", "type": "resize", "queue": "media", "payload": {"src": "a.png"}},
    {"name": "small", "type": "thumb", "queue": "media", "depends_on": ["resize"]},
    {"name": "large", "type": "thumb", "queue": "media", "depends_on": ["resize"]},
    {"name": "publish", "type": "publish", "queue": "media", "depends_on": ["small", "large"]}
  ]})";

TEST_F(WorkflowHttpTest, ADiamondRunsWithItsParentsResults) {
  HttpConn c(server_.port());
  HttpResult sub = c.Call("POST", "/v1/workflows", kDiamond);
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string wf = Str(sub.json().at("workflow").at("id"));
  EXPECT_EQ(sub.json().at("workflow").at("state"), "running");
  EXPECT_EQ(sub.json().at("tasks").as_object().size(), 4u);

  auto got = Lease(c, "media");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("node"), "resize");
  EXPECT_EQ(Str(got[0].at("workflow")), wf);
  Complete(c, got[0], R"({"path":"/r/a.png"})");
  got = Lease(c, "media");
  ASSERT_EQ(got.size(), 2u);
  for (const auto& t : got) {
    EXPECT_EQ(t.at("parents").at("resize").at("result").at("path"), "/r/a.png");
    EXPECT_EQ(t.at("parents").at("resize").at("state"), "succeeded");
  }
  // Midway, the workflow shows each task and why publish waits.
  json::value mid = c.Call("GET", "/v1/workflows/" + wf).json();
  EXPECT_EQ(mid.at("state"), "running");
  EXPECT_EQ(mid.at("counts").at("running"), 2);
  EXPECT_EQ(mid.at("counts").at("succeeded"), 1);
  const json::array& tasks = mid.at("tasks").as_array();
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks[3].at("name"), "publish");
  EXPECT_EQ(tasks[3].at("state"), "blocked");
  EXPECT_EQ(tasks[3].at("wait_reason"), "dependencies");
  EXPECT_EQ(tasks[3].at("depends_on"), (json::array{"small", "large"}));
  EXPECT_EQ(tasks[0].at("result").at("path"), "/r/a.png");

  Complete(c, got[0], R"("one")");
  Complete(c, got[1], R"("two")");
  got = Lease(c, "media");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("parents").as_object().size(), 2u);
  Complete(c, got[0], "true");
  json::value done = c.Call("GET", "/v1/workflows/" + wf + "?tasks=0").json();
  EXPECT_EQ(done.at("state"), "succeeded");
  EXPECT_FALSE(done.as_object().contains("tasks"));
  EXPECT_FALSE(done.at("finished_at").is_null());
  json::value list = c.Call("GET", "/v1/workflows?state=succeeded").json();
  ASSERT_EQ(list.at("workflows").as_array().size(), 1u);
  EXPECT_EQ(list.at("workflows").at(0).at("name"), "thumbnails");
}

TEST_F(WorkflowHttpTest, BadWorkflowsAreRefusedAndCreateNothing) {
  HttpConn c(server_.port());
  struct Case {
    std::string body;
    int status;
    std::string message;
  };
  std::vector<Case> cases = {
      {R"({"tasks":[{"name":"a","type":"t","depends_on":["b"]},{"name":"b","type":"t","depends_on":["a"]}]})",
       422, "cycle: 'a' -> 'b' -> 'a'"},
      {R"({"tasks":[{"name":"a","type":"t","depends_on":["ghost"]}]})", 422, "'ghost'"},
      {R"({"tasks":[{"name":"a","type":"t"},{"name":"a","type":"t"}]})", 422, "two tasks are named 'a'"},
      {R"({"tasks":[{"type":"t"}]})", 422, "tasks[0].name"},
      {R"({"tasks":[{"name":"a","type":"t","colour":"red"}]})", 422, "field 'tasks[0].colour' is unknown"},
      {R"({"tasks":[]})", 422, "must not be empty"},
      {R"({"on_failure":"explode","tasks":[{"name":"a","type":"t"}]})", 422, "on_failure"},
  };
  for (const Case& k : cases) {
    HttpResult r = c.Call("POST", "/v1/workflows", k.body);
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    EXPECT_NE(r.body.find(k.message), std::string::npos) << r.body;
  }
  EXPECT_EQ(c.Call("GET", "/v1/workflows").json().at("workflows").as_array().size(), 0u);
  EXPECT_EQ(c.Call("GET", "/v1/tasks").json().at("tasks").as_array().size(), 0u);
}

TEST_F(WorkflowHttpTest, CancelAndItsAnswers) {
  HttpConn c(server_.port());
  HttpResult sub = c.Call("POST", "/v1/workflows", kDiamond);
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string wf = Str(sub.json().at("workflow").at("id"));
  HttpResult r = c.Call("POST", "/v1/workflows/" + wf + "/cancel");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("state"), "cancelled");
  json::value w = c.Call("GET", "/v1/workflows/" + wf).json();
  EXPECT_EQ(w.at("counts").at("cancelled"), 4);
  EXPECT_EQ(c.Call("POST", "/v1/workflows/" + wf + "/cancel").status, 200);  // again: as it is
  EXPECT_TRUE(Lease(c, "media").empty());
  // A finished one cannot be cancelled; an unknown one is not found.
  HttpResult one = c.Call("POST", "/v1/workflows",
                          R"({"tasks":[{"name":"only","type":"t","queue":"media"}]})");
  const std::string wf2 = Str(one.json().at("workflow").at("id"));
  auto got = Lease(c, "media");
  ASSERT_EQ(got.size(), 1u);
  Complete(c, got[0], "1");
  EXPECT_EQ(c.Call("POST", "/v1/workflows/" + wf2 + "/cancel").status, 409);
  EXPECT_EQ(c.Call("POST", "/v1/workflows/0193a1b2-c3d4-7e5f-8a9b-0123456789ab/cancel").status, 404);
}

TEST_F(WorkflowHttpTest, AWorkflowCarriesOnAcrossARestart) {
  HttpConn c(server_.port());
  // A dependency outside the workflow, finished before it was submitted.
  HttpResult pre = c.Call("POST", "/v1/tasks", R"({"type":"fetch","queue":"media"})");
  const std::string pre_id = Str(pre.json().at("id"));
  auto got = Lease(c, "media");
  ASSERT_EQ(got.size(), 1u);
  Complete(c, got[0], R"({"bytes":512})");
  HttpResult sub = c.Call(
      "POST", "/v1/workflows",
      R"({"tasks":[{"name":"a","type":"t","queue":"media","depends_on":[")" + pre_id +
          R"("]},{"name":"b","type":"t","queue":"media","depends_on":["a"]}]})");
  ASSERT_EQ(sub.status, 201) << sub.body;
  const std::string wf = Str(sub.json().at("workflow").at("id"));
  got = Lease(c, "media");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("parents").at(pre_id).at("result").at("bytes"), 512);

  EXPECT_EQ(server_.Stop(), 0);
  server_.Start();
  HttpConn c2(server_.port());
  Complete(c2, got[0], R"("a done")");  // the lease survived the restart
  auto next = Lease(c2, "media");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].at("node"), "b");
  EXPECT_EQ(next[0].at("parents").at("a").at("result"), "a done");
  Complete(c2, next[0], "1");
  EXPECT_EQ(c2.Call("GET", "/v1/workflows/" + wf).json().at("state"), "succeeded");
}

// The C++ SDK: a workflow built in code, run by a Worker whose handlers
// read their parents' results, and waited for with a long poll.
TEST_F(WorkflowHttpTest, TheSdkBuildsRunsAndWaitsForAWorkflow) {
  ClientOptions co;
  co.server = "http://127.0.0.1:" + std::to_string(server_.port());
  auto client = Client::Create(co);
  ASSERT_OK(client);
  auto task = [](std::string type, std::string payload = "null") {
    TaskSpec t;
    t.type = std::move(type);
    t.queue = "sdk";
    t.payload = std::move(payload);
    return t;
  };
  WorkflowSpec spec;
  spec.name = "sum";
  spec.Add("two", task("number", "2"));
  spec.Add("three", task("number", "3"));
  spec.Add("sum", task("add"), {"two", "three"});
  spec.Add("report", task("report"), {"sum"}).on_failure = DepFailure::kContinue;
  auto sub = (*client)->SubmitWorkflow(spec);
  ASSERT_OK(sub);
  ASSERT_EQ(sub->tasks.size(), 4u);

  WorkerOptions wo;
  wo.queues = {"sdk"};
  wo.poll_wait = std::chrono::milliseconds(200);
  Worker worker(co, wo);
  worker.Handle("number", [](TaskContext& ctx) { return ctx.payload(); });
  worker.Handle("add", [](TaskContext& ctx) {
    long sum = 0;
    for (const ParentResult& p : ctx.parents()) sum += std::stol(p.result);
    return std::to_string(sum);
  });
  worker.Handle("report", [](TaskContext& ctx) {
    const std::string* sum = ctx.parent_result("sum");
    return std::string("{\"sum\":") + (sum ? *sum : "null") + "}";
  });
  std::thread runner([&] { EXPECT_OK(worker.Run()); });
  auto done = (*client)->WaitWorkflow(sub->workflow.id, std::chrono::seconds(30));
  worker.Stop();
  runner.join();
  ASSERT_OK(done);
  EXPECT_EQ(done->workflow.state, WorkflowState::kSucceeded);
  EXPECT_EQ(done->counts[TaskState::kSucceeded], 4);
  ASSERT_EQ(done->tasks.size(), 4u);
  EXPECT_EQ(done->tasks[2].name, "sum");
  EXPECT_EQ(done->tasks[2].result, "5");
  EXPECT_EQ(done->tasks[3].result, R"({"sum":5})");
  EXPECT_EQ(done->tasks[3].depends_on, std::vector<std::string>{"sum"});
  auto list = (*client)->ListWorkflows(WorkflowFilter{WorkflowState::kSucceeded, "sum", 10, ""});
  ASSERT_OK(list);
  ASSERT_EQ(list->workflows.size(), 1u);
  // Cancelling it now: it has finished.
  EXPECT_EQ((*client)->CancelWorkflow(sub->workflow.id).status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dray::testing
