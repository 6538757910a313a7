// Workflows in the engine (issue 5): DAG release order, result passing,
// failure policies, cancellation, recovery and scale, with a fake clock.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "engine/engine.h"
#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

WorkflowNodeSpec Node(std::string name, std::vector<std::string> deps = {}) {
  WorkflowNodeSpec n;
  n.name = std::move(name);
  n.task.type = "step";
  n.task.queue = "wf";
  n.task.max_attempts = 1;
  n.depends_on = std::move(deps);
  return n;
}

class WorkflowTest : public ::testing::Test {
 protected:
  WorkflowTest() : engine_(EngineOptions{60'000, 1'000'000, 3}) {}

  // Submits; returns the outcome and remembers name -> id.
  StatusOr<WorkflowOutcome> Submit(std::vector<WorkflowNodeSpec> nodes,
                                   DepFailure policy = DepFailure::kCancel,
                                   const std::map<std::string, Task>& finished = {}) {
    WorkflowSpec spec;
    spec.name = "test";
    spec.on_failure = policy;
    spec.tasks = std::move(nodes);
    EngineOutput out;
    auto r = engine_.SubmitWorkflow(std::move(spec), finished, now_, &out);
    last_out_ = out;
    if (r.ok()) {
      for (const auto& [name, id] : r->tasks) ids_[name] = id;
      workflow_ = r->workflow.id;
    }
    return r;
  }
  std::vector<LeasedTask> Lease(std::size_t max = 100) {
    EngineOutput out;
    LeaseRequest req{"default", "w", {"wf"}, max, 60'000};
    auto r = engine_.Lease(req, now_, &out);
    EXPECT_OK(r);
    return r.ok() ? *r : std::vector<LeasedTask>{};
  }
  std::set<std::string> LeaseNames(std::size_t max = 100) {
    std::set<std::string> names;
    for (auto& l : Lease(max)) {
      names.insert(l.task.node);
      held_[l.task.node] = l;
    }
    return names;
  }
  EngineOutput Complete(const std::string& name, const std::string& result = "1") {
    EngineOutput out;
    const LeasedTask& l = held_.at(name);
    auto r = engine_.Complete("default", l.task.id, l.lease.token, result, now_, &out);
    EXPECT_OK(r);
    return out;
  }
  EngineOutput Fail(const std::string& name, bool retry = false) {
    EngineOutput out;
    const LeasedTask& l = held_.at(name);
    auto r = engine_.Fail("default", l.task.id, l.lease.token, "boom", retry, "", now_, &out);
    EXPECT_OK(r);
    return out;
  }
  TaskState StateOf(const std::string& name, const EngineOutput* out = nullptr) {
    if (auto t = engine_.Find("default", ids_.at(name))) return t->state;
    // Finished: the last mutation for it says how.
    for (const EngineOutput* o : {out, static_cast<const EngineOutput*>(&last_out_)}) {
      if (!o) continue;
      for (auto it = o->mutations.rbegin(); it != o->mutations.rend(); ++it) {
        if (const auto& t = TaskOf(*it); t && t->id == ids_.at(name)) return t->state;
      }
    }
    return TaskState::kSucceeded;
  }
  static std::optional<Workflow> WorkflowIn(const EngineOutput& out) {
    std::optional<Workflow> w;
    for (const Mutation& m : out.mutations) {
      if (const auto* p = std::get_if<mutation::PutWorkflow>(&m)) w = *p->workflow;
    }
    return w;
  }
  static const Task* TaskIn(const EngineOutput& out, const std::string& id) {
    const Task* t = nullptr;
    for (const Mutation& m : out.mutations) {
      if (const auto& x = TaskOf(m); x && x->id == id) t = x.get();
    }
    return t;
  }

  TimeMs now_ = kT0;
  Engine engine_;
  EngineOutput last_out_;
  std::map<std::string, std::string> ids_;
  std::map<std::string, LeasedTask> held_;
  std::string workflow_;
};

TEST_F(WorkflowTest, DiamondRunsInDependencyOrderAndPassesResults) {
  auto r = Submit({Node("publish", {"thumb_s", "thumb_m"}), Node("resize"),
                   Node("thumb_s", {"resize"}), Node("thumb_m", {"resize"})});
  ASSERT_OK(r);
  // One commit: the workflow's row first, then every task.
  ASSERT_EQ(last_out_.mutations.size(), 1u + 4 + 1);  // + the queue's row
  EXPECT_EQ(WorkflowIn(last_out_)->state, WorkflowState::kRunning);
  EXPECT_EQ(StateOf("publish"), TaskState::kBlocked);
  EXPECT_EQ(engine_.Find("default", ids_["publish"])->wait_reason, "dependencies");
  EXPECT_EQ(LeaseNames(), (std::set<std::string>{"resize"}));
  Complete("resize", R"({"path":"/big.png"})");
  auto second = Lease();
  ASSERT_EQ(second.size(), 2u);
  for (const LeasedTask& l : second) {
    held_[l.task.node] = l;
    ASSERT_EQ(l.parents.size(), 1u);
    EXPECT_EQ(l.parents[0].name, "resize");
    EXPECT_EQ(l.parents[0].result, R"({"path":"/big.png"})");
    EXPECT_EQ(l.task.workflow, workflow_);
  }
  Complete("thumb_m", R"("m")");
  EXPECT_TRUE(Lease().empty()) << "publish waits for both thumbnails";
  Complete("thumb_s", R"("s")");
  auto last = Lease();
  ASSERT_EQ(last.size(), 1u);
  held_["publish"] = last[0];
  ASSERT_EQ(last[0].parents.size(), 2u);  // in depends_on order
  EXPECT_EQ(last[0].parents[0].name, "thumb_s");
  EXPECT_EQ(last[0].parents[0].result, R"("s")");
  EXPECT_EQ(last[0].parents[1].name, "thumb_m");
  EngineOutput out = Complete("publish");
  auto w = WorkflowIn(out);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->state, WorkflowState::kSucceeded);
  EXPECT_EQ(w->finished_at, now_);
  EXPECT_FALSE(engine_.FindWorkflow("default", workflow_).has_value());
}

TEST_F(WorkflowTest, BadGraphsAreRefusedWholeNamingTheCulprit) {
  struct Case {
    std::vector<WorkflowNodeSpec> nodes;
    std::string message;
  };
  WorkflowNodeSpec delayed = Node("late", {"a"});
  delayed.task.delay_ms = 10;
  WorkflowNodeSpec keyed = Node("k");
  keyed.task.key = "idem";
  std::vector<Case> cases = {
      {{Node("a"), Node("a")}, "two tasks are named 'a'"},
      {{Node("a", {"nope"})}, "task 'a' depends on 'nope', which is neither"},
      {{Node("a", {"0193a1b2-c3d4-7e5f-8a9b-0123456789ab"})}, "which is neither"},
      {{Node("a", {"a"})}, "task 'a' depends on itself"},
      {{Node("x"), Node("a", {"c", "x"}), Node("b", {"a"}), Node("c", {"b"})},
       "the tasks form a cycle: 'a' -> 'c' -> 'b' -> 'a'"},
      {{Node("a"), delayed}, "task 'late' has dependencies and a start time"},
      {{keyed}, "task 'k' has an idempotency key"},
  };
  for (auto& c : cases) {
    auto r = Submit(std::move(c.nodes));
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
    EXPECT_TRUE(last_out_.mutations.empty());
  }
  EXPECT_EQ(engine_.live_tasks(), 0u);
  EXPECT_EQ(engine_.live_workflows(), 0u);
}

TEST_F(WorkflowTest, AFailureCancelsEveryDependentByDefault) {
  ASSERT_TRUE(Submit({Node("a"), Node("b", {"a"}), Node("c", {"b"}), Node("d", {"a", "e"}),
                      Node("e")})
                  .ok());
  EXPECT_EQ(LeaseNames(), (std::set<std::string>{"a", "e"}));
  EngineOutput out = Fail("a");
  for (const char* n : {"b", "c", "d"}) {
    const Task* t = TaskIn(out, ids_[n]);
    ASSERT_NE(t, nullptr) << n;
    EXPECT_EQ(t->state, TaskState::kCancelled) << n;
  }
  EXPECT_EQ(TaskIn(out, ids_["b"])->error, "dependency 'a' failed");
  EXPECT_EQ(TaskIn(out, ids_["c"])->error, "dependency 'b' cancelled");
  EXPECT_FALSE(WorkflowIn(out).has_value()) << "e still runs";
  out = Complete("e");
  ASSERT_TRUE(WorkflowIn(out).has_value());
  EXPECT_EQ(WorkflowIn(out)->state, WorkflowState::kFailed);
}

TEST_F(WorkflowTest, ContinueRunsDependentsAnywayAndTellsThemWhatFailed) {
  WorkflowNodeSpec cleanup = Node("cleanup", {"work"});
  cleanup.on_failure = DepFailure::kContinue;
  ASSERT_OK(Submit({Node("work"), cleanup, Node("report", {"work"})}));
  LeaseNames();
  EngineOutput out = Fail("work");
  EXPECT_EQ(TaskIn(out, ids_["report"])->state, TaskState::kCancelled);
  auto got = Lease();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.node, "cleanup");
  ASSERT_EQ(got[0].parents.size(), 1u);
  EXPECT_EQ(got[0].parents[0].state, TaskState::kFailed);
  held_["cleanup"] = got[0];
  out = Complete("cleanup");
  EXPECT_EQ(WorkflowIn(out)->state, WorkflowState::kFailed);
}

TEST_F(WorkflowTest, RetriesOfADependencyKeepItsDependentsWaiting) {
  WorkflowNodeSpec flaky = Node("flaky");
  flaky.task.max_attempts = 3;
  flaky.task.backoff = Backoff{10, 10, 1.0, 0.0};
  ASSERT_OK(Submit({flaky, Node("next", {"flaky"})}));
  LeaseNames();
  Fail("flaky", /*retry=*/true);
  EXPECT_EQ(StateOf("next"), TaskState::kBlocked);
  now_ += 10;
  EXPECT_EQ(LeaseNames(), (std::set<std::string>{"flaky"}));
  Complete("flaky");
  EXPECT_EQ(LeaseNames(), (std::set<std::string>{"next"}));
}

TEST_F(WorkflowTest, CancelStopsEveryUnfinishedTask) {
  ASSERT_OK(Submit({Node("run"), Node("wait", {"run"}), Node("ready")}));
  auto got = Lease(1);
  ASSERT_EQ(got.size(), 1u);
  held_[got[0].task.node] = got[0];
  const std::string running = got[0].task.node;
  EngineOutput out;
  auto w = engine_.CancelWorkflow("default", workflow_, now_, &out);
  ASSERT_OK(w);
  EXPECT_TRUE(w->cancel_requested);
  EXPECT_EQ(w->state, WorkflowState::kRunning) << "one task still runs";
  auto live = engine_.Find("default", ids_[running]);
  ASSERT_TRUE(live.has_value());
  EXPECT_TRUE(live->cancel_requested);
  EXPECT_TRUE(Lease().empty());
  // The worker sees the request and stops.
  out = Fail(running, /*retry=*/true);
  ASSERT_TRUE(WorkflowIn(out).has_value());
  EXPECT_EQ(WorkflowIn(out)->state, WorkflowState::kCancelled);
  EXPECT_EQ(engine_.live_tasks(), 0u);
  EXPECT_EQ(engine_.CancelWorkflow("default", workflow_, now_, &out).status().code(),
            StatusCode::kNotFound);
}

TEST_F(WorkflowTest, DependenciesOnExistingTasks) {
  // A live task: the workflow's task waits for it.
  EngineOutput out;
  TaskSpec plain;
  plain.type = "t";
  plain.queue = "wf";
  auto sub = engine_.Submit({plain}, now_, &out);
  ASSERT_OK(sub);
  const std::string live_id = sub->at(0).id;
  // A finished one, as the store has it.
  Task done;
  done.id = "0193a1b2-c3d4-7e5f-8a9b-0123456789ab";
  done.state = TaskState::kSucceeded;
  done.result = R"({"rows":7})";
  Task failed = done;
  failed.id = "0193a1b2-c3d4-7e5f-8a9b-0123456789ac";
  failed.state = TaskState::kFailed;
  std::map<std::string, Task> finished = {{done.id, done}, {failed.id, failed}};
  auto bad = Submit({Node("x", {failed.id})}, DepFailure::kCancel, finished);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Submit({Node("after_live", {live_id}), Node("after_done", {done.id})},
                     DepFailure::kCancel, finished)
                  .ok());
  EXPECT_EQ(StateOf("after_live"), TaskState::kBlocked);
  auto got = Lease();
  ASSERT_EQ(got.size(), 2u);  // the plain task and after_done
  for (auto& l : got) {
    held_[l.task.node.empty() ? "plain" : l.task.node] = l;
    if (l.task.node == "after_done") {
      ASSERT_EQ(l.parents.size(), 1u);
      EXPECT_EQ(l.parents[0].name, done.id);  // not in the workflow: named by id
      EXPECT_EQ(l.parents[0].result, done.result);
    }
  }
  Complete("plain", "42");
  got = Lease();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task.node, "after_live");
  EXPECT_EQ(got[0].parents.at(0).result, "42");
}

