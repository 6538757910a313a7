// libFuzzer target: the JSON decoders of everything a client sends (task
// specs single and batched, workflows, schedules, queue patches with their
// limits, backoffs) and of what the API
// returns (DecodeTask, used by the SDK). Any input must give a value or a
// clear Status, never a crash; what decodes must obey the limits it was
// checked against, and a task the API writes must read back the same (up
// to a double's last bit, see EqualButForDoubleLastBit).
#include <boost/json.hpp>
#include <cmath>
#include <cstddef>
#include <limits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/json_codec.h"
#include "core/limits.h"

namespace {

void Check(bool cond, const char* what, int line) {
  if (!cond) {
    std::fprintf(stderr, "json_fuzz.cc:%d: %s\n", line, what);
    std::abort();
  }
}
#define Require(cond) Check((cond), #cond, __LINE__)

// Equal, except that doubles may differ in their last bit: Boost.JSON 1.81
// (Debian 12's) parses doubles to within one ulp, not always to the nearest,
// so a payload's 17-digit double can come back one ulp off after a parse.
bool EqualButForDoubleLastBit(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 4 * std::numeric_limits<double>::epsilon() * std::fabs(x);
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &p = a.get_array(), &q = b.get_array();
    if (p.size() != q.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (!EqualButForDoubleLastBit(p[i], q[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto &p = a.get_object(), &q = b.get_object();
    if (p.size() != q.size()) return false;
    for (const auto& [k, v] : p) {
      const boost::json::value* w = q.if_contains(k);
      if (!w || !EqualButForDoubleLastBit(v, *w)) return false;
    }
    return true;
  }
  return a == b;
}

// Makes the JSON text `got` (read back) the text `want` (written) when they
// hold the same value up to a double's last bit; fails otherwise.
void AlignJson(std::string* got, const std::string& want) {
  if (*got == want) return;
  Require(EqualButForDoubleLastBit(boost::json::parse(*got), boost::json::parse(want)));
  *got = want;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dray;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseJson(text);
  if (!parsed.ok()) {
    Require(parsed.status().code() == StatusCode::kMalformed);
    return 0;
  }
  const boost::json::value& v = *parsed;
  Limits limits;
  limits.max_batch = 16;  // small bounds so the fuzzer reaches them
  limits.max_payload_bytes = 256;
  limits.max_labels = 4;

  if (auto submit = DecodeSubmit(v, limits); submit.ok()) {
    Require(!submit->specs.empty() && submit->specs.size() <= limits.max_batch);
    for (const TaskSpec& s : submit->specs) {
      Require(ValidateName("queue", s.queue, limits).ok());
      Require(!s.type.empty() && s.type.size() <= limits.max_name_bytes);
      Require(s.payload.size() <= limits.max_payload_bytes);
      Require(s.labels.size() <= limits.max_labels);
      Require(s.key.size() <= limits.max_key_bytes);
      // Placement as the SDK sends it, as a task answer and as the store
      // writes it, reads back the same.
      for (const auto& [name, amount] : s.placement.resources) Require(amount > 0);
      auto again = DecodeTaskSpec(EncodeTaskSpec(s), limits);
      Require(again.ok() && again->placement == s.placement);
      const std::string members = PlacementToJson(s.placement);
      Require(DecodePlacement(boost::json::parse("{" + members + "}").as_object()) == s.placement);
    }
  } else {
    Require(!submit.status().message().empty());
  }

  limits.max_workflow_tasks = 16;
  if (auto wf = DecodeWorkflowSpec(v, limits); wf.ok()) {
    Require(!wf->tasks.empty() && wf->tasks.size() <= limits.max_workflow_tasks);
    for (const WorkflowNodeSpec& n : wf->tasks) {
      Require(ValidateName("name", n.name, limits).ok());
      Require(n.depends_on.size() <= limits.max_workflow_tasks);
      Require(n.task.payload.size() <= limits.max_payload_bytes);
      Require(!n.task.concurrency_limit || !n.task.concurrency_key.empty());
    }
  } else {
    Require(!wf.status().message().empty());
  }

  if (auto sched = DecodeScheduleSpec(v, limits); sched.ok()) {
    Require(sched->cron.empty() != (sched->interval_ms == 0));
    Require(sched->task.key.empty() && !sched->task.run_at);
    Require(sched->interval_ms == 0 || sched->jitter_ms < sched->interval_ms);
  } else {
    Require(!sched.status().message().empty());
  }

  // A schedule written as stored reads back the same.
  if (auto sched = DecodeScheduleSpec(v, limits); sched.ok()) {
    Schedule s;
    s.spec = std::move(*sched);
    s.spec.task.ns = s.spec.ns;
    auto back = DecodeSchedule(EncodeSchedule(s));
    Require(back.ok());
    AlignJson(&back->spec.task.payload, s.spec.task.payload);
    Require(*back == s);
  }

  if (auto event = DecodeEventSpec(v, limits); event.ok()) {
    Require(!event->name.empty());
    Require(ParseJson(event->payload).ok());
  } else {
    Require(!event.status().message().empty());
  }

  // A trigger: never its own source, and read back the same as stored; its
  // match is evaluated against the document itself without harm.
  if (auto trig = DecodeTriggerSpec(v, limits); trig.ok()) {
    Require(trig->on_task != !trig->event.empty());
    if (trig->on_task) {
      Require(!trig->task_states.empty());
      Require(!((trig->task_queue.empty() || trig->task_queue == trig->task.queue) &&
                (trig->task_type.empty() || trig->task_type == trig->task.type)));
    }
    Trigger t;
    t.spec = std::move(*trig);
    t.spec.task.ns = t.spec.ns;
    auto back = DecodeTrigger(EncodeTrigger(t));
    Require(back.ok() && back->spec.match.size() == t.spec.match.size());
    // Match values and the payload are JSON text: equal up to a double's
    // last bit (a value like 41e300 reads back one ulp off).
    for (std::size_t i = 0; i < t.spec.match.size(); ++i) {
      Require(back->spec.match[i].first == t.spec.match[i].first);
      AlignJson(&back->spec.match[i].second, t.spec.match[i].second);
    }
    AlignJson(&back->spec.task.payload, t.spec.task.payload);
    Require(*back == t);
    (void)MatchPayload(v, t.spec.match);
  } else {
    Require(!trig.status().message().empty());
  }

  QueueSettings settings;
  if (Status s = ApplyQueuePatch(v, &settings); !s.ok()) {
    Require(!s.message().empty());
  } else {
    Require(settings.weight >= 1 && settings.key_concurrency >= 1 && settings.rate >= 0);
    Require(settings.effective_burst() >= 1);
  }
  if (auto b = DecodeBackoff(v, "backoff"); !b.ok()) Require(!b.status().message().empty());

  // A task read from an API answer, written again, reads back the same.
  if (auto task = DecodeTask(v); task.ok()) {
    const std::string once = TaskToJson(*task);
    auto again = ParseJson(once);
    Require(again.ok());
    auto task2 = DecodeTask(*again);
    Require(task2.ok());
    auto twice = ParseJson(TaskToJson(*task2));
    Require(twice.ok());
    Require(EqualButForDoubleLastBit(*again, *twice));
  }
  return 0;
}
