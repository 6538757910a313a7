// Flow control under kill -9 (issue 5): random workflows and keyed tasks on
// a queue with a concurrency limit and a rate limit, run by workers that
// complete, fail, and vanish (their leases run out), while the server is
// killed at random moments. At the end every task's durable history is
// read back and checked:
//   - no acknowledged workflow or task is lost, and all of them finished;
//   - no task started before each of its dependencies had finished, nor
//     after one failed unless it said "continue"; a task cancelled for a
//     dependency really had one that failed;
//   - each workflow's state is the one its tasks imply;
//   - the tasks of a concurrency key (limit 1) ran one after the other, in
//     submit order;
//   - at no moment did more attempts run than the queue's concurrency;
//   - no window of time saw more starts than the rate limit's bucket allows.
//
// Short form (CI): 12 kill cycles. Long form:
//   DRAY_CHAOS_CYCLES=300 build/tests/dray_chaos_test --gtest_filter='ChaosFlow*'
// DRAY_CHAOS_SEED picks the schedule (default: the time; printed).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "chaos/load.h"
#include "core/time_format.h"
#include "support/json.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

namespace json = boost::json;
using dray::testing::HttpConn;
using dray::testing::HttpResult;
using dray::testing::ServerProcess;
using dray::testing::Str;
using dray::testing::WaitFor;

constexpr int kConcurrency = 3;
constexpr double kRate = 100;  // starts per second
constexpr int kBurst = 8;
constexpr int kKeys = 4;

TimeMs Time(const json::value& v) {
  return v.is_string() ? ParseRfc3339(v.as_string()).value_or(0) : 0;
}

// The submitter: one thread, one request at a time, so that the order of
// submits is known. A request without an answer is settled before the next
// one: a single task by sending it again with its idempotency key, a
// workflow by looking its unique name up once the server answers again.
class Submitter {
 public:
  Submitter(int port, std::uint64_t seed) : port_(port), rng_(seed) {}

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> workflows() {
    std::lock_guard<std::mutex> l(mu_);
    return workflows_;
  }
  std::vector<std::string> singles() {
    std::lock_guard<std::mutex> l(mu_);
    return singles_;
  }

 private:
  std::string RandomWorkflow(const std::string& name) {
    const int n = 2 + static_cast<int>(rng_() % 6);
    json::array tasks;
    for (int i = 0; i < n; ++i) {
      json::object t{{"name", "t" + std::to_string(i)},
                     {"type", "step"},
                     {"queue", "flow"},
                     {"max_attempts", 1 + static_cast<int>(rng_() % 3)},
                     {"backoff", json::object{{"initial_ms", 20}, {"max_ms", 50}}}};
      json::array deps;
      for (int j = 0; j < i; ++j) {
        if (rng_() % 3 == 0) deps.push_back(json::string("t" + std::to_string(j)));
      }
      if (!deps.empty()) t["depends_on"] = std::move(deps);
      if (rng_() % 4 == 0) t["on_failure"] = "continue";
      if (rng_() % 3 == 0) t["concurrency_key"] = "k" + std::to_string(rng_() % kKeys);
      tasks.push_back(std::move(t));
    }
    return json::serialize(json::object{{"name", name}, {"tasks", std::move(tasks)}});
  }

