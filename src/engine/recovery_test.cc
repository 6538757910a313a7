// Recovery (engine/recovery.cc): an engine rebuilt from what another one
// wrote holds the same live state and decides the same way.
//
// Engine A runs random work (submits with priorities, delays, retries,
// idempotency and concurrency keys, dependencies on live and finished
// tasks, workflows; leases, completions, failures, cancels, expired leases,
// queue limits) with a fake clock. Everything it emits is applied to a
// model of the store (the newest row of each task wins, as in both real
// stores). At random moments engine B is rebuilt from the model in the
// order TaskService::Recover uses and compared with A: every live task
// reads the same (its whole API JSON, wait reason included), every queue
// counts the same, recovery needed no repair, and leasing every queue to
// the end hands out the same tasks in the same order.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/json_writer.h"
#include "engine/engine.h"
#include "support/status_assert.h"

namespace dray {
namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;
const std::vector<std::string> kQueues = {"q0", "q1", "q2"};

// The store as both real stores keep it: rows by (ns, id).
struct Model {
  std::map<std::pair<std::string, std::string>, Task> tasks;
  std::map<std::pair<std::string, std::string>, Workflow> workflows;
  std::map<std::pair<std::string, std::string>, QueueRecord> queues;

  void Apply(const EngineOutput& out) {
    for (const Mutation& m : out.mutations) {
      std::visit(Overloaded{
                     [&](const mutation::PutTask& p) { tasks[{p.task->ns, p.task->id}] = *p.task; },
                     [&](const mutation::UpdateTask& u) {
                       tasks[{u.task->ns, u.task->id}] = *u.task;
                     },
                     [&](const mutation::PutWorkflow& w) {
                       workflows[{w.workflow->ns, w.workflow->id}] = *w.workflow;
                     },
                     [&](const mutation::PutQueue& q) {
                       queues[{q.queue.ns, q.queue.name}] = q.queue;
                     },
                     [&](const auto&) { FAIL() << "a mutation this test does not make"; },
                 },
                 m);
    }
  }

  // A new engine from the model, in TaskService::Recover's order.
  std::unique_ptr<Engine> Recover(TimeMs now, EngineOutput* repairs) const {
    auto e = std::make_unique<Engine>(EngineOptions{3'600'000, 1'000'000, 7});
    StoreMarks marks;
    std::map<std::tuple<std::string, std::string, TaskState>, std::int64_t> finished;
    std::map<std::pair<std::string, std::string>, std::int64_t> failed_of_workflow;
    for (const auto& [key, t] : tasks) {
      marks.max_seq = std::max(marks.max_seq, t.seq);
      marks.max_lease_token = std::max(marks.max_lease_token, t.lease_token);
      if (!IsTerminal(t.state)) continue;
      finished[{t.ns, t.queue, t.state}]++;
      if (!t.workflow.empty() && t.state != TaskState::kSucceeded) {
        failed_of_workflow[{t.ns, t.workflow}]++;
      }
    }
    e->RestoreMarks(marks);
    for (const auto& [key, q] : queues) e->RestoreQueue(q);
    std::vector<StateCount> counts;
    for (const auto& [k, n] : finished) {
      counts.push_back(StateCount{std::get<0>(k), std::get<1>(k), std::get<2>(k), n});
    }
    e->RestoreFinishedCounts(counts);
    for (const auto& [key, w] : workflows) {
      if (w.state == WorkflowState::kRunning) e->RestoreWorkflow(w, failed_of_workflow[key]);
    }
    for (const auto& [key, t] : tasks) {
      if (IsTerminal(t.state)) continue;
      Task copy = t;
      EXPECT_OK(e->RestoreTask(std::move(copy)));
    }
    e->FinishRecovery(
        [this](const std::string& ns, const std::string& id) -> StatusOr<Task> {
          auto it = tasks.find({ns, id});
          if (it == tasks.end()) return NotFound("task " + id);
          return it->second;
        },
        now, repairs);
    for (const auto& [key, t] : tasks) {
      if (!t.key.empty()) e->RestoreKey(t.ns, t.key, t.id, t.created_at);
    }
    return e;
  }
};

std::string JsonOf(const Task& t) {
  std::string s;
  AppendTaskJson(t, &s);
  return s;
}

class RecoveryTest : public ::testing::TestWithParam<int> {
 protected:
  RecoveryTest() : a_(EngineOptions{3'600'000, 1'000'000, 7}), rng_(GetParam()) {}

  std::string RandomQueue() { return kQueues[rng_() % kQueues.size()]; }

