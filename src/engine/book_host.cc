#include "engine/book_host.h"

#include "engine/engine_records.h"

namespace dray {

bool Engine::BookHost::IsLive(const std::string& ns, const std::string& id) const {
  return engine_->IsLive(ns, id);
}

Status Engine::BookHost::Room(std::size_t n) const {
  const std::size_t live = engine_->live_.size();
  const std::size_t limit = engine_->options_.max_live_tasks;
  if (live + n <= limit) return Status::Ok();
  return ResourceExhausted("the server holds " + std::to_string(live) +
                           " live tasks; the limit is " + std::to_string(limit));
}

std::string Engine::BookHost::Submit(TaskSpec&& spec, TimeMs now) {
  Task t = engine_->MakeTask(std::move(spec), engine_->QueueFor(spec.ns, spec.queue, out_), now);
  std::string id = t.id;
  engine_->Insert(std::move(t), out_);
  return id;
}

void Engine::BookHost::Cancel(const std::string& ns, const std::string& id,
                              const std::string& why, TimeMs now) {
  Live* l = engine_->FindLive(ns, id);
  if (!l) return;
  ApplyInput in{now};
  in.error = why;  // a view: `why` outlives the step
  (void)engine_->Step(l, EventInput{TaskEvent::kCancel}, in, out_);
}

void Engine::BookHost::Record(Mutation m) { out_->mutations.push_back(std::move(m)); }

}  // namespace dray
