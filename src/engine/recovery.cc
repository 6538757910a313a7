// Recovery: the engine rebuilt from what the store holds, before any other
// call: the order is in engine.h, and TaskService::Recover drives it.
#include <map>
#include <memory>

#include "engine/engine.h"
#include "engine/engine_records.h"

namespace dray {

void Engine::RestoreQueue(const QueueRecord& q) {
  QueueState& state = QueueFor(q.ns, q.name, nullptr);
  state.settings = q.settings;
  state.bucket_empty = true;  // a restart never grants a fresh burst
}

Status Engine::RestoreTask(Task&& task) {
  if (IsTerminal(task.state)) return InvalidArgument("task " + task.id + " is not live");
  if (!ParseId(task.id)) return DataLoss("live task '" + task.id + "' has an id Dray did not make");
  next_seq_ = std::max(next_seq_, task.seq + 1);
  next_token_ = std::max(next_token_, task.lease_token + 1);
  Live* l = Insert(std::move(task), nullptr);
  if (const Deps* d = l->deps(); d && !d->depends_on.empty()) restored_with_deps_.push_back(l);
  return Status::Ok();
}

void Engine::RestoreWorkflow(const Workflow& w, std::int64_t failed_tasks) {
  auto live = std::make_unique<WorkflowLive>();
  live->record = w;
  live->failed_any = failed_tasks > 0;
  workflows_[std::make_pair(w.ns, w.id)] = std::move(live);
}

void Engine::FinishRecovery(
    const std::function<StatusOr<Task>(const std::string&, const std::string&)>& stored,
    TimeMs now, EngineOutput* out) {
  // Links first: a task's dependencies may have been restored after it.
  std::vector<std::pair<IdBytes, bool>> check;  // (task, a dependency failed it)
  for (Live* l : restored_with_deps_) {
    Deps& d = *l->deps();
    d.pending = 0;
    d.parents.clear();
    bool cancel = false;
    for (const IdBytes& dep : d.depends_on) {
      if (Live* p = live_.Find(dep)) {
        d.pending++;
        Extra& px = p->MutableExtra();
        if (!px.deps) px.deps = std::make_unique<Deps>();
        px.deps->children.push_back(l->id);
        continue;
      }
      ParentLive parent{dep, FormatId(dep), TaskState::kSucceeded, nullptr};
      // A finished dependency purged since counts as met, with no result.
      auto row = stored(l->queue->ns, parent.name);
      if (row.ok()) {
        parent.state = row->state;
        parent.result = std::make_shared<const std::string>(row->result);
        if (!d.workflow_id.empty() && row->workflow == d.workflow_id) parent.name = row->node;
      }
      if (parent.state != TaskState::kSucceeded && d.policy == DepFailure::kCancel) cancel = true;
      d.parents.push_back(std::move(parent));
    }
    check.emplace_back(l->id, cancel);
  }
  restored_with_deps_.clear();
  // Then repairs (a consistent store needs none): by id, since a cancel
  // may end other tasks on the list.
  for (const auto& [id, cancel] : check) {
    Live* l = live_.Find(id);
    if (!l || l->state() != TaskState::kBlocked) continue;
    if (cancel) {
      ApplyInput in{now};
      in.error = "a dependency failed";
      (void)Step(l, EventInput{TaskEvent::kCancel}, in, out);
    } else if (l->deps()->pending == 0) {
      (void)Step(l, EventInput{TaskEvent::kDepsMet}, ApplyInput{now}, out);
    }
  }
  std::vector<WorkflowLive*> empty;
  for (auto& [key, w] : workflows_) {
    if (w->unfinished == 0) empty.push_back(w.get());
  }
  for (WorkflowLive* w : empty) {
    w->unfinished = 1;  // TaskOfWorkflowFinished counts one down and ends it
    TaskOfWorkflowFinished(w, w->failed_any ? TaskState::kFailed : TaskState::kSucceeded, now, out);
  }
}

void Engine::RestoreKey(const std::string& ns, const std::string& key, const std::string& id,
                        TimeMs created_at) {
  std::string k = KeyOf(ns, key);
  auto [it, inserted] = keys_.try_emplace(k, KeyEntry{id, created_at});
  if (!inserted) {
    if (it->second.created_at >= created_at) return;
    it->second = KeyEntry{id, created_at};
  }
  key_order_.emplace_back(created_at, std::move(k));
}

void Engine::RestoreFinishedCounts(const std::vector<StateCount>& counts) {
  for (const StateCount& c : counts) {
    if (!IsTerminal(c.state)) continue;
    QueueFor(c.ns, c.queue, nullptr).counts[static_cast<std::size_t>(c.state)] = c.count;
  }
}

void Engine::ForgetFinished(const std::string& ns, const std::string& queue, TaskState state) {
  auto it = queues_.find(std::make_pair(ns, queue));
  if (it == queues_.end()) return;
  std::int64_t& n = it->second->counts[static_cast<std::size_t>(state)];
  if (n > 0) --n;
}

void Engine::RestoreMarks(const StoreMarks& marks) {
  next_token_ = std::max(next_token_, marks.max_lease_token + 1);
  next_seq_ = std::max(next_seq_, marks.max_seq + 1);
}

}  // namespace dray