TEST_F(WorkflowTest, ARetryOfAWorkflowTaskIsRefused) {
  ASSERT_OK(Submit({Node("a"), Node("b", {"a"})}));
  LeaseNames();
  EngineOutput out = Fail("a");
  Task stored = *TaskIn(out, ids_["a"]);
  auto r = engine_.Retry(stored, now_, &out);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(WorkflowTest, RecoveryLinksDependenciesAgain) {
  ASSERT_OK(Submit({Node("a"), Node("b"), Node("c", {"a", "b"})}));
  LeaseNames();
  EngineOutput out = Complete("a", R"("from a")");
  // What the store holds now: the finished task and the live ones.
  std::map<std::string, Task> rows;
  rows[ids_["a"]] = *TaskIn(out, ids_["a"]);
  Engine restored(EngineOptions{60'000, 1000, 9});
  restored.RestoreWorkflow(engine_.FindWorkflow("default", workflow_)->workflow, 0);
  for (const char* n : {"c", "b"}) ASSERT_OK(restored.RestoreTask(*engine_.Find("default", ids_[n])));
  EngineOutput rec;
  restored.FinishRecovery(
      [&](const std::string&, const std::string& id) -> StatusOr<Task> {
        auto it = rows.find(id);
        if (it == rows.end()) return NotFound(id);
        return it->second;
      },
      now_, &rec);
  EXPECT_TRUE(rec.mutations.empty()) << "a consistent store needs no repair";
  EXPECT_EQ(restored.Find("default", ids_["c"])->state, TaskState::kBlocked);
  // b was running under a lease the new engine honours.
  const LeasedTask& b = held_.at("b");
  ASSERT_OK(restored.Complete("default", b.task.id, b.lease.token, R"("from b")", now_, &rec));
  LeaseRequest req{"default", "w", {"wf"}, 10, 1000};
  auto got = restored.Lease(req, now_, &rec);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 1u);
  ASSERT_EQ(got->at(0).parents.size(), 2u);
  EXPECT_EQ(got->at(0).parents[0].name, "a");
  EXPECT_EQ(got->at(0).parents[0].result, R"("from a")");
  EXPECT_EQ(got->at(0).parents[1].result, R"("from b")");
  ASSERT_OK(restored.Complete("default", got->at(0).task.id, got->at(0).lease.token, "1", now_, &rec));
  EXPECT_EQ(WorkflowIn(rec)->state, WorkflowState::kSucceeded);
}

TEST_F(WorkflowTest, TenThousandTaskChainAndFanOutFanIn) {
  // A chain: cancelling its head cancels 9,999 dependents without recursion.
  std::vector<WorkflowNodeSpec> chain;
  for (int i = 0; i < 10'000; ++i) {
    chain.push_back(i ? Node("n" + std::to_string(i), {"n" + std::to_string(i - 1)})
                      : Node("n0"));
  }
  ASSERT_OK(Submit(std::move(chain)));
  EXPECT_EQ(engine_.live_tasks(), 10'000u);
  EngineOutput out;
  ASSERT_OK(engine_.Cancel("default", ids_["n0"], now_, &out));
  EXPECT_EQ(engine_.live_tasks(), 0u);
  EXPECT_EQ(WorkflowIn(out)->state, WorkflowState::kFailed);
  // Fan-out to 9,998 and back in to one.
  std::vector<WorkflowNodeSpec> wide = {Node("root")};
  std::vector<std::string> mids;
  for (int i = 0; i < 9'998; ++i) {
    mids.push_back("m" + std::to_string(i));
    wide.push_back(Node(mids.back(), {"root"}));
  }
  wide.push_back(Node("sink", mids));
  ASSERT_OK(Submit(std::move(wide)));
  ASSERT_EQ(LeaseNames(), (std::set<std::string>{"root"}));
  Complete("root");
  std::size_t ran = 0;
  for (;;) {
    auto got = Lease(1000);
    if (got.empty()) break;
    for (auto& l : got) {
      if (l.task.node == "sink") {
        EXPECT_EQ(ran, 9'998u) << "the sink ran before every middle task finished";
        EXPECT_EQ(l.parents.size(), 9'998u);
        held_["sink"] = l;
        continue;
      }
      ++ran;
      EngineOutput o;
      ASSERT_OK(engine_.Complete("default", l.task.id, l.lease.token, "1", now_, &o));
    }
  }
  EXPECT_EQ(ran, 9'998u);
  EXPECT_EQ(WorkflowIn(Complete("sink"))->state, WorkflowState::kSucceeded);
}

// Random DAGs (some with keyed tasks), random outcomes, expiries and
// cancels: no task ever starts before its dependencies allow, each
// workflow ends once, in the state its tasks imply, and nothing is left.
TEST_F(WorkflowTest, RandomizedDagsNeverStartEarly) {
  std::mt19937_64 rng(2026);
  struct Info {
    std::string workflow;
    std::vector<std::string> deps;
    DepFailure policy;
  };
  std::map<std::string, Info> info;
  std::map<std::string, TaskState> ended;  // task id -> terminal state
  std::map<std::string, WorkflowState> workflow_end;
  std::map<std::string, std::set<std::string>> workflow_tasks;
  std::map<std::string, bool> cancel_requested;
  std::map<std::string, LeasedTask> running;
  auto absorb = [&](const EngineOutput& out) {
    for (const Mutation& m : out.mutations) {
      const auto* p = std::get_if<mutation::PutWorkflow>(&m);
      if (p && p->workflow->state != WorkflowState::kRunning) {
        ASSERT_FALSE(workflow_end.count(p->workflow->id)) << "a workflow ended twice";
        workflow_end[p->workflow->id] = p->workflow->state;
      }
      if (const auto& t = TaskOf(m); t && IsTerminal(t->state)) {
        ASSERT_FALSE(ended.count(t->id)) << "a task ended twice";
        ended[t->id] = t->state;
        running.erase(t->id);
      }
    }
  };
  int with_deps = 0, after_a_failure = 0;
  for (int round = 0; round < 300; ++round) {
    // A random DAG: edges only from lower to higher index.
    const int n = 2 + static_cast<int>(rng() % 25);
    std::vector<WorkflowNodeSpec> nodes;
    for (int i = 0; i < n; ++i) {
      std::vector<std::string> deps;
      for (int j = 0; j < i; ++j) {
        if (rng() % 4 == 0) deps.push_back("t" + std::to_string(j));
      }
      WorkflowNodeSpec node = Node("t" + std::to_string(i), deps);
      node.task.max_attempts = 1 + static_cast<int>(rng() % 2);
      node.task.backoff = Backoff{5, 5, 1.0, 0.0};
      if (rng() % 5 == 0) node.task.concurrency_key = "k" + std::to_string(rng() % 3);
      if (rng() % 3 == 0) node.on_failure = DepFailure::kContinue;
      nodes.push_back(std::move(node));
    }
    std::shuffle(nodes.begin(), nodes.end(), rng);  // order in the request does not matter
    auto r = Submit(nodes, rng() % 2 ? DepFailure::kCancel : DepFailure::kContinue);
    ASSERT_OK(r);
    absorb(last_out_);
    std::map<std::string, std::string> by_name(r->tasks.begin(), r->tasks.end());
    for (const WorkflowNodeSpec& node : nodes) {
      Info in{r->workflow.id, {}, node.on_failure.value_or(r->workflow.on_failure)};
      for (const std::string& d : node.depends_on) in.deps.push_back(by_name[d]);
      info[by_name[node.name]] = in;
      workflow_tasks[r->workflow.id].insert(by_name[node.name]);
    }
    // Work the queue for a while, with workers that fail and vanish.
    for (int step = 0; step < 40; ++step) {
      EngineOutput out;
      const int op = static_cast<int>(rng() % 8);
      if (op < 3) {
        LeaseRequest req{"default", "w", {"wf"}, 1 + rng() % 5, 50};
        auto got = engine_.Lease(req, now_, &out);
        ASSERT_OK(got);
        for (auto& l : *got) {
          const Info& in = info.at(l.task.id);
          ASSERT_FALSE(cancel_requested[in.workflow]) << "started after its workflow was cancelled";
          for (const std::string& d : in.deps) {
            ASSERT_TRUE(ended.count(d)) << "started before a dependency finished";
            if (in.policy == DepFailure::kCancel) {
              ASSERT_EQ(ended[d], TaskState::kSucceeded) << "started after a dependency failed";
            }
          }
          ASSERT_EQ(l.parents.size(), in.deps.size());
          with_deps += !in.deps.empty();
          for (const ParentResult& p : l.parents) {
            after_a_failure += p.state != TaskState::kSucceeded;
          }
          running[l.task.id] = l;
        }
      } else if (op < 6 && !running.empty()) {
        auto it = running.begin();
        std::advance(it, static_cast<long>(rng() % running.size()));
        const LeasedTask l = it->second;
        if (rng() % 3) {
          (void)engine_.Complete("default", l.task.id, l.lease.token, "1", now_, &out);
        } else {
          (void)engine_.Fail("default", l.task.id, l.lease.token, "x", rng() % 2, "", now_, &out);
        }
        running.erase(l.task.id);
      } else if (op == 6 && rng() % 6 == 0) {
        const std::string& w = r->workflow.id;
        if (engine_.CancelWorkflow("default", w, now_, &out).ok()) cancel_requested[w] = true;
      } else {
        now_ += static_cast<TimeMs>(rng() % 30);  // leases of 50 ms run out
        engine_.Tick(now_, &out);
      }
      absorb(out);
      for (auto it = running.begin(); it != running.end();) {
        auto t = engine_.Find("default", it->first);
        if (!t || t->state != TaskState::kRunning || t->lease_token != it->second.task.lease_token) {
          it = running.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  // Drain everything: complete whatever runs until nothing is live.
  for (int i = 0; i < 10'000 && engine_.live_tasks() > 0; ++i) {
    EngineOutput out;
    now_ += 100;
    LeaseRequest req{"default", "w", {"wf"}, 100, 1000};
    auto got = engine_.Lease(req, now_, &out);
    ASSERT_OK(got);
    absorb(out);
    for (auto& l : *got) {
      EngineOutput o;
      ASSERT_OK(engine_.Complete("default", l.task.id, l.lease.token, "1", now_, &o));
      absorb(o);
    }
  }
  ASSERT_EQ(engine_.live_tasks(), 0u);
  EXPECT_EQ(engine_.live_workflows(), 0u);
  // The run covered what it is meant to.
  EXPECT_GT(with_deps, 500);
  EXPECT_GT(after_a_failure, 20);
  int cancelled = 0, failed = 0;
  for (const auto& [w, st] : workflow_end) {
    cancelled += st == WorkflowState::kCancelled;
    failed += st == WorkflowState::kFailed;
  }
  EXPECT_GT(cancelled, 5);
  EXPECT_GT(failed, 20);
  // Every workflow ended once, as its tasks say.
  for (const auto& [w, tasks] : workflow_tasks) {
    ASSERT_TRUE(workflow_end.count(w)) << "workflow " << w << " never ended";
    bool all_ok = true;
    for (const std::string& t : tasks) {
      ASSERT_TRUE(ended.count(t));
      all_ok &= ended[t] == TaskState::kSucceeded;
    }
    const WorkflowState want = cancel_requested[w] ? WorkflowState::kCancelled
                               : all_ok            ? WorkflowState::kSucceeded
                                                   : WorkflowState::kFailed;
    EXPECT_EQ(workflow_end[w], want) << w;
  }
}

}  // namespace
}  // namespace dray