  void Loop() {
    HttpConn c(port_);
    for (int n = 0; !stop_; ++n) {
      if (rng_() % 3) {
        const std::string name = "wf-" + std::to_string(n);
        const std::string body = RandomWorkflow(name);
        std::string id;
        while (!stop_ && id.empty()) {
          HttpResult r = c.Call("POST", "/v1/workflows", body, std::chrono::seconds(5));
          if (r.status == 201) {
            id = Str(r.json().at("workflow").at("id"));
            break;
          }
          if (r.status == 429) {  // overloaded: nothing was created; later
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
          }
          if (r.status != 0 && r.status < 500) {
            ADD_FAILURE() << "workflow refused: " << r.status << " " << r.body;
            return;
          }
          // No answer: did it commit? Ask by name once the server is back.
          HttpResult found;
          while (!stop_ && found.status != 200) {
            found = c.Call("GET", "/v1/workflows?name=" + name, "", std::chrono::seconds(5));
            if (found.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          if (found.status == 200 && !found.json().at("workflows").as_array().empty()) {
            id = Str(found.json().at("workflows").at(0).at("id"));
          }
        }
        if (!id.empty()) {
          std::lock_guard<std::mutex> l(mu_);
          workflows_.push_back(id);
        }
      } else {
        const std::string body = R"({"type":"single","queue":"flow","concurrency_key":"k)" +
                                 std::to_string(rng_() % kKeys) + R"(","key":"s-)" +
                                 std::to_string(n) + R"(","max_attempts":2,"backoff":{"initial_ms":20,"max_ms":50}})";
        while (!stop_) {
          HttpResult r = c.Call("POST", "/v1/tasks", body, std::chrono::seconds(5));
          if (r.status == 201 || r.status == 200) {
            std::lock_guard<std::mutex> l(mu_);
            singles_.push_back(Str(r.json().at("id")));
            break;
          }
          if (r.status != 0 && r.status < 500 && r.status != 429) {
            ADD_FAILURE() << "task refused: " << r.status << " " << r.body;
            return;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng_() % 30));
    }
  }

  const int port_;
  std::mt19937_64 rng_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> workflows_;
  std::vector<std::string> singles_;
};

// A worker: leases, then completes (most), fails with or without a retry,
// or vanishes (the lease runs out), each at random; `calm` ends vanishing.
class FlowWorker {
 public:
  FlowWorker(int port, int n, std::uint64_t seed) : port_(port), n_(n), rng_(seed) {}
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void Calm() { calm_ = true; }

 private:
  void Loop() {
    HttpConn c(port_);
    const std::string lease = R"({"worker":"fw)" + std::to_string(n_) +
                              R"(","queues":["flow"],"max":3,"lease_ms":400,"wait_ms":200})";
    while (!stop_) {
      HttpResult r = c.Call("POST", "/v1/leases", lease, std::chrono::seconds(5));
      if (r.status != 200) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      const json::value leased = r.json();
      for (const json::value& t : leased.at("tasks").as_array()) {
        const std::string id = Str(t.at("id"));
        const std::string token = Str(t.at("lease").at("token"));
        std::this_thread::sleep_for(std::chrono::milliseconds(rng_() % 8));
        const int dice = static_cast<int>(rng_() % 100);
        if (dice < 5 && !calm_) continue;  // vanish
        if (dice < 15) {
          c.Call("POST", "/v1/tasks/" + id + "/fail",
                 R"({"lease":")" + token + R"(","error":"chaos","retry":)" +
                     (dice < 10 ? "true" : "false") + "}",
                 std::chrono::seconds(5));
        } else {
          c.Call("POST", "/v1/tasks/" + id + "/complete", R"({"lease":")" + token + R"(","result":1})",
                 std::chrono::seconds(5));
        }
      }
    }
  }

  const int port_;
  const int n_;
  std::mt19937_64 rng_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> calm_{false};
  std::thread thread_;
};

struct TaskView {
  std::string id;
  std::string state;
  std::string key;
  std::string policy;
  std::vector<std::string> deps;
  std::string error;
  TimeMs finished_at = 0;
  std::vector<std::pair<TimeMs, TimeMs>> attempts;  // started, ended
};

