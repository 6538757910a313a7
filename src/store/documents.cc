#include "store/documents.h"

#include <algorithm>
#include <boost/json.hpp>
#include <limits>
#include <optional>

#include "core/json_writer.h"

namespace dray {

namespace json = boost::json;

namespace {

// Reads one stored object field by field and remembers the first error,
// so that a reader is a straight list of fields; Finish() also refuses a
// field no reader asked for.
class Doc {
 public:
  Doc(const json::object& o, std::string what) : o_(o), what_(std::move(what)) {}

  std::int64_t Int(std::string_view k, std::int64_t def = 0, std::int64_t lo = 0,
                   std::int64_t hi = std::numeric_limits<std::int64_t>::max()) {
    const json::value* v = Find(k);
    if (!v) return def;
    // (Boost.JSON reads every integer up to 2^63-1 as int64.)
    if (v->is_int64() && v->get_int64() >= lo && v->get_int64() <= hi) return v->get_int64();
    Fail(k, "is not an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return def;
  }
  template <class E>
  E Enum(std::string_view k, E def, E max) {
    return static_cast<E>(Int(k, static_cast<std::int64_t>(def), 0, static_cast<std::int64_t>(max)));
  }
  template <class E>
  E Enum(std::string_view k, E def, E min, E max) {
    return static_cast<E>(Int(k, static_cast<std::int64_t>(def), static_cast<std::int64_t>(min),
                              static_cast<std::int64_t>(max)));
  }
  std::optional<std::int64_t> OptionalInt(std::string_view k) {
    if (!o_.contains(k)) return std::nullopt;
    return Int(k, 0, std::numeric_limits<std::int64_t>::min());
  }
  double Double(std::string_view k, double def) {
    const json::value* v = Find(k);
    if (!v) return def;
    if (v->is_double()) return v->get_double();
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    Fail(k, "is not a number");
    return def;
  }
  bool Bool(std::string_view k) {
    const json::value* v = Find(k);
    if (!v) return false;
    if (v->is_bool()) return v->get_bool();
    Fail(k, "is not true or false");
    return false;
  }
  std::string String(std::string_view k, std::string def = {}) {
    const json::value* v = Find(k);
    if (!v) return def;
    if (v->is_string()) return std::string(v->get_string());
    Fail(k, "is not a string");
    return def;
  }
  // Embedded JSON (a payload) as its text; `def` when absent.
  std::string Json(std::string_view k, std::string def) {
    const json::value* v = Find(k);
    return v ? JsonText(*v) : def;
  }
  const json::object* Object(std::string_view k) {
    const json::value* v = Find(k);
    if (!v) return nullptr;
    if (v->is_object()) return &v->get_object();
    Fail(k, "is not an object");
    return nullptr;
  }
  const json::array* Array(std::string_view k) {
    const json::value* v = Find(k);
    if (!v) return nullptr;
    if (v->is_array()) return &v->get_array();
    Fail(k, "is not an array");
    return nullptr;
  }
  std::vector<std::string> Strings(std::string_view k) {
    std::vector<std::string> out;
    if (const json::array* a = Array(k)) {
      for (const json::value& x : *a) {
        if (!x.is_string()) {
          Fail(k, "holds a value that is not a string");
          break;
        }
        out.emplace_back(x.get_string());
      }
    }
    return out;
  }
  std::map<std::string, std::string> StringMap(std::string_view k) {
    std::map<std::string, std::string> out;
    if (const json::object* o = Object(k)) {
      for (const auto& [key, x] : *o) {
        if (!x.is_string()) {
          Fail(k, "holds a value that is not a string");
          break;
        }
        out.emplace(std::string(key), std::string(x.get_string()));
      }
    }
    return out;
  }
  // A nested document's error, named under this one.
  void Take(std::string_view k, const Status& s) {
    if (!s.ok() && status_.ok()) status_ = DataLoss(what_ + "." + std::string(k) + ": " + s.message());
  }
  void Fail(std::string_view k, const std::string& why) {
    if (status_.ok()) status_ = DataLoss(what_ + ": field '" + std::string(k) + "' " + why);
  }

  Status Finish() {
    if (status_.ok() && read_ != o_.size()) {
      for (const auto& kv : o_) {
        if (std::find(names_.begin(), names_.end(), kv.key()) == names_.end()) {
          Fail(kv.key(), "is not one Dray writes");
          break;
        }
      }
    }
    return status_;
  }

 private:
  const json::value* Find(std::string_view k) {
    const json::value* v = o_.if_contains(k);
    if (v) {
      ++read_;
      names_.push_back(k);
    }
    return v;
  }

  const json::object& o_;
  std::string what_;
  Status status_;
  std::size_t read_ = 0;
  std::vector<std::string_view> names_;
};

StatusOr<json::value> Parse(std::string_view text, const char* what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return DataLoss(std::string("unreadable ") + what + ": " + std::string(text.substr(0, 100)));
  return v;
}

StatusOr<json::object> ParseObject(std::string_view text, const char* what) {
  auto v = Parse(text, what);
  if (!v.ok()) return v.status();
  if (!v->is_object()) return DataLoss(std::string(what) + " is not an object");
  return std::move(v->get_object());
}

json::object BackoffObject(const Backoff& b) {
  return {{"initial_ms", b.initial_ms},
          {"max_ms", b.max_ms},
          {"multiplier", b.multiplier},
          {"jitter", b.jitter}};
}

Status ReadBackoff(const json::object& o, const std::string& what, Backoff* out) {
  Doc d(o, what);
  Backoff def;
  out->initial_ms = d.Int("initial_ms", def.initial_ms);
  out->max_ms = d.Int("max_ms", def.max_ms);
  out->multiplier = d.Double("multiplier", def.multiplier);
  out->jitter = d.Double("jitter", def.jitter);
  return d.Finish();
}

json::object SelectorObject(const LabelSelector& s) {
  json::object o{{"key", s.key}};
  if (s.op != SelectorOp::kEquals) o["op"] = static_cast<int>(s.op);
  if (!s.values.empty()) o["values"] = json::value_from(s.values);
  return o;
}

Status ReadSelector(const json::value& v, const std::string& what, LabelSelector* s,
                    std::int32_t* weight) {
  if (!v.is_object()) return DataLoss(what + " is not an object");
  Doc d(v.get_object(), what);
  s->key = d.String("key");
  s->op = d.Enum("op", SelectorOp::kEquals, SelectorOp::kNotExists);
  s->values = d.Strings("values");
  if (weight) *weight = static_cast<std::int32_t>(d.Int("weight", 1, 1, 1000));
  return d.Finish();
}

json::object PlacementObject(const Placement& p) {
  json::object o;
  if (!p.resources.empty()) {
    json::object r;
    for (const auto& [k, v] : p.resources) r[k] = v;
    o["resources"] = std::move(r);
  }
  if (!p.require.empty()) {
    json::array a;
    for (const LabelSelector& s : p.require) a.push_back(SelectorObject(s));
    o["require"] = std::move(a);
  }
  if (!p.prefer.empty()) {
    json::array a;
    for (const LabelPreference& pref : p.prefer) {
      json::object s = SelectorObject(pref.selector);
      if (pref.weight != 1) s["weight"] = pref.weight;
      a.push_back(std::move(s));
    }
    o["prefer"] = std::move(a);
  }
  if (!p.affinity_key.empty()) o["affinity_key"] = p.affinity_key;
  if (!p.worker.empty()) o["worker"] = p.worker;
  if (p.shard_index) o["shard_index"] = p.shard_index;
  if (p.shard_total) o["shard_total"] = p.shard_total;
  return o;
}

Status ReadPlacement(const json::object& o, const std::string& what, Placement* p) {
  Doc d(o, what);
  if (const json::object* r = d.Object("resources")) {
    for (const auto& [k, v] : *r) {
      if (!v.is_int64()) {
        d.Fail("resources", "holds a value that is not an integer");
        break;
      }
      p->resources.emplace(std::string(k), v.get_int64());
    }
  }
  if (const json::array* a = d.Array("require")) {
    for (const json::value& v : *a) {
      LabelSelector s;
      d.Take("require", ReadSelector(v, "selector", &s, nullptr));
      p->require.push_back(std::move(s));
    }
  }
  if (const json::array* a = d.Array("prefer")) {
    for (const json::value& v : *a) {
      LabelPreference pref;
      d.Take("prefer", ReadSelector(v, "selector", &pref.selector, &pref.weight));
      p->prefer.push_back(std::move(pref));
    }
  }
  p->affinity_key = d.String("affinity_key");
  p->worker = d.String("worker");
  p->shard_index = static_cast<std::int32_t>(d.Int("shard_index"));
  p->shard_total = static_cast<std::int32_t>(d.Int("shard_total"));
  return d.Finish();
}

// A task template (a schedule's or a trigger's): TaskSpec's fields.
json::object TaskSpecObject(const TaskSpec& s) {
  json::object o{{"type", s.type}};
  if (s.ns != "default") o["ns"] = s.ns;
  if (s.queue != "default") o["queue"] = s.queue;
  if (s.payload != "null") o["payload"] = json::parse(s.payload);
  if (s.priority) o["priority"] = s.priority;
  if (s.run_at) o["run_at"] = *s.run_at;
  if (s.delay_ms) o["delay_ms"] = *s.delay_ms;
  if (s.max_attempts) o["max_attempts"] = *s.max_attempts;
  if (s.backoff) o["backoff"] = BackoffObject(*s.backoff);
  if (s.timeout_ms) o["timeout_ms"] = *s.timeout_ms;
  if (s.lease_ms) o["lease_ms"] = *s.lease_ms;
  if (!s.key.empty()) o["key"] = s.key;
  if (!s.labels.empty()) o["labels"] = json::value_from(s.labels);
  if (!s.concurrency_key.empty()) o["concurrency_key"] = s.concurrency_key;
  if (s.concurrency_limit) o["concurrency_limit"] = *s.concurrency_limit;
  if (!s.placement.empty()) o["placement"] = PlacementObject(s.placement);
  return o;
}

Status ReadTaskSpec(const json::object& o, const std::string& what, TaskSpec* s) {
  Doc d(o, what);
  s->type = d.String("type");
  s->ns = d.String("ns", "default");
  s->queue = d.String("queue", "default");
  s->payload = d.Json("payload", "null");
  s->priority = static_cast<std::int32_t>(
      d.Int("priority", 0, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()));
  s->run_at = d.OptionalInt("run_at");
  s->delay_ms = d.OptionalInt("delay_ms");
  if (auto m = d.OptionalInt("max_attempts")) s->max_attempts = static_cast<std::int32_t>(*m);
  if (const json::object* b = d.Object("backoff")) {
    s->backoff.emplace();
    d.Take("backoff", ReadBackoff(*b, "backoff", &*s->backoff));
  }
  s->timeout_ms = d.OptionalInt("timeout_ms");
  s->lease_ms = d.OptionalInt("lease_ms");
  s->key = d.String("key");
  s->labels = d.StringMap("labels");
  s->concurrency_key = d.String("concurrency_key");
  if (auto l = d.OptionalInt("concurrency_limit")) s->concurrency_limit = static_cast<std::int32_t>(*l);
  if (const json::object* p = d.Object("placement")) {
    d.Take("placement", ReadPlacement(*p, "placement", &s->placement));
  }
  return d.Finish();
}

}  // namespace

std::string BackoffDocument(const Backoff& b) { return JsonText(BackoffObject(b)); }

Status ReadBackoffDocument(std::string_view text, Backoff* out) {
  auto o = ParseObject(text, "backoff");
  if (!o.ok()) return o.status();
  return ReadBackoff(*o, "backoff", out);
}

std::string LabelsDocument(const std::map<std::string, std::string>& labels) {
  return JsonText(json::value_from(labels));
}

Status ReadLabelsDocument(std::string_view text, std::map<std::string, std::string>* out) {
  auto o = ParseObject(text, "labels");
  if (!o.ok()) return o.status();
  for (const auto& [k, x] : *o) {
    if (!x.is_string()) return DataLoss("label '" + std::string(k) + "' is not a string");
    out->emplace(std::string(k), std::string(x.get_string()));
  }
  return Status::Ok();
}

// Written directly: a task's history is rewritten on every transition.
std::string HistoryDocument(const std::vector<Attempt>& history) {
  std::string out;
  out.reserve(2 + history.size() * 96);
  out.push_back('[');
  for (const Attempt& h : history) {
    if (out.size() > 1) out.push_back(',');
    out += "{\"number\":";
    out += std::to_string(h.number);
    out += ",\"worker\":";
    AppendJsonString(h.worker, &out);
    out += ",\"started_at\":";
    out += std::to_string(h.started_at);
    out += ",\"ended_at\":";
    out += std::to_string(h.ended_at);
    out += ",\"outcome\":";
    out += std::to_string(static_cast<int>(h.outcome));
    out += ",\"error\":";
    AppendJsonString(h.error, &out);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

Status ReadHistoryDocument(std::string_view text, std::vector<Attempt>* out) {
  auto v = Parse(text, "attempt history");
  if (!v.ok()) return v.status();
  if (!v->is_array()) return DataLoss("attempt history is not an array");
  for (const json::value& x : v->get_array()) {
    if (!x.is_object()) return DataLoss("an attempt in the history is not an object");
    Doc d(x.get_object(), "attempt");
    Attempt a;
    a.number = static_cast<std::int32_t>(d.Int("number", 0, 0, std::numeric_limits<std::int32_t>::max()));
    a.worker = d.String("worker");
    a.started_at = d.Int("started_at");
    a.ended_at = d.Int("ended_at");
    a.outcome = d.Enum("outcome", AttemptOutcome::kRunning, AttemptOutcome::kCancelled);
    a.error = d.String("error");
    DRAY_RETURN_IF_ERROR(d.Finish());
    out->push_back(std::move(a));
  }
  return Status::Ok();
}

std::string FlowDocument(const Task& t) {
  if (t.concurrency_key.empty() && t.concurrency_limit == 0 && t.node.empty() &&
      t.depends_on.empty() && t.on_dep_failure == DepFailure::kCancel && t.placement.empty()) {
    return {};
  }
  json::object o;
  if (!t.placement.empty()) o["placement"] = PlacementObject(t.placement);
  if (!t.concurrency_key.empty()) o["concurrency_key"] = t.concurrency_key;
  if (t.concurrency_limit) o["concurrency_limit"] = t.concurrency_limit;
  if (!t.node.empty()) o["node"] = t.node;
  if (!t.depends_on.empty()) o["depends_on"] = json::value_from(t.depends_on);
  if (t.on_dep_failure != DepFailure::kCancel) o["on_dep_failure"] = static_cast<int>(t.on_dep_failure);
  return JsonText(o);
}

Status ReadFlowDocument(std::string_view text, Task* t) {
  if (text.empty()) return Status::Ok();
  auto o = ParseObject(text, "flow");
  if (!o.ok()) return o.status();
  Doc d(*o, "flow");
  if (const json::object* p = d.Object("placement")) {
    d.Take("placement", ReadPlacement(*p, "placement", &t->placement));
  }
  t->concurrency_key = d.String("concurrency_key");
  t->concurrency_limit = static_cast<std::int32_t>(d.Int("concurrency_limit"));
  t->node = d.String("node");
  t->depends_on = d.Strings("depends_on");
  t->on_dep_failure = d.Enum("on_dep_failure", DepFailure::kCancel, DepFailure::kContinue);
  return d.Finish();
}

std::string QueueSettingsDocument(const QueueSettings& s) {
  const QueueSettings def;
  json::object o;
  if (s.paused) o["paused"] = true;
  if (s.lease_ms != def.lease_ms) o["lease_ms"] = s.lease_ms;
  if (s.max_attempts != def.max_attempts) o["max_attempts"] = s.max_attempts;
  if (s.backoff != def.backoff) o["backoff"] = BackoffObject(s.backoff);
  if (s.concurrency != def.concurrency) o["concurrency"] = s.concurrency;
  if (s.key_concurrency != def.key_concurrency) o["key_concurrency"] = s.key_concurrency;
  if (s.rate != def.rate) o["rate"] = s.rate;
  if (s.burst != def.burst) o["burst"] = s.burst;
  if (s.weight != def.weight) o["weight"] = s.weight;
  if (s.placement != def.placement) o["placement"] = static_cast<int>(s.placement);
  return JsonText(o);
}

Status ReadQueueSettingsDocument(std::string_view text, QueueSettings* out) {
  auto o = ParseObject(text, "queue settings");
  if (!o.ok()) return o.status();
  Doc d(*o, "queue settings");
  const QueueSettings def;
  QueueSettings s;
  s.paused = d.Bool("paused");
  s.lease_ms = d.Int("lease_ms", def.lease_ms);
  s.max_attempts = static_cast<std::int32_t>(d.Int("max_attempts", def.max_attempts, 0, 1'000'000));
  if (const json::object* b = d.Object("backoff")) d.Take("backoff", ReadBackoff(*b, "backoff", &s.backoff));
  s.concurrency = static_cast<std::int32_t>(d.Int("concurrency", def.concurrency, 0, 1'000'000'000));
  s.key_concurrency =
      static_cast<std::int32_t>(d.Int("key_concurrency", def.key_concurrency, 0, 1'000'000'000));
  s.rate = d.Double("rate", def.rate);
  s.burst = static_cast<std::int32_t>(d.Int("burst", def.burst, 0, 1'000'000'000));
  s.weight = static_cast<std::int32_t>(d.Int("weight", def.weight, 0, 1'000'000));
  s.placement = d.Enum("placement", def.placement, PlacementPolicy::kSpread);
  DRAY_RETURN_IF_ERROR(d.Finish());
  *out = s;
  return Status::Ok();
}

std::string ScheduleDocument(const Schedule& s) {
  const ScheduleSpec& p = s.spec;
  const ScheduleSpec def;
  json::object o{{"ns", p.ns}, {"id", p.id}, {"task", TaskSpecObject(p.task)}};
  if (!p.name.empty()) o["name"] = p.name;
  if (!p.cron.empty()) o["cron"] = p.cron;
  if (p.timezone != def.timezone) o["timezone"] = p.timezone;
  if (p.interval_ms) o["interval_ms"] = p.interval_ms;
  if (p.misfire != def.misfire) o["misfire"] = static_cast<int>(p.misfire);
  if (p.overlap != def.overlap) o["overlap"] = static_cast<int>(p.overlap);
  if (p.jitter_ms) o["jitter_ms"] = p.jitter_ms;
  if (p.start_at) o["start_at"] = *p.start_at;
  if (p.end_at) o["end_at"] = *p.end_at;
  if (p.paused) o["paused"] = true;
  if (p.max_catchup != def.max_catchup) o["max_catchup"] = p.max_catchup;
  o["created_at"] = s.created_at;
  o["updated_at"] = s.updated_at;
  if (s.last_tick) o["last_tick"] = s.last_tick;
  if (s.last_fired_at) o["last_fired_at"] = s.last_fired_at;
  if (!s.last_task.empty()) o["last_task"] = s.last_task;
  if (s.buffered_tick) o["buffered_tick"] = s.buffered_tick;
  if (s.fired) o["fired"] = s.fired;
  if (s.skipped) o["skipped"] = s.skipped;
  return JsonText(o);
}

StatusOr<Schedule> ReadScheduleDocument(std::string_view text) {
  auto o = ParseObject(text, "schedule");
  if (!o.ok()) return o.status();
  Doc d(*o, "schedule");
  Schedule s;
  ScheduleSpec& p = s.spec;
  const ScheduleSpec def;
  p.ns = d.String("ns", def.ns);
  p.id = d.String("id");
  if (const json::object* t = d.Object("task")) d.Take("task", ReadTaskSpec(*t, "task", &p.task));
  p.name = d.String("name");
  p.cron = d.String("cron");
  p.timezone = d.String("timezone", def.timezone);
  p.interval_ms = d.Int("interval_ms");
  p.misfire = d.Enum("misfire", def.misfire, MisfirePolicy::kAll);
  p.overlap = d.Enum("overlap", def.overlap, OverlapPolicy::kCancelPrevious);
  p.jitter_ms = d.Int("jitter_ms");
  p.start_at = d.OptionalInt("start_at");
  p.end_at = d.OptionalInt("end_at");
  p.paused = d.Bool("paused");
  p.max_catchup = static_cast<std::int32_t>(d.Int("max_catchup", def.max_catchup, 0, 1'000'000));
  s.created_at = d.Int("created_at");
  s.updated_at = d.Int("updated_at");
  s.last_tick = d.Int("last_tick");
  s.last_fired_at = d.Int("last_fired_at");
  s.last_task = d.String("last_task");
  s.buffered_tick = d.Int("buffered_tick");
  s.fired = d.Int("fired");
  s.skipped = d.Int("skipped");
  DRAY_RETURN_IF_ERROR(d.Finish());
  if (p.id.empty() || p.task.type.empty()) return DataLoss("schedule: no id or no task type");
  return s;
}

std::string TriggerDocument(const Trigger& t) {
  const TriggerSpec& p = t.spec;
  json::object o{{"ns", p.ns}, {"id", p.id}, {"task", TaskSpecObject(p.task)}};
  if (!p.name.empty()) o["name"] = p.name;
  if (!p.event.empty()) o["event"] = p.event;
  if (!p.match.empty()) {
    json::array m;
    for (const auto& [path, value] : p.match) m.push_back(json::array{json::value(path), json::parse(value)});
    o["match"] = std::move(m);
  }
  if (p.on_task) o["on_task"] = true;
  if (!p.task_queue.empty()) o["task_queue"] = p.task_queue;
  if (!p.task_type.empty()) o["task_type"] = p.task_type;
  if (!p.task_states.empty()) {
    json::array states;
    for (TaskState st : p.task_states) states.push_back(static_cast<int>(st));
    o["task_states"] = std::move(states);
  }
  if (p.paused) o["paused"] = true;
  o["created_at"] = t.created_at;
  o["updated_at"] = t.updated_at;
  return JsonText(o);
}

StatusOr<Trigger> ReadTriggerDocument(std::string_view text) {
  auto o = ParseObject(text, "trigger");
  if (!o.ok()) return o.status();
  Doc d(*o, "trigger");
  Trigger t;
  TriggerSpec& p = t.spec;
  p.ns = d.String("ns", "default");
  p.id = d.String("id");
  if (const json::object* x = d.Object("task")) d.Take("task", ReadTaskSpec(*x, "task", &p.task));
  p.name = d.String("name");
  p.event = d.String("event");
  if (const json::array* m = d.Array("match")) {
    for (const json::value& pair : *m) {
      if (!pair.is_array() || pair.get_array().size() != 2 || !pair.get_array()[0].is_string()) {
        d.Fail("match", "holds an entry that is not [path, value]");
        break;
      }
      p.match.emplace_back(std::string(pair.get_array()[0].get_string()), JsonText(pair.get_array()[1]));
    }
  }
  p.on_task = d.Bool("on_task");
  p.task_queue = d.String("task_queue");
  p.task_type = d.String("task_type");
  if (const json::array* states = d.Array("task_states")) {
    for (const json::value& x : *states) {
      if (!x.is_int64() || x.get_int64() < static_cast<int>(TaskState::kScheduled) ||
          x.get_int64() > static_cast<int>(TaskState::kCancelled)) {
        d.Fail("task_states", "holds a value that is not a task state");
        break;
      }
      p.task_states.push_back(static_cast<TaskState>(x.get_int64()));
    }
  }
  p.paused = d.Bool("paused");
  t.created_at = d.Int("created_at");
  t.updated_at = d.Int("updated_at");
  DRAY_RETURN_IF_ERROR(d.Finish());
  if (p.id.empty() || p.task.type.empty()) return DataLoss("trigger: no id or no task type");
  return t;
}

std::string StringListDocument(const std::vector<std::string>& items) {
  return JsonText(json::value_from(items));
}

Status ReadStringListDocument(std::string_view text, std::vector<std::string>* out) {
  auto v = Parse(text, "list");
  if (!v.ok()) return v.status();
  if (!v->is_array()) return DataLoss("a stored list is not an array");
  for (const json::value& x : v->get_array()) {
    if (!x.is_string()) return DataLoss("a stored list holds a value that is not a string");
    out->emplace_back(x.get_string());
  }
  return Status::Ok();
}

}  // namespace dray
