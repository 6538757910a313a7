// Workflows (docs/workflows.md): a workflow's submission, cancel and end,
// and the release of a finished task's dependents. The graph itself is
// checked and ordered by core/dag.h.
#include "core/dag.h"
#include <map>
#include <memory>

#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

StatusOr<WorkflowOutcome> Engine::SubmitWorkflow(WorkflowSpec&& spec,
                                                 const std::map<std::string, Task>& finished,
                                                 TimeMs now, EngineOutput* out) {
  Tick(now, out);
  const std::size_t n = spec.tasks.size();
  if (live_.size() + n > options_.max_live_tasks) {
    return ResourceExhausted("the server holds " + std::to_string(live_.size()) +
                             " live tasks; the limit is " +
                             std::to_string(options_.max_live_tasks));
  }
  for (const WorkflowNodeSpec& node : spec.tasks) {
    const std::string who = "task '" + node.name + "'";
    if (!node.depends_on.empty() && (node.task.run_at || node.task.delay_ms)) {
      return InvalidArgument(who + " has dependencies and a start time: a task with "
                             "dependencies starts when they are met");
    }
    if (!node.task.key.empty()) {
      return InvalidArgument(who + " has an idempotency key; tasks of a workflow cannot");
    }
  }
  std::vector<DagNode> nodes;
  nodes.reserve(n);
  for (const WorkflowNodeSpec& node : spec.tasks) nodes.push_back(DagNode{node.name, node.depends_on});
  StatusOr<DagPlan> planned = PlanDag(nodes);
  if (!planned.ok()) return planned.status();
  const std::vector<std::vector<std::size_t>>& parents = planned->parents;
  const std::vector<std::size_t>& order = planned->order;
  // A dependency outside the workflow is a live task (its dependents wait
  // for it) or a finished one (met now, or fatal).
  struct External {
    IdBytes id;
    Live* live;
    const Task* row;
  };
  std::vector<std::vector<External>> external(n);
  for (std::size_t i = 0; i < n; ++i) {
    const WorkflowNodeSpec& node = spec.tasks[i];
    const std::string who = "task '" + node.name + "'";
    const DepFailure policy = node.on_failure.value_or(spec.on_failure);
    for (std::string_view dep_view : planned->external[i]) {
      const std::string dep(dep_view);
      auto bytes = ParseId(dep);
      Live* live = bytes ? FindLive(spec.ns, dep) : nullptr;
      auto row = bytes && !live ? finished.find(dep) : finished.end();
      if (!live && row == finished.end()) {
        return InvalidArgument(who + " depends on '" + dep +
                               "', which is neither a task of this workflow nor a task in "
                               "namespace '" + spec.ns + "'");
      }
      if (!live) {
        const Task& t = row->second;
        if (!IsTerminal(t.state)) {
          return FailedPrecondition("task " + dep + " changed meanwhile; try again");
        }
        if (t.state != TaskState::kSucceeded && policy == DepFailure::kCancel) {
          return FailedPrecondition(who + " depends on task " + dep + ", which is " +
                                    std::string(TaskStateName(t.state)) +
                                    ", so it would be cancelled at once (on_failure: cancel)");
        }
      }
      external[i].push_back(External{*bytes, live, live ? nullptr : &row->second});
    }
  }

  auto owned = std::make_unique<WorkflowLive>();
  WorkflowLive* w = owned.get();
  Workflow& r = w->record;
  r.id = ids_.Next(now);
  r.ns = spec.ns;
  r.name = std::move(spec.name);
  r.on_failure = spec.on_failure;
  r.tasks = static_cast<std::int32_t>(n);
  r.created_at = r.updated_at = now;
  workflows_[std::make_pair(r.ns, r.id)] = std::move(owned);
  EmitWorkflow(*w, out);  // the workflow's row before its tasks'

  std::vector<Live*> made(n, nullptr);
  for (std::size_t i : order) {
    WorkflowNodeSpec& node = spec.tasks[i];
    node.task.ns = spec.ns;
    Task t = MakeTask(std::move(node.task), QueueFor(spec.ns, node.task.queue, out), now);
    t.workflow = r.id;
    t.node = node.name;
    t.on_dep_failure = node.on_failure.value_or(spec.on_failure);
    std::int32_t pending = 0;
    std::vector<ParentLive> met;
    for (std::size_t p : parents[i]) {
      t.depends_on.push_back(FormatId(made[p]->id));
      ++pending;
    }
    for (const External& e : external[i]) {
      t.depends_on.push_back(FormatId(e.id));
      if (e.live) {
        ++pending;
      } else {
        met.push_back(ParentLive{e.id, FormatId(e.id), e.row->state,
                                 std::make_shared<const std::string>(e.row->result)});
      }
    }
    t.state = InitialState(pending > 0, t.run_at, now);
    Live* l = Insert(std::move(t), out);
    made[i] = l;
    Deps& d = *l->deps();
    d.pending = pending;
    d.parents = std::move(met);
    for (std::size_t p : parents[i]) made[p]->deps()->children.push_back(l->id);
    for (const External& e : external[i]) {
      if (!e.live) continue;
      Extra& px = e.live->MutableExtra();
      if (!px.deps) px.deps = std::make_unique<Deps>();
      px.deps->children.push_back(l->id);
    }
  }
  WorkflowOutcome outcome;
  outcome.workflow = r;
  outcome.tasks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    outcome.tasks.emplace_back(spec.tasks[i].name, FormatId(made[i]->id));
  }
  return outcome;
}