  TaskSpec RandomSpec() {
    TaskSpec s;
    s.type = "t";
    s.queue = RandomQueue();
    s.priority = static_cast<std::int32_t>(rng_() % 3);
    s.max_attempts = 1 + static_cast<std::int32_t>(rng_() % 3);
    s.backoff = Backoff{500, 5'000, 2.0, 0.0};  // no jitter: B's random numbers differ
    if (rng_() % 5 == 0) s.delay_ms = static_cast<std::int64_t>(rng_() % 3'000);
    if (rng_() % 6 == 0) s.key = "idem-" + std::to_string(rng_() % 20);
    if (rng_() % 3 == 0) s.concurrency_key = "k" + std::to_string(rng_() % 4);
    return s;
  }

  void Step() {
    EngineOutput out;
    switch (rng_() % 10) {
      case 0:
      case 1:
      case 2: {
        std::vector<TaskSpec> specs;
        for (int i = 0, n = 1 + static_cast<int>(rng_() % 3); i < n; ++i) specs.push_back(RandomSpec());
        auto r = a_.Submit(std::move(specs), now_, &out);
        if (r.ok()) {
          for (const auto& o : *r) ids_.push_back(o.id);
        }
        break;
      }
      case 3: {
        WorkflowSpec spec;
        std::map<std::string, Task> finished;
        spec.name = "wf";
        spec.on_failure = rng_() % 2 ? DepFailure::kCancel : DepFailure::kContinue;
        for (int i = 0, n = 1 + static_cast<int>(rng_() % 5); i < n; ++i) {
          WorkflowNodeSpec node;
          node.name = "n" + std::to_string(i);
          node.task.type = "step";
          node.task.queue = RandomQueue();
          node.task.max_attempts = 1 + static_cast<std::int32_t>(rng_() % 2);
          node.task.backoff = Backoff{500, 5'000, 2.0, 0.0};
          for (int p = 0; p < i; ++p) {
            if (rng_() % 2 == 0) node.depends_on.push_back("n" + std::to_string(p));
          }
          if (rng_() % 3 == 0 && !ids_.empty()) {  // a task outside: live or finished
            const std::string& dep = ids_[rng_() % ids_.size()];
            node.depends_on.push_back(dep);
            auto row = model_.tasks.find({"default", dep});
            if (row != model_.tasks.end() && IsTerminal(row->second.state)) {
              finished.emplace(dep, row->second);
            }
          }
          spec.tasks.push_back(std::move(node));
        }
        auto r = a_.SubmitWorkflow(std::move(spec), finished, now_, &out);
        if (r.ok()) {
          for (const auto& [name, id] : r->tasks) ids_.push_back(id);
        } else {  // a finished failed dependency under on_failure: cancel
          ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
        }
        break;
      }
      case 4:
      case 5: {
        LeaseRequest req{"default", "w" + std::to_string(rng_() % 2), {RandomQueue()},
                         1 + rng_() % 3, 2'000};
        auto r = a_.Lease(req, now_, &out);
        ASSERT_OK(r);
        for (LeasedTask& l : *r) held_.push_back(std::move(l));
        break;
      }
      case 6:
      case 7: {
        if (held_.empty()) break;
        const std::size_t i = rng_() % held_.size();
        const LeasedTask l = held_[i];
        held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
        const int what = static_cast<int>(rng_() % 4);
        if (what == 0) {  // a lost worker: its lease runs out
          break;
        }
        if (what == 1) {
          (void)a_.Fail("default", l.task.id, l.lease.token, "boom", rng_() % 2, "", now_, &out);
        } else {
          (void)a_.Complete("default", l.task.id, l.lease.token, "{\"n\":1}", now_, &out);
        }
        break;
      }
      case 8: {
        if (ids_.empty()) break;
        (void)a_.Cancel("default", ids_[rng_() % ids_.size()], now_, &out);
        break;
      }
      case 9: {
        const std::string q = RandomQueue();
        const std::int32_t limit = static_cast<std::int32_t>(rng_() % 3);
        const std::int32_t key_limit = 1 + static_cast<std::int32_t>(rng_() % 2);
        ASSERT_OK(a_.PatchQueue("default", q,
                                [&](QueueSettings* s) {
                                  s->concurrency = limit;  // 0: no limit
                                  s->key_concurrency = key_limit;
                                  return Status::Ok();
                                },
                                &out));
        break;
      }
    }
    model_.Apply(out);
    now_ += static_cast<TimeMs>(rng_() % 400);
    EngineOutput ticked;
    a_.Tick(now_, &ticked);
    model_.Apply(ticked);
  }

  // B from the model reads and decides as A does; both are then used up.
  void CheckRecovered() {
    EngineOutput repairs;
    std::unique_ptr<Engine> b = model_.Recover(now_, &repairs);
    EXPECT_TRUE(repairs.mutations.empty()) << "a consistent store needs no repair";
    ASSERT_EQ(b->live_tasks(), a_.live_tasks());
    ASSERT_EQ(b->live_workflows(), a_.live_workflows());
    for (const auto& [key, t] : model_.tasks) {
      std::optional<Task> in_a = a_.Find(t.ns, t.id);
      std::optional<Task> in_b = b->Find(t.ns, t.id);
      ASSERT_EQ(in_a.has_value(), in_b.has_value()) << t.id;
      if (in_a) {
        EXPECT_EQ(JsonOf(*in_b), JsonOf(*in_a));
      }
    }
    for (const auto& [key, w] : model_.workflows) {
      auto wa = a_.FindWorkflow(w.ns, w.id);
      auto wb = b->FindWorkflow(w.ns, w.id);
      ASSERT_EQ(wa.has_value(), wb.has_value()) << w.id;
      if (wa) {
        EXPECT_EQ(wb->unfinished, wa->unfinished) << w.id;
      }
    }
    auto qa = a_.Queues("default");
    auto qb = b->Queues("default");
    ASSERT_EQ(qa.size(), qb.size());
    for (std::size_t i = 0; i < qa.size(); ++i) {
      EXPECT_EQ(qb[i].name, qa[i].name);
      EXPECT_EQ(qb[i].counts, qa[i].counts) << qa[i].name;
    }
    // Leasing each queue to the end, on copies of the future.
    for (const std::string& q : kQueues) {
      EngineOutput oa, ob;
      LeaseRequest req{"default", "w9", {q}, 10'000, 2'000};
      auto la = a_.Lease(req, now_, &oa);
      auto lb = b->Lease(req, now_, &ob);
      ASSERT_OK(la);
      ASSERT_OK(lb);
      std::vector<std::string> ia, ib;
      for (const auto& l : *la) ia.push_back(l.task.id + " " + l.lease.token);
      for (const auto& l : *lb) ib.push_back(l.task.id + " " + l.lease.token);
      EXPECT_EQ(ib, ia) << "queue " << q;
      model_.Apply(oa);
      for (LeasedTask& l : *la) held_.push_back(std::move(l));
    }
  }

  Engine a_;
  Model model_;
  std::mt19937_64 rng_;
  TimeMs now_ = kT0;
  std::vector<std::string> ids_;
  std::vector<LeasedTask> held_;
};

TEST_P(RecoveryTest, ARebuiltEngineReadsAndDecidesAsTheOneThatWrote) {
  for (int round = 0; round < 6; ++round) {
    for (int i = 0, n = 20 + static_cast<int>(rng_() % 120); i < n; ++i) {
      ASSERT_NO_FATAL_FAILURE(Step());
    }
    ASSERT_NO_FATAL_FAILURE(CheckRecovered()) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, RecoveryTest, ::testing::Range(1, 41));

// What a store that lost a write would hold: a blocked task whose
// dependency finished, and a running workflow with no live task. Recovery
// repairs both, and says so in its output.
TEST(RecoveryRepairTest, ABlockedTaskWhoseDependencyEndedAndAnEmptyWorkflowAreRepaired) {
  Engine a(EngineOptions{3'600'000, 1'000'000, 7});
  Model model;
  EngineOutput out;
  TaskSpec parent;
  parent.type = "p";
  auto p = a.Submit({parent}, kT0, &out);
  ASSERT_OK(p);
  WorkflowSpec later;
  later.name = "later";
  WorkflowNodeSpec child;
  child.name = "child";
  child.task.type = "c";
  child.task.queue = "later";
  child.depends_on = {(*p)[0].id};
  later.tasks.push_back(child);
  auto c = a.SubmitWorkflow(std::move(later), {}, kT0, &out);
  ASSERT_OK(c);
  const std::string child_id = c->tasks[0].second;
  WorkflowSpec wf;
  wf.name = "one";
  WorkflowNodeSpec node;
  node.name = "only";
  node.task.type = "s";
  node.task.queue = "wfq";
  wf.tasks.push_back(node);
  auto w = a.SubmitWorkflow(std::move(wf), {}, kT0, &out);
  ASSERT_OK(w);
  model.Apply(out);
  // The parent and the workflow's task finish, but only their task rows
  // reach the store (the child's release and the workflow's end are lost).
  for (const std::string& q : {std::string("default"), std::string("wfq")}) {
    EngineOutput lo;
    auto leased = a.Lease(LeaseRequest{"default", "w", {q}, 1, 60'000}, kT0, &lo);
    ASSERT_OK(leased);
    ASSERT_EQ(leased->size(), 1u);
    EngineOutput co;
    auto done = a.Complete("default", (*leased)[0].task.id, (*leased)[0].lease.token, "7", kT0, &co);
    ASSERT_OK(done);
    model.tasks[{done->ns, done->id}] = *done;
  }
  EngineOutput repairs;
  std::unique_ptr<Engine> b = model.Recover(kT0 + 1, &repairs);
  std::optional<Task> released = b->Find("default", child_id);
  ASSERT_TRUE(released);
  EXPECT_EQ(released->state, TaskState::kReady);
  EXPECT_FALSE(b->FindWorkflow("default", w->workflow.id)) << "ended by the repair";
  bool child_row = false, workflow_row = false;
  for (const Mutation& m : repairs.mutations) {
    if (const auto& t = TaskOf(m); t && t->id == child_id) child_row = true;
    if (const auto* pw = std::get_if<mutation::PutWorkflow>(&m)) {
      workflow_row = pw->workflow->state == WorkflowState::kSucceeded;
    }
  }
  EXPECT_TRUE(child_row);
  EXPECT_TRUE(workflow_row);
}

}  // namespace
}  // namespace dray