TaskView ReadTask(HttpConn& c, const std::string& id) {
  HttpResult r = c.Call("GET", "/v1/tasks/" + id);
  EXPECT_EQ(r.status, 200) << id << " " << r.body;
  TaskView v;
  if (r.status != 200) return v;
  const json::value doc = r.json();
  const json::object& o = doc.as_object();
  v.id = id;
  v.state = Str(o.at("state"));
  if (o.contains("concurrency_key")) v.key = Str(o.at("concurrency_key"));
  if (o.contains("on_dep_failure")) v.policy = Str(o.at("on_dep_failure"));
  if (o.contains("depends_on")) {
    for (const json::value& d : o.at("depends_on").as_array()) v.deps.push_back(Str(d));
  }
  if (o.at("error").is_string()) v.error = Str(o.at("error"));
  v.finished_at = Time(o.at("finished_at"));
  for (const json::value& a : o.at("history").as_array()) {
    v.attempts.emplace_back(Time(a.at("started_at")), Time(a.at("ended_at")));
  }
  return v;
}

TEST(ChaosFlowTest, LimitsAndDependenciesHoldThroughKillNine) {
  const int cycles = EnvInt("DRAY_CHAOS_CYCLES", 12);
  const std::uint64_t seed = ChaosSeed();
  std::mt19937_64 rng(seed);
  std::printf("seed %llu, %d cycles\n", static_cast<unsigned long long>(seed), cycles);

  ServerProcess server;
  server.Start();
  {
    HttpConn c(server.port());
    HttpResult q = c.Call("PATCH", "/v1/queues/flow",
                          R"({"concurrency":)" + std::to_string(kConcurrency) +
                              R"(,"key_concurrency":1,"rate":)" + std::to_string(kRate) +
                              R"(,"burst":)" + std::to_string(kBurst) + "}");
    ASSERT_EQ(q.status, 200) << q.body;
  }
  Submitter submitter(server.port(), seed);
  std::vector<std::unique_ptr<FlowWorker>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<FlowWorker>(server.port(), i, seed + 1 + i));
  }
  submitter.Start();
  for (auto& w : workers) w->Start();
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 500));
    server.Kill();
    server.Start();
  }
  submitter.Stop();
  for (auto& w : workers) w->Calm();

  // Drain: every workflow finished, every single task terminal.
  HttpConn c(server.port());
  const std::vector<std::string> workflows = submitter.workflows();
  const std::vector<std::string> singles = submitter.singles();
  std::printf("%zu workflows and %zu keyed tasks acknowledged\n", workflows.size(), singles.size());
  ASSERT_GT(workflows.size(), 5u);
  ASSERT_TRUE(WaitFor(
      [&] {
        HttpResult r = c.Call("GET", "/v1/workflows?state=running&limit=1");
        HttpResult q = c.Call("GET", "/v1/queues/flow");
        if (r.status != 200 || q.status != 200) return false;
        const json::value queue = q.json();
        const json::value& n = queue.at("counts");
        return r.json().at("workflows").as_array().empty() && n.at("ready") == 0 &&
               n.at("running") == 0 && n.at("scheduled") == 0 && n.at("blocked") == 0;
      },
      // The rate limit bounds the drain: a long run leaves more to do.
      std::chrono::seconds(std::max(120, cycles))))
      << "the queue did not drain";
  for (auto& w : workers) w->Stop();

  // Read every task back.
  std::map<std::string, TaskView> tasks;
  std::map<std::string, std::string> workflow_state;
  std::map<std::string, std::vector<std::string>> workflow_tasks;
  for (const std::string& w : workflows) {
    HttpResult r = c.Call("GET", "/v1/workflows/" + w);
    ASSERT_EQ(r.status, 200) << "acknowledged workflow " << w << " is lost";
    const json::value doc = r.json();
    workflow_state[w] = Str(doc.at("state"));
    for (const json::value& t : doc.at("tasks").as_array()) {
      const std::string id = Str(t.at("id"));
      tasks[id] = ReadTask(c, id);
      workflow_tasks[w].push_back(id);
    }
  }
  for (const std::string& id : singles) tasks[id] = ReadTask(c, id);

  int violations = 0;
  auto fail = [&](const std::string& what) {
    if (++violations <= 20) ADD_FAILURE() << what;
  };
  std::vector<std::pair<TimeMs, int>> events;  // (time, +1 start / -1 end)
  std::vector<TimeMs> starts;
  int ran_after_failed_dep = 0, cancelled_for_dep = 0;
  for (const auto& [id, t] : tasks) {
    if (t.state != "succeeded" && t.state != "failed" && t.state != "cancelled") {
      fail("task " + id + " is " + t.state + " after the drain");
    }
    for (const auto& [s, e] : t.attempts) {
      events.emplace_back(s, +1);
      events.emplace_back(e, -1);
      starts.push_back(s);
    }
    // Dependencies.
    bool a_dep_failed = false;
    TimeMs deps_done = 0;
    for (const std::string& d : t.deps) {
      const TaskView& dep = tasks.at(d);
      deps_done = std::max(deps_done, dep.finished_at);
      a_dep_failed |= dep.state != "succeeded";
    }
    if (!t.attempts.empty()) {
      if (t.attempts.front().first < deps_done) {
        fail("task " + id + " started before a dependency finished");
      }
      if (a_dep_failed && t.policy != "continue") {
        fail("task " + id + " ran after a dependency failed");
      }
      ran_after_failed_dep += a_dep_failed;
    }
    if (t.state == "cancelled") {
      if (!a_dep_failed || t.policy == "continue" || !t.attempts.empty()) {
        fail("task " + id + " was cancelled without a failed dependency: " + t.error);
      }
      ++cancelled_for_dep;
    }
  }
  // Workflows end as their tasks say.
  for (const auto& [w, ids] : workflow_tasks) {
    bool all_ok = true;
    for (const std::string& id : ids) all_ok &= tasks.at(id).state == "succeeded";
    if (workflow_state[w] != (all_ok ? "succeeded" : "failed")) {
      fail("workflow " + w + " is " + workflow_state[w]);
    }
  }
  // Serial keys: in id (= submit) order, each starts after the one before ended.
  std::map<std::string, std::vector<const TaskView*>> by_key;
  for (const auto& [id, t] : tasks) {
    if (!t.key.empty()) by_key[t.key].push_back(&t);
  }
  std::size_t keyed_runs = 0;
  for (auto& [key, list] : by_key) {
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->id < b->id; });
    TimeMs previous_end = 0;
    for (const TaskView* t : list) {
      if (!t->attempts.empty()) {
        ++keyed_runs;
        if (t->attempts.front().first < previous_end) {
          fail("key " + key + ": task " + t->id + " started before the one before it finished");
        }
      }
      previous_end = std::max(previous_end, t->finished_at);
    }
  }
  // Queue concurrency: ends before starts at the same millisecond.
  std::sort(events.begin(), events.end());
  int running = 0, peak = 0;
  for (const auto& [time, delta] : events) {
    running += delta;
    peak = std::max(peak, running);
  }
  if (peak > kConcurrency) fail("peak of " + std::to_string(peak) + " attempts running");
  // The bucket: in any window of w ms, at most burst + rate * w starts
  // (one more for the millisecond rounding of the times).
  std::sort(starts.begin(), starts.end());
  for (std::size_t i = 0; i < starts.size(); ++i) {
    for (std::size_t j = i; j < starts.size() && starts[j] - starts[i] <= 2000; ++j) {
      const double allowed = kBurst + kRate * static_cast<double>(starts[j] - starts[i]) / 1000 + 1;
      if (static_cast<double>(j - i + 1) > allowed) {
        fail(std::to_string(j - i + 1) + " starts within " +
             std::to_string(starts[j] - starts[i]) + " ms");
        break;
      }
    }
  }
  std::printf("%zu tasks, %zu attempts, peak running %d, %zu keyed runs, %d ran after a failed "
              "dependency (continue), %d cancelled for one; %d violations\n",
              tasks.size(), starts.size(), peak, keyed_runs, ran_after_failed_dep,
              cancelled_for_dep, violations);
  EXPECT_EQ(violations, 0);
  EXPECT_GT(keyed_runs, 10u);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