StatusOr<Workflow> Engine::CancelWorkflow(const std::string& ns, const std::string& id, TimeMs now,
                                          EngineOutput* out) {
  Tick(now, out);
  auto it = workflows_.find(std::make_pair(ns, id));
  if (it == workflows_.end()) return NotFound("workflow " + id + " is not running");
  WorkflowLive* w = it->second.get();
  w->record.cancel_requested = true;
  w->record.updated_at = now;
  Workflow result = w->record;
  EmitWorkflow(*w, out);
  const std::vector<IdBytes> tasks = w->tasks;  // w may end while they are cancelled
  for (const IdBytes& tid : tasks) {
    Live* l = live_.Find(tid);
    if (!l) continue;
    ApplyInput in{now};
    in.error = "workflow cancelled";
    (void)Step(l, EventInput{TaskEvent::kCancel}, in, out);
  }
  if (!workflows_.count(std::make_pair(ns, id))) {
    result.state = WorkflowState::kCancelled;
    result.finished_at = now;
  }
  return result;
}

std::optional<WorkflowStatus> Engine::FindWorkflow(const std::string& ns,
                                                   const std::string& id) const {
  auto it = workflows_.find(std::make_pair(ns, id));
  if (it == workflows_.end()) return std::nullopt;
  return WorkflowStatus{it->second->record, it->second->unfinished};
}

// ---------------------------------------------------------------- dependencies

void Engine::Release(const Finished& f, TimeMs now, EngineOutput* out) {
  const std::string id = FormatId(f.id);
  for (const IdBytes& cid : f.children) {
    Live* c = live_.Find(cid);
    if (!c || c->state() != TaskState::kBlocked) continue;
    Deps& d = *c->deps();
    const bool same_workflow = !f.workflow.empty() && f.workflow == d.workflow_id;
    const std::string& name = same_workflow ? f.node : id;
    d.parents.push_back(ParentLive{f.id, name, f.state, f.result});
    d.pending--;
    if (f.state != TaskState::kSucceeded && d.policy == DepFailure::kCancel) {
      ApplyInput in{now};
      const std::string error = "dependency '" + name + "' " +
                                std::string(TaskStateName(f.state));
      in.error = error;
      (void)Step(c, EventInput{TaskEvent::kCancel}, in, out);
    } else if (d.pending <= 0) {
      (void)Step(c, EventInput{TaskEvent::kDepsMet}, ApplyInput{now}, out);
    }
  }
}

std::vector<ParentResult> Engine::ParentsOf(const Live* l) const {
  const Deps* d = l->deps();
  if (!d || d->parents.empty()) return {};
  std::map<IdBytes, const ParentLive*> by_id;
  for (const ParentLive& p : d->parents) by_id.emplace(p.id, &p);
  std::vector<ParentResult> out;
  out.reserve(d->parents.size());
  for (const IdBytes& dep : d->depends_on) {
    auto it = by_id.find(dep);
    if (it == by_id.end()) continue;
    const ParentLive& p = *it->second;
    out.push_back(ParentResult{p.name, FormatId(p.id), p.state, p.result ? *p.result : ""});
  }
  return out;
}

void Engine::EmitWorkflow(const WorkflowLive& w, EngineOutput* out) {
  if (out) out->mutations.push_back(mutation::PutWorkflow{std::make_shared<const Workflow>(w.record)});
}

void Engine::TaskOfWorkflowFinished(WorkflowLive* w, TaskState state, TimeMs now,
                                    EngineOutput* out) {
  w->unfinished--;
  if (state != TaskState::kSucceeded) w->failed_any = true;
  if (w->unfinished > 0) return;
  Workflow& r = w->record;
  r.state = r.cancel_requested ? WorkflowState::kCancelled
            : w->failed_any    ? WorkflowState::kFailed
                               : WorkflowState::kSucceeded;
  r.finished_at = r.updated_at = now;
  EmitWorkflow(*w, out);
  workflows_.erase(std::make_pair(r.ns, r.id));
}

}  // namespace dray
