#include "core/json_codec.h"

#include <boost/json.hpp>
#include <cmath>
#include <limits>

#include "core/cron.h"
#include "core/json_fields.h"
#include "core/json_writer.h"
#include "core/time_format.h"

namespace json = boost::json;

namespace dray {
namespace {

Status WrongType(std::string_view field, std::string_view want) {
  return FieldError(field, "must be " + std::string(want));
}

}  // namespace

Status CheckFinite(const json::value& v, std::string_view field) {
  // Iterative: a payload may nest as deep as the parser allows.
  std::vector<const json::value*> stack = {&v};
  while (!stack.empty()) {
    const json::value* x = stack.back();
    stack.pop_back();
    if (x->is_double() && !std::isfinite(x->get_double())) {
      return InvalidArgument("field '" + std::string(field) +
                             "' holds a number too large for a double (JSON has no infinity)");
    }
    if (x->is_array()) {
      for (const json::value& y : x->get_array()) stack.push_back(&y);
    } else if (x->is_object()) {
      for (const auto& kv : x->get_object()) stack.push_back(&kv.value());
    }
  }
  return Status::Ok();
}

namespace {

Status CheckPrintable(std::string_view field, std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgument("field '" + std::string(field) + "' contains a control character");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<json::value> ParseJson(std::string_view body) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 64;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) return Malformed("request body is not valid JSON: " + ec.message());
  return v;
}

Status ValidateName(std::string_view field, std::string_view value, const Limits& limits) {
  if (value.empty()) return InvalidArgument("field '" + std::string(field) + "' must not be empty");
  if (value.size() > limits.max_name_bytes) {
    return InvalidArgument("field '" + std::string(field) + "' is longer than " +
                           std::to_string(limits.max_name_bytes) + " bytes");
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) {
      return InvalidArgument("field '" + std::string(field) +
                             "' may hold only letters, digits and _ - . :");
    }
  }
  return Status::Ok();
}

StatusOr<Backoff> DecodeBackoff(const json::value& v, std::string_view field) {
  if (!v.is_object()) return WrongType(field, "an object");
  Backoff b;
  for (const auto& [k, x] : v.get_object()) {
    if (x.is_null()) continue;  // absent
    std::string f = FieldPath(field, k);
    if (k == "initial_ms") {
      auto r = ReadInt(x, f, 0, 86'400'000LL * 365);
      if (!r.ok()) return r.status();
      b.initial_ms = *r;
    } else if (k == "max_ms") {
      auto r = ReadInt(x, f, 0, 86'400'000LL * 365);
      if (!r.ok()) return r.status();
      b.max_ms = *r;
    } else if (k == "multiplier") {
      auto r = ReadNumber(x, f, 1.0, 100.0);
      if (!r.ok()) return r.status();
      b.multiplier = *r;
    } else if (k == "jitter") {
      auto r = ReadNumber(x, f, 0.0, 1.0);
      if (!r.ok()) return r.status();
      b.jitter = *r;
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (b.max_ms < b.initial_ms) {
    return InvalidArgument("field '" + FieldPath(field, "max_ms") + "' must not be below initial_ms");
  }
  return b;
}

namespace {
// Labels: an object of at most max_labels strings, keys and values bounded.
Status GetLabels(const json::value& x, const std::string& f, const Limits& limits,
                 std::map<std::string, std::string>* into) {
  if (!x.is_object()) return WrongType(f, "an object of strings");
  if (x.get_object().size() > limits.max_labels) {
    return InvalidArgument("field '" + f + "' has more than " +
                           std::to_string(limits.max_labels) + " labels");
  }
  for (const auto& [lk, lv] : x.get_object()) {
    if (lv.is_null()) continue;  // absent
    if (lk.empty() || lk.size() > limits.max_label_bytes) {
      return InvalidArgument("label keys in '" + f + "' must be 1.." +
                             std::to_string(limits.max_label_bytes) + " bytes");
    }
    auto r = ReadString(lv, FieldPath(f, lk), limits.max_label_bytes, Empty::kAllowed);
    if (!r.ok()) return r.status();
    into->emplace(std::string(lk), std::move(*r));
  }
  return Status::Ok();
}
}  // namespace

namespace {
Limits WideLimits();

constexpr std::size_t kMaxResources = 64;
constexpr std::size_t kMaxSelectors = 32;
constexpr std::size_t kMaxSelectorValues = 64;

// A label selector: {"key", "op", "values"} ("value" for equals), or the
// short forms "k=v", "k!=v", "k" (exists) and "!k" (not exists).
StatusOr<LabelSelector> DecodeSelector(const json::value& x, const std::string& f,
                                       const Limits& limits) {
  LabelSelector sel;
  if (x.is_string()) {
    std::string_view text = x.get_string();
    if (auto eq = text.find("!="); eq != std::string_view::npos) {
      sel.key = std::string(text.substr(0, eq));
      sel.op = SelectorOp::kNotIn;
      sel.values.emplace_back(text.substr(eq + 2));
    } else if (auto e = text.find('='); e != std::string_view::npos) {
      sel.key = std::string(text.substr(0, e));
      sel.values.emplace_back(text.substr(e + 1));
    } else if (!text.empty() && text.front() == '!') {
      sel.key = std::string(text.substr(1));
      sel.op = SelectorOp::kNotExists;
    } else {
      sel.key = std::string(text);
      sel.op = SelectorOp::kExists;
    }
  } else if (x.is_object()) {
    bool has_op = false;
    for (const auto& [k, y] : x.get_object()) {
      if (y.is_null()) continue;  // absent
      const std::string kf = FieldPath(f, k);
      if (k == "key") {
        auto r = ReadString(y, kf, limits.max_label_bytes);
        if (!r.ok()) return r.status();
        sel.key = std::move(*r);
      } else if (k == "op") {
        if (!y.is_string()) return WrongType(kf, "a string");
        auto op = ParseSelectorOp(y.get_string());
        if (!op) return InvalidArgument("field '" + kf + "' must be equals, in, not_in, exists or not_exists");
        sel.op = *op;
        has_op = true;
      } else if (k == "value") {
        auto r = ReadString(y, kf, limits.max_label_bytes, Empty::kAllowed);
        if (!r.ok()) return r.status();
        sel.values.assign(1, std::move(*r));
      } else if (k == "values") {
        if (!y.is_array()) return WrongType(kf, "a list of strings");
        if (y.get_array().size() > kMaxSelectorValues) {
          return InvalidArgument("field '" + kf + "' holds more than " +
                                 std::to_string(kMaxSelectorValues) + " values");
        }
        sel.values.clear();
        for (std::size_t i = 0; i < y.get_array().size(); ++i) {
          auto r = ReadString(y.get_array()[i], kf + "[" + std::to_string(i) + "]",
                             limits.max_label_bytes, Empty::kAllowed);
          if (!r.ok()) return r.status();
          sel.values.push_back(std::move(*r));
        }
      } else if (k != "weight") {
        return FieldError(kf, "is unknown");
      }
    }
    if (!has_op) sel.op = sel.values.size() == 1 ? SelectorOp::kEquals : SelectorOp::kIn;
  } else {
    return WrongType(f, "a selector object or a string like \"zone=a\"");
  }
  if (sel.key.empty() || sel.key.size() > limits.max_label_bytes) {
    return InvalidArgument("field '" + f + "' needs a label key of 1.." +
                           std::to_string(limits.max_label_bytes) + " bytes");
  }
  for (const std::string& v : sel.values) {  // the short forms' too
    if (v.size() > limits.max_label_bytes) {
      return InvalidArgument("field '" + f + "' has a value longer than " +
                             std::to_string(limits.max_label_bytes) + " bytes");
    }
  }
  const bool takes_values = sel.op == SelectorOp::kEquals || sel.op == SelectorOp::kIn ||
                            sel.op == SelectorOp::kNotIn;
  if (takes_values && sel.values.empty()) {
    return InvalidArgument("field '" + f + "': '" + std::string(SelectorOpName(sel.op)) +
                           "' needs a value");
  }
  if (sel.op == SelectorOp::kEquals && sel.values.size() != 1) {
    return InvalidArgument("field '" + f + "': 'equals' takes one value");
  }
  if (!takes_values && !sel.values.empty()) {
    return InvalidArgument("field '" + f + "': '" + std::string(SelectorOpName(sel.op)) +
                           "' takes no values");
  }
  return sel;
}

json::value EncodeSelector(const LabelSelector& s) {
  json::object o{{"key", s.key}, {"op", SelectorOpName(s.op)}};
  if (!s.values.empty()) {
    json::array values;
    for (const std::string& v : s.values) values.push_back(json::value(v));
    o["values"] = std::move(values);
  }
  return o;
}

}  // namespace

Status DecodePlacementField(std::string_view k, const json::value& x, const std::string& f,
                            const Limits& limits, Placement* p, bool* known) {
  *known = true;
  if (k == "resources") {
    if (!x.is_object()) return WrongType(f, "an object of resource names to integers");
    if (x.get_object().size() > kMaxResources) {
      return InvalidArgument("field '" + f + "' names more than " + std::to_string(kMaxResources) +
                             " resources");
    }
    for (const auto& [name, amount] : x.get_object()) {
      if (amount.is_null()) continue;  // absent
      const std::string rf = f + "." + std::string(name);
      DRAY_RETURN_IF_ERROR(ValidateName(rf, name, limits));
      auto n = ReadInt(amount, rf, 0, std::int64_t{1} << 50);
      if (!n.ok()) return n.status();
      if (*n > 0) p->resources[std::string(name)] = *n;
    }
  } else if (k == "require" || k == "prefer") {
    if (!x.is_array()) return WrongType(f, "a list of label selectors");
    if (x.get_array().size() > kMaxSelectors) {
      return InvalidArgument("field '" + f + "' holds more than " +
                             std::to_string(kMaxSelectors) + " selectors");
    }
    for (std::size_t i = 0; i < x.get_array().size(); ++i) {
      const json::value& y = x.get_array()[i];
      const std::string ef = f + "[" + std::to_string(i) + "]";
      auto sel = DecodeSelector(y, ef, limits);
      if (!sel.ok()) return sel.status();
      if (k == "require") {
        if (y.is_object() && FindField(y.get_object(), "weight")) {
          return InvalidArgument("field '" + ef + ".weight': a requirement has no weight");
        }
        p->require.push_back(std::move(*sel));
        continue;
      }
      LabelPreference pref{std::move(*sel), 1};
      if (const json::value* w = y.is_object() ? FindField(y.get_object(), "weight") : nullptr) {
        auto n = ReadInt(*w, ef + ".weight", 1, 1000);
        if (!n.ok()) return n.status();
        pref.weight = static_cast<std::int32_t>(*n);
      }
      p->prefer.push_back(std::move(pref));
    }
  } else if (k == "affinity_key") {
    if (x.is_null()) return Status::Ok();
    auto r = ReadString(x, f, limits.max_key_bytes);
    if (!r.ok()) return r.status();
    p->affinity_key = std::move(*r);
  } else {
    *known = false;
  }
  return Status::Ok();
}

json::object EncodePlacement(const Placement& p) {
  json::object o;
  if (!p.resources.empty()) {
    json::object r;
    for (const auto& [k, v] : p.resources) r[k] = v;
    o["resources"] = std::move(r);
  }
  if (!p.require.empty()) {
    json::array a;
    for (const LabelSelector& s : p.require) a.push_back(EncodeSelector(s));
    o["require"] = std::move(a);
  }
  if (!p.prefer.empty()) {
    json::array a;
    for (const LabelPreference& pref : p.prefer) {
      json::value v = EncodeSelector(pref.selector);
      v.get_object()["weight"] = pref.weight;
      a.push_back(std::move(v));
    }
    o["prefer"] = std::move(a);
  }
  if (!p.affinity_key.empty()) o["affinity_key"] = p.affinity_key;
  if (p.shard_total > 0 || !p.worker.empty()) {
    o["broadcast"] = json::object{
        {"worker", p.worker}, {"shard_index", p.shard_index}, {"shard_total", p.shard_total}};
  }
  return o;
}

std::string PlacementToJson(const Placement& p) {
  std::string text = JsonText(EncodePlacement(p));
  return text.size() <= 2 ? std::string() : text.substr(1, text.size() - 2);
}

Placement DecodePlacement(const json::object& o) {
  Placement p;
  for (const auto& [k, x] : o) {
    bool known = false;
    (void)DecodePlacementField(k, x, std::string(k), WideLimits(), &p, &known);
  }
  if (const json::value* b = o.if_contains("broadcast"); b && b->is_object()) {
    p.worker = JsonString(b->get_object(), "worker");
    p.shard_index = static_cast<std::int32_t>(JsonInt(b->get_object(), "shard_index"));
    p.shard_total = static_cast<std::int32_t>(JsonInt(b->get_object(), "shard_total"));
  }
  return p;
}

StatusOr<TaskSpec> DecodeTaskSpec(const json::value& v, const Limits& limits,
                                  std::string_view where) {
  if (!v.is_object()) return WrongType(where.empty() ? "task" : where, "an object");
  TaskSpec spec;
  bool has_type = false;
  for (const auto& [k, x] : v.get_object()) {
    if (x.is_null() && k != "payload") continue;  // absent; a null payload is a value
    std::string f = FieldPath(where, k);
    if (k == "type") {
      auto r = ReadString(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      DRAY_RETURN_IF_ERROR(CheckPrintable(f, *r));
      spec.type = std::move(*r);
      has_type = true;
    } else if (k == "queue" || k == "namespace") {
      auto r = ReadString(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      DRAY_RETURN_IF_ERROR(ValidateName(f, *r, limits));
      (k == "queue" ? spec.queue : spec.ns) = std::move(*r);
    } else if (k == "payload") {
      DRAY_RETURN_IF_ERROR(CheckFinite(x, f));
      spec.payload = JsonText(x);
      if (spec.payload.size() > limits.max_payload_bytes) {
        return OutOfRange("field '" + f + "' is " + std::to_string(spec.payload.size()) +
                          " bytes; the limit is " + std::to_string(limits.max_payload_bytes));
      }
    } else if (k == "priority") {
      auto r = ReadInt(x, f, -1'000'000, 1'000'000);
      if (!r.ok()) return r.status();
      spec.priority = static_cast<std::int32_t>(*r);
    } else if (k == "run_at") {
      if (x.is_null()) continue;
      if (!x.is_string()) return WrongType(f, "an RFC 3339 time string");
      auto t = ParseRfc3339(x.get_string());
      if (!t) return InvalidArgument("field '" + f + "' is not an RFC 3339 time");
      spec.run_at = *t;
    } else if (k == "delay_ms") {
      auto r = ReadInt(x, f, 0, limits.max_delay_ms);
      if (!r.ok()) return r.status();
      spec.delay_ms = *r;
    } else if (k == "max_attempts") {
      auto r = ReadInt(x, f, 1, limits.max_attempts_cap);
      if (!r.ok()) return r.status();
      spec.max_attempts = static_cast<std::int32_t>(*r);
    } else if (k == "backoff") {
      auto r = DecodeBackoff(x, f);
      if (!r.ok()) return r.status();
      spec.backoff = *r;
    } else if (k == "timeout_ms") {
      auto r = ReadInt(x, f, 0, 86'400'000LL * 30);
      if (!r.ok()) return r.status();
      spec.timeout_ms = *r;
    } else if (k == "lease_ms") {
      auto r = ReadInt(x, f, 100, 86'400'000LL);
      if (!r.ok()) return r.status();
      spec.lease_ms = *r;
    } else if (k == "key") {
      if (x.is_null()) continue;
      auto r = ReadString(x, f, limits.max_key_bytes);
      if (!r.ok()) return r.status();
      spec.key = std::move(*r);
    } else if (k == "concurrency_key") {
      if (x.is_null()) continue;
      auto r = ReadString(x, f, limits.max_key_bytes);
      if (!r.ok()) return r.status();
      if (r->empty()) return InvalidArgument("field '" + f + "' must not be empty");
      spec.concurrency_key = std::move(*r);
    } else if (k == "concurrency_limit") {
      auto r = ReadInt(x, f, 1, kMaxKeyConcurrency);
      if (!r.ok()) return r.status();
      spec.concurrency_limit = static_cast<std::int32_t>(*r);
    } else if (k == "labels") {
      DRAY_RETURN_IF_ERROR(GetLabels(x, f, limits, &spec.labels));
    } else {
      bool known = false;
      DRAY_RETURN_IF_ERROR(DecodePlacementField(k, x, f, limits, &spec.placement, &known));
      if (!known) return FieldError(f, "is unknown");
    }
  }
  if (!has_type) return InvalidArgument("field '" + FieldPath(where, "type") + "' is required");
  if (spec.run_at && spec.delay_ms) {
    return InvalidArgument("fields '" + FieldPath(where, "run_at") + "' and '" +
                           FieldPath(where, "delay_ms") + "' exclude each other");
  }
  if (spec.concurrency_limit && spec.concurrency_key.empty()) {
    return InvalidArgument("field '" + FieldPath(where, "concurrency_limit") +
                           "' needs a concurrency_key");
  }
  return spec;
}

StatusOr<SubmitRequest> DecodeSubmit(const json::value& body, const Limits& limits) {
  SubmitRequest req;
  if (!body.is_object()) return WrongType("body", "an object");
  const json::object& o = body.get_object();
  if (const json::value* tasks = FindField(o, "tasks")) {
    if (o.size() != 1) return InvalidArgument("a batch body holds only the field 'tasks'");
    if (!tasks->is_array()) return WrongType("tasks", "an array of task specs");
    const json::array& a = tasks->get_array();
    if (a.empty()) return InvalidArgument("field 'tasks' must not be empty");
    if (a.size() > limits.max_batch) {
      return OutOfRange("field 'tasks' holds " + std::to_string(a.size()) +
                        " tasks; the limit is " + std::to_string(limits.max_batch));
    }
    req.batch = true;
    req.specs.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      auto s = DecodeTaskSpec(a[i], limits, "tasks[" + std::to_string(i) + "]");
      if (!s.ok()) return s.status();
      req.specs.push_back(std::move(*s));
    }
    return req;
  }
  auto s = DecodeTaskSpec(body, limits);
  if (!s.ok()) return s.status();
  req.specs.push_back(std::move(*s));
  return req;
}

namespace {

StatusOr<DepFailure> GetDepFailure(const json::value& x, const std::string& f) {
  if (!x.is_string()) return WrongType(f, "\"cancel\" or \"continue\"");
  auto p = ParseDepFailure(x.get_string());
  if (!p) return InvalidArgument("field '" + f + "' must be \"cancel\" or \"continue\"");
  return *p;
}

StatusOr<WorkflowNodeSpec> DecodeWorkflowNode(const json::value& v, const Limits& limits,
                                              const std::string& where) {
  if (!v.is_object()) return WrongType(where, "an object");
  WorkflowNodeSpec node;
  json::object rest;  // the task spec's own fields
  bool has_name = false;
  for (const auto& [k, x] : v.get_object()) {
    if (x.is_null() && k != "payload") continue;  // absent; a null payload is a value
    std::string f = FieldPath(where, k);
    if (k == "name") {
      auto r = ReadString(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      DRAY_RETURN_IF_ERROR(ValidateName(f, *r, limits));
      node.name = std::move(*r);
      has_name = true;
    } else if (k == "depends_on") {
      if (!x.is_array()) return WrongType(f, "an array of task names or ids");
      const json::array& a = x.get_array();
      if (a.size() > limits.max_workflow_tasks) {
        return OutOfRange("field '" + f + "' names more than " +
                          std::to_string(limits.max_workflow_tasks) + " tasks");
      }
      for (std::size_t i = 0; i < a.size(); ++i) {
        auto r = ReadString(a[i], f + "[" + std::to_string(i) + "]", limits.max_name_bytes);
        if (!r.ok()) return r.status();
        node.depends_on.push_back(std::move(*r));
      }
    } else if (k == "on_failure") {
      auto r = GetDepFailure(x, f);
      if (!r.ok()) return r.status();
      node.on_failure = *r;
    } else if (k == "namespace") {
      return InvalidArgument("field '" + f + "': a workflow's tasks are in its namespace");
    } else {
      rest.emplace(k, x);
    }
  }
  if (!has_name) return InvalidArgument("field '" + FieldPath(where, "name") + "' is required");
  auto spec = DecodeTaskSpec(rest, limits, where);
  if (!spec.ok()) return spec.status();
  node.task = std::move(*spec);
  return node;
}

}  // namespace

StatusOr<WorkflowSpec> DecodeWorkflowSpec(const json::value& body, const Limits& limits) {
  if (!body.is_object()) return WrongType("body", "an object");
  WorkflowSpec spec;
  bool has_tasks = false;
  for (const auto& [k, x] : body.get_object()) {
    if (x.is_null()) continue;  // absent
    std::string f(k);
    if (k == "name") {
      auto r = ReadString(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      DRAY_RETURN_IF_ERROR(CheckPrintable(f, *r));
      spec.name = std::move(*r);
    } else if (k == "on_failure") {
      auto r = GetDepFailure(x, f);
      if (!r.ok()) return r.status();
      spec.on_failure = *r;
    } else if (k == "tasks") {
      if (!x.is_array()) return WrongType(f, "an array of tasks");
      const json::array& a = x.get_array();
      if (a.empty()) return InvalidArgument("field 'tasks' must not be empty");
      if (a.size() > limits.max_workflow_tasks) {
        return OutOfRange("field 'tasks' holds " + std::to_string(a.size()) +
                          " tasks; the limit is " + std::to_string(limits.max_workflow_tasks));
      }
      spec.tasks.reserve(a.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        auto n = DecodeWorkflowNode(a[i], limits, "tasks[" + std::to_string(i) + "]");
        if (!n.ok()) return n.status();
        spec.tasks.push_back(std::move(*n));
      }
      has_tasks = true;
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (!has_tasks) return InvalidArgument("field 'tasks' is required");
  return spec;
}

namespace {
// An id or a name Dray keys things by: 1..max_name_bytes of [A-Za-z0-9_.:-].
StatusOr<std::string> GetName(const json::value& v, const std::string& f, const Limits& limits) {
  auto r = ReadString(v, f, limits.max_name_bytes);
  if (!r.ok()) return r.status();
  DRAY_RETURN_IF_ERROR(ValidateName(f, *r, limits));
  return r;
}
// Free text for people: 1..max_bytes of printable characters.
StatusOr<std::string> GetText(const json::value& v, const std::string& f, std::size_t max_bytes) {
  auto r = ReadString(v, f, max_bytes);
  if (!r.ok()) return r.status();
  DRAY_RETURN_IF_ERROR(CheckPrintable(f, *r));
  return r;
}

// The task template of a schedule or a trigger: a task spec that each
// firing submits, so without a namespace (the owner's), a run_at or a key.
StatusOr<TaskSpec> DecodeTemplate(const json::value& x, const Limits& limits,
                                  std::string_view whose) {
  auto t = DecodeTaskSpec(x, limits, "task");
  if (!t.ok()) return t.status();
  if (FindField(x.get_object(), "namespace")) {
    return InvalidArgument("field 'task.namespace': " + std::string(whose) +
                           " tasks are in its namespace");
  }
  if (t->run_at) {
    return InvalidArgument("field 'task.run_at': each firing submits its task then "
                           "(delay_ms may put it later)");
  }
  if (!t->key.empty()) {
    return InvalidArgument("field 'task.key': every firing would find the first one's task");
  }
  return t;
}
}  // namespace

StatusOr<ScheduleSpec> DecodeScheduleSpec(const json::value& body, const Limits& limits) {
  if (!body.is_object()) return WrongType("body", "an object");
  ScheduleSpec spec;
  bool has_task = false, has_timezone = false;
  for (const auto& [k, x] : body.get_object()) {
    if (x.is_null()) continue;  // absent
    const std::string f(k);
    if (k == "id") {
      auto r = GetName(x, f, limits);
      if (!r.ok()) return r.status();
      spec.id = std::move(*r);
    } else if (k == "name") {
      auto r = GetText(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      spec.name = std::move(*r);
    } else if (k == "cron") {
      auto r = ReadString(x, f, 256);
      if (!r.ok()) return r.status();
      auto c = CronExpr::Parse(*r);
      if (!c.ok()) return InvalidArgument("field 'cron': " + c.status().message());
      spec.cron = std::move(*r);
    } else if (k == "timezone") {
      auto r = ReadString(x, f, 64);
      if (!r.ok()) return r.status();
      auto z = TimeZone::Load(*r);
      if (!z.ok()) return InvalidArgument("field 'timezone': " + z.status().message());
      spec.timezone = std::move(*r);
      has_timezone = true;
    } else if (k == "interval_ms") {
      auto r = ReadInt(x, f, 1000, 366LL * 86'400'000);
      if (!r.ok()) return r.status();
      spec.interval_ms = *r;
    } else if (k == "task") {
      auto t = DecodeTemplate(x, limits, "a schedule's");
      if (!t.ok()) return t.status();
      spec.task = std::move(*t);
      has_task = true;
    } else if (k == "misfire") {
      auto p = x.is_string() ? ParseMisfirePolicy(x.get_string()) : std::nullopt;
      if (!p) return InvalidArgument("field 'misfire' must be \"skip\", \"once\" or \"all\"");
      spec.misfire = *p;
    } else if (k == "overlap") {
      auto p = x.is_string() ? ParseOverlapPolicy(x.get_string()) : std::nullopt;
      if (!p) {
        return InvalidArgument("field 'overlap' must be \"allow\", \"skip\", \"buffer_one\" "
                               "or \"cancel_previous\"");
      }
      spec.overlap = *p;
    } else if (k == "jitter_ms") {
      auto r = ReadInt(x, f, 0, 86'400'000);
      if (!r.ok()) return r.status();
      spec.jitter_ms = *r;
    } else if (k == "start_at" || k == "end_at") {
      if (!x.is_string()) return WrongType(f, "an RFC 3339 time string");
      auto t = ParseRfc3339(x.get_string());
      if (!t) return InvalidArgument("field '" + f + "' is not an RFC 3339 time");
      (k == "start_at" ? spec.start_at : spec.end_at) = *t;
    } else if (k == "paused") {
      if (!x.is_bool()) return WrongType(f, "true or false");
      spec.paused = x.get_bool();
    } else if (k == "max_catchup") {
      auto r = ReadInt(x, f, 1, 10'000);
      if (!r.ok()) return r.status();
      spec.max_catchup = static_cast<std::int32_t>(*r);
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (spec.cron.empty() == (spec.interval_ms == 0)) {
    return InvalidArgument("a schedule has either 'cron' or 'interval_ms'");
  }
  if (has_timezone && spec.cron.empty()) {
    return InvalidArgument("field 'timezone' applies to 'cron' only");
  }
  if (!has_task) return InvalidArgument("field 'task' is required");
  if (spec.interval_ms && spec.jitter_ms >= spec.interval_ms) {
    return InvalidArgument("field 'jitter_ms' must be below 'interval_ms'");
  }
  if (spec.start_at && spec.end_at && *spec.end_at <= *spec.start_at) {
    return InvalidArgument("field 'end_at' must be after 'start_at'");
  }
  return spec;
}

std::int64_t JsonInt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) {
    // Clamped: a double outside int64's range (or NaN) must not reach the
    // cast, which would be undefined (found by fuzz/json_fuzz).
    const double d = v->get_double();
    if (!(d == d)) return 0;
    if (d >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
    if (d <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(d);
  }
  return 0;
}

std::string JsonString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::value JsonOrNull(std::string_view text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return json::string(text);
  return v;
}

json::object EncodeBackoff(const Backoff& b) {
  return {{"initial_ms", b.initial_ms},
          {"max_ms", b.max_ms},
          {"multiplier", b.multiplier},
          {"jitter", b.jitter}};
}

json::object EncodeTaskSpec(const TaskSpec& s) {
  json::object o;
  o["type"] = s.type;
  if (s.ns != "default") o["namespace"] = s.ns;
  o["queue"] = s.queue;
  o["payload"] = JsonOrNull(s.payload);
  if (s.priority) o["priority"] = s.priority;
  if (s.run_at) o["run_at"] = FormatRfc3339(*s.run_at);
  if (s.delay_ms) o["delay_ms"] = *s.delay_ms;
  if (s.max_attempts) o["max_attempts"] = *s.max_attempts;
  if (s.backoff) o["backoff"] = EncodeBackoff(*s.backoff);
  if (s.timeout_ms) o["timeout_ms"] = *s.timeout_ms;
  if (s.lease_ms) o["lease_ms"] = *s.lease_ms;
  if (!s.key.empty()) o["key"] = s.key;
  if (!s.concurrency_key.empty()) o["concurrency_key"] = s.concurrency_key;
  if (s.concurrency_limit) o["concurrency_limit"] = *s.concurrency_limit;
  if (!s.labels.empty()) {
    json::object l;
    for (const auto& [k, v] : s.labels) l[k] = v;
    o["labels"] = std::move(l);
  }
  if (!s.placement.empty()) {
    json::object p = EncodePlacement(s.placement);
    p.erase("broadcast");  // made by the server, not asked for
    for (auto& kv : p) o[kv.key()] = std::move(kv.value());
  }
  return o;
}

json::object EncodeScheduleSpec(const ScheduleSpec& s) {
  json::object o;
  if (!s.id.empty()) o["id"] = s.id;
  if (!s.name.empty()) o["name"] = s.name;
  if (!s.cron.empty()) {
    o["cron"] = s.cron;
    o["timezone"] = s.timezone;
  } else {
    o["interval_ms"] = s.interval_ms;
  }
  json::object task = EncodeTaskSpec(s.task);
  task.erase("namespace");
  o["task"] = std::move(task);
  o["misfire"] = MisfirePolicyName(s.misfire);
  o["overlap"] = OverlapPolicyName(s.overlap);
  o["jitter_ms"] = s.jitter_ms;
  if (s.start_at) o["start_at"] = FormatRfc3339(*s.start_at);
  if (s.end_at) o["end_at"] = FormatRfc3339(*s.end_at);
  o["paused"] = s.paused;
  o["max_catchup"] = s.max_catchup;
  return o;
}

namespace {
// The fields of a stored or answered schedule that are not its spec.
constexpr std::string_view kScheduleStateFields[] = {
    "namespace", "created_at", "updated_at", "last_tick",  "last_fired_at", "last_task",
    "buffered_tick", "fired", "skipped", "next_fire_times"};
TimeMs Time(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (!v || !v->is_string()) return 0;
  return ParseRfc3339(v->get_string()).value_or(0);
}
json::value TimeOrNull(TimeMs t) {
  return t ? json::value(FormatRfc3339(t)) : json::value(nullptr);
}
}  // namespace

namespace {
// For what Dray wrote itself: it accepted it once, and a limit may have
// shrunk since.
Limits WideLimits() {
  Limits wide;
  wide.max_payload_bytes = wide.max_body_bytes;
  wide.max_labels = 1 << 20;
  wide.max_name_bytes = wide.max_key_bytes = wide.max_label_bytes = 1 << 20;
  wide.max_attempts_cap = 1 << 30;
  wide.max_delay_ms = std::numeric_limits<std::int64_t>::max() / 4;
  return wide;
}
}  // namespace

json::object EncodeSchedule(const Schedule& s) {
  json::object o = EncodeScheduleSpec(s.spec);
  o["namespace"] = s.spec.ns;
  o["created_at"] = FormatRfc3339(s.created_at);
  o["updated_at"] = FormatRfc3339(s.updated_at);
  o["last_tick"] = TimeOrNull(s.last_tick);
  o["last_fired_at"] = TimeOrNull(s.last_fired_at);
  o["last_task"] = s.last_task.empty() ? json::value(nullptr) : json::value(s.last_task);
  o["buffered_tick"] = TimeOrNull(s.buffered_tick);
  o["fired"] = s.fired;
  o["skipped"] = s.skipped;
  if (!s.next_fire_times.empty()) {
    json::array next;
    for (TimeMs t : s.next_fire_times) next.push_back(json::value(FormatRfc3339(t)));
    o["next_fire_times"] = std::move(next);
  }
  return o;
}

StatusOr<Schedule> DecodeSchedule(const json::value& v) {
  if (!v.is_object()) return WrongType("schedule", "an object");
  json::object spec = v.get_object();
  const json::object& o = v.get_object();
  for (std::string_view k : kScheduleStateFields) spec.erase(k);
  auto decoded = DecodeScheduleSpec(spec, WideLimits());
  if (!decoded.ok()) return decoded.status();
  Schedule s;
  s.spec = std::move(*decoded);
  s.spec.ns = JsonString(o, "namespace");
  if (s.spec.ns.empty()) s.spec.ns = "default";
  s.spec.task.ns = s.spec.ns;
  s.created_at = Time(o, "created_at");
  s.updated_at = Time(o, "updated_at");
  s.last_tick = Time(o, "last_tick");
  s.last_fired_at = Time(o, "last_fired_at");
  s.last_task = JsonString(o, "last_task");
  s.buffered_tick = Time(o, "buffered_tick");
  s.fired = JsonInt(o, "fired");
  s.skipped = JsonInt(o, "skipped");
  if (const json::value* n = o.if_contains("next_fire_times"); n && n->is_array()) {
    for (const json::value& t : n->get_array()) {
      if (t.is_string()) s.next_fire_times.push_back(ParseRfc3339(t.get_string()).value_or(0));
    }
  }
  return s;
}

json::object EncodeTask(const Task& t) {
  // One writer decides the format (json_writer.cc); the document is read from it.
  return json::parse(TaskToJson(t)).as_object();
}

std::string TaskToJson(const Task& t) {
  std::string out;
  out.reserve(512 + t.payload.size() + t.result.size());
  AppendTaskJson(t, &out);
  return out;
}

namespace {

// The field's JSON text, or "" when it is missing or null.
std::string FieldText(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && !v->is_null() ? JsonText(*v) : std::string();
}

}  // namespace

StatusOr<Task> DecodeTask(const json::value& v) {
  if (!v.is_object()) return WrongType("task", "an object");
  const json::object& o = v.get_object();
  Task t;
  t.id = JsonString(o, "id");
  if (t.id.empty()) return InvalidArgument("task has no 'id'");
  t.ns = JsonString(o, "namespace");
  t.queue = JsonString(o, "queue");
  t.type = JsonString(o, "type");
  auto st = ParseTaskState(JsonString(o, "state"));
  if (!st) return InvalidArgument("task has no valid 'state'");
  t.state = *st;
  for (std::string_view k : {"payload", "result"}) {
    if (const json::value* x = o.if_contains(k)) DRAY_RETURN_IF_ERROR(CheckFinite(*x, k));
  }
  t.payload = FieldText(o, "payload");
  if (t.payload.empty()) t.payload = "null";
  t.priority = static_cast<std::int32_t>(JsonInt(o, "priority"));
  t.run_at = Time(o, "run_at");
  t.max_attempts = static_cast<std::int32_t>(JsonInt(o, "max_attempts"));
  t.attempts = static_cast<std::int32_t>(JsonInt(o, "attempts"));
  if (const json::value* b = o.if_contains("backoff")) {
    auto r = DecodeBackoff(*b, "backoff");
    if (r.ok()) t.backoff = *r;
  }
  t.timeout_ms = JsonInt(o, "timeout_ms");
  t.lease_ms = JsonInt(o, "lease_ms");
  t.key = JsonString(o, "key");
  t.concurrency_key = JsonString(o, "concurrency_key");
  t.concurrency_limit = static_cast<std::int32_t>(JsonInt(o, "concurrency_limit"));
  t.workflow = JsonString(o, "workflow");
  t.node = JsonString(o, "node");
  if (const json::value* d = o.if_contains("depends_on"); d && d->is_array()) {
    for (const json::value& x : d->get_array()) {
      if (x.is_string()) t.depends_on.emplace_back(x.get_string());
    }
  }
  t.on_dep_failure = ParseDepFailure(JsonString(o, "on_dep_failure")).value_or(DepFailure::kCancel);
  t.placement = DecodePlacement(o);
  t.wait_reason = JsonString(o, "wait_reason");
  t.wait_detail = JsonString(o, "wait_detail");
  if (const json::value* l = o.if_contains("labels"); l && l->is_object()) {
    for (const auto& [k, x] : l->get_object()) {
      if (x.is_string()) t.labels.emplace(std::string(k), std::string(x.get_string()));
    }
  }
  t.result = FieldText(o, "result");
  t.error = JsonString(o, "error");
  t.created_at = Time(o, "created_at");
  t.updated_at = Time(o, "updated_at");
  t.finished_at = Time(o, "finished_at");
  t.worker = JsonString(o, "worker");
  t.lease_expires_at = Time(o, "lease_expires_at");
  if (const json::value* c = o.if_contains("cancel_requested"); c && c->is_bool()) {
    t.cancel_requested = c->get_bool();
  }
  if (const json::value* h = o.if_contains("history"); h && h->is_array()) {
    for (const json::value& x : h->get_array()) {
      if (!x.is_object()) continue;
      const json::object& ho = x.get_object();
      Attempt a;
      a.number = static_cast<std::int32_t>(JsonInt(ho, "number"));
      a.worker = JsonString(ho, "worker");
      a.started_at = Time(ho, "started_at");
      a.ended_at = Time(ho, "ended_at");
      a.outcome = ParseAttemptOutcome(JsonString(ho, "outcome")).value_or(AttemptOutcome::kRunning);
      a.error = JsonString(ho, "error");
      t.history.push_back(std::move(a));
    }
  }
  return t;
}

json::object EncodeQueueSettings(const QueueSettings& s) {
  return {{"paused", s.paused},
          {"lease_ms", s.lease_ms},
          {"max_attempts", s.max_attempts},
          {"backoff", EncodeBackoff(s.backoff)},
          {"concurrency", s.concurrency},
          {"key_concurrency", s.key_concurrency},
          {"rate", s.rate},
          {"burst", s.burst},
          {"weight", s.weight},
          {"placement", PlacementPolicyName(s.placement)}};
}

Status ApplyQueuePatch(const json::value& body, QueueSettings* settings) {
  if (!body.is_object()) return WrongType("body", "an object");
  QueueSettings s = *settings;
  for (const auto& [k, x] : body.get_object()) {
    if (x.is_null()) continue;  // absent
    std::string f(k);
    if (k == "paused") {
      if (!x.is_bool()) return WrongType(f, "true or false");
      s.paused = x.get_bool();
    } else if (k == "lease_ms") {
      auto r = ReadInt(x, f, 100, 86'400'000LL);
      if (!r.ok()) return r.status();
      s.lease_ms = *r;
    } else if (k == "max_attempts") {
      auto r = ReadInt(x, f, 1, 1000);
      if (!r.ok()) return r.status();
      s.max_attempts = static_cast<std::int32_t>(*r);
    } else if (k == "backoff") {
      auto r = DecodeBackoff(x, f);
      if (!r.ok()) return r.status();
      s.backoff = *r;
    } else if (k == "concurrency") {
      auto r = ReadInt(x, f, 0, 1'000'000);
      if (!r.ok()) return r.status();
      s.concurrency = static_cast<std::int32_t>(*r);
    } else if (k == "key_concurrency") {
      auto r = ReadInt(x, f, 1, kMaxKeyConcurrency);
      if (!r.ok()) return r.status();
      s.key_concurrency = static_cast<std::int32_t>(*r);
    } else if (k == "rate") {
      auto r = ReadNumber(x, f, 0.0, 1e6);
      if (!r.ok()) return r.status();
      s.rate = *r;
    } else if (k == "burst") {
      auto r = ReadInt(x, f, 0, 1'000'000);
      if (!r.ok()) return r.status();
      s.burst = static_cast<std::int32_t>(*r);
    } else if (k == "weight") {
      auto r = ReadInt(x, f, 1, 1000);
      if (!r.ok()) return r.status();
      s.weight = static_cast<std::int32_t>(*r);
    } else if (k == "placement") {
      auto p = x.is_string() ? ParsePlacementPolicy(x.get_string()) : std::nullopt;
      if (!p) return InvalidArgument("field '" + f + "' must be \"binpack\" or \"spread\"");
      s.placement = *p;
    } else {
      return FieldError(f, "is unknown");
    }
  }
  *settings = s;
  return Status::Ok();
}

std::string ErrorJson(const Status& s) {
  json::object e{{"code", StatusCodeName(s.code())}, {"message", s.message()}};
  return JsonText(json::object{{"error", std::move(e)}});
}

// ---------------------------------------------------------------- events

StatusOr<EventSpec> DecodeEventSpec(const json::value& body, const Limits& limits) {
  if (!body.is_object()) return WrongType("body", "an object");
  EventSpec e;
  bool has_name = false;
  for (const auto& [k, x] : body.get_object()) {
    if (x.is_null() && k != "payload") continue;  // absent; a null payload is a value
    const std::string f(k);
    if (k == "name") {
      auto r = GetText(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      e.name = std::move(*r);
      has_name = true;
    } else if (k == "id") {
      if (x.is_null()) continue;
      auto r = GetText(x, f, limits.max_key_bytes);
      if (!r.ok()) return r.status();
      e.id = std::move(*r);
    } else if (k == "payload") {
      DRAY_RETURN_IF_ERROR(CheckFinite(x, f));
      e.payload = JsonText(x);
      if (e.payload.size() > limits.max_payload_bytes) {
        return OutOfRange("field 'payload' is " + std::to_string(e.payload.size()) +
                          " bytes; the limit is " + std::to_string(limits.max_payload_bytes));
      }
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (!has_name) return InvalidArgument("field 'name' is required");
  return e;
}

json::object EncodeEvent(const Event& e) {
  json::array tasks;
  for (const std::string& t : e.tasks) tasks.push_back(json::value(t));
  return {{"namespace", e.ns},
          {"id", e.id},
          {"name", e.name},
          {"payload", JsonOrNull(e.payload)},
          {"created_at", FormatRfc3339(e.created_at)},
          {"tasks", std::move(tasks)}};
}

StatusOr<Event> DecodeEvent(const json::value& v) {
  if (!v.is_object()) return WrongType("event", "an object");
  const json::object& o = v.get_object();
  Event e;
  e.ns = JsonString(o, "namespace");
  e.id = JsonString(o, "id");
  e.name = JsonString(o, "name");
  if (e.id.empty() || e.name.empty()) return InvalidArgument("an event needs an id and a name");
  if (const json::value* p = o.if_contains("payload")) e.payload = JsonText(*p);
  e.created_at = Time(o, "created_at");
  if (const json::value* t = o.if_contains("tasks"); t && t->is_array()) {
    for (const json::value& id : t->get_array()) {
      if (id.is_string()) e.tasks.emplace_back(id.get_string());
    }
  }
  return e;
}

// ---------------------------------------------------------------- triggers

namespace {

Status DecodeTriggerOn(const json::value& on, const Limits& limits, TriggerSpec* spec) {
  if (!on.is_object()) return WrongType("on", "an object");
  const json::object& o = on.get_object();
  const json::value* event = FindField(o, "event");
  const json::value* task = FindField(o, "task");
  if ((event != nullptr) == (task != nullptr)) {
    return InvalidArgument("field 'on' takes either 'event' (with 'match') or 'task'");
  }
  for (const auto& [k, x] : o) {
    if (k != "event" && k != "match" && k != "task") {
      return FieldError(FieldPath("on", k), "is unknown");
    }
  }
  if (event) {
    auto name = GetText(*event, "on.event", limits.max_name_bytes);
    if (!name.ok()) return name.status();
    spec->event = std::move(*name);
    if (const json::value* match = FindField(o, "match")) {
      if (!match->is_object()) return WrongType("on.match", "an object of field paths to values");
      if (match->get_object().size() > 32) {
        return InvalidArgument("field 'on.match' holds more than 32 fields");
      }
      for (const auto& [path, value] : match->get_object()) {
        if (path.empty() || path.size() > 256) {
          return InvalidArgument("field 'on.match' keys are 1..256-byte paths such as 'order.currency'");
        }
        DRAY_RETURN_IF_ERROR(CheckFinite(value, "on.match." + std::string(path)));
        spec->match.emplace_back(std::string(path), JsonText(value));
      }
    }
    return Status::Ok();
  }
  if (FindField(o, "match")) return InvalidArgument("field 'on.match' applies to 'on.event' only");
  if (!task->is_object()) return WrongType("on.task", "an object");
  spec->on_task = true;
  bool has_states = false;
  for (const auto& [k, x] : task->get_object()) {
    if (x.is_null()) continue;  // absent
    const std::string f = "on.task." + std::string(k);
    if (k == "queue" || k == "type") {
      auto r = ReadString(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      if (k == "queue") DRAY_RETURN_IF_ERROR(ValidateName(f, *r, limits));
      (k == "queue" ? spec->task_queue : spec->task_type) = std::move(*r);
    } else if (k == "states") {
      if (!x.is_array() || x.get_array().empty()) {
        return WrongType(f, "a list of \"succeeded\", \"failed\" or \"cancelled\"");
      }
      for (const json::value& st : x.get_array()) {
        auto state = st.is_string() ? ParseTaskState(st.get_string()) : std::nullopt;
        if (!state || !IsTerminal(*state)) {
          return InvalidArgument("field '" + f + "' takes \"succeeded\", \"failed\" or \"cancelled\"");
        }
        spec->task_states.push_back(*state);
      }
      has_states = true;
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (!has_states) return InvalidArgument("field 'on.task.states' is required");
  if (spec->task_queue.empty() && spec->task_type.empty()) {
    return InvalidArgument("field 'on.task' needs a 'queue' or a 'type' (or both)");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<TriggerSpec> DecodeTriggerSpec(const json::value& body, const Limits& limits) {
  if (!body.is_object()) return WrongType("body", "an object");
  TriggerSpec spec;
  bool has_on = false, has_task = false;
  for (const auto& [k, x] : body.get_object()) {
    if (x.is_null()) continue;  // absent
    const std::string f(k);
    if (k == "id") {
      auto r = GetName(x, f, limits);
      if (!r.ok()) return r.status();
      spec.id = std::move(*r);
    } else if (k == "name") {
      auto r = GetText(x, f, limits.max_name_bytes);
      if (!r.ok()) return r.status();
      spec.name = std::move(*r);
    } else if (k == "on") {
      DRAY_RETURN_IF_ERROR(DecodeTriggerOn(x, limits, &spec));
      has_on = true;
    } else if (k == "task") {
      auto t = DecodeTemplate(x, limits, "a trigger's");
      if (!t.ok()) return t.status();
      spec.task = std::move(*t);
      has_task = true;
    } else if (k == "paused") {
      if (!x.is_bool()) return WrongType(f, "true or false");
      spec.paused = x.get_bool();
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (!has_on) return InvalidArgument("field 'on' is required");
  if (!has_task) return InvalidArgument("field 'task' is required");
  if (spec.on_task && (spec.task_queue.empty() || spec.task_queue == spec.task.queue) &&
      (spec.task_type.empty() || spec.task_type == spec.task.type)) {
    return InvalidArgument("field 'task': the task this trigger submits would itself fire it "
                           "(a loop); give it another queue or type");
  }
  return spec;
}

json::object EncodeTrigger(const Trigger& t) {
  const TriggerSpec& s = t.spec;
  json::object o;
  if (!s.id.empty()) o["id"] = s.id;  // empty only in a spec not yet created
  o["namespace"] = s.ns;
  if (!s.name.empty()) o["name"] = s.name;
  json::object on;
  if (s.on_task) {
    json::object task;
    if (!s.task_queue.empty()) task["queue"] = s.task_queue;
    if (!s.task_type.empty()) task["type"] = s.task_type;
    json::array states;
    for (TaskState st : s.task_states) states.push_back(json::value(TaskStateName(st)));
    task["states"] = std::move(states);
    on["task"] = std::move(task);
  } else {
    on["event"] = s.event;
    if (!s.match.empty()) {
      json::object match;
      for (const auto& [path, value] : s.match) match[path] = JsonOrNull(value);
      on["match"] = std::move(match);
    }
  }
  o["on"] = std::move(on);
  json::object task = EncodeTaskSpec(s.task);
  task.erase("namespace");
  o["task"] = std::move(task);
  o["paused"] = s.paused;
  o["created_at"] = FormatRfc3339(t.created_at);
  o["updated_at"] = FormatRfc3339(t.updated_at);
  o["fired"] = t.fired;
  return o;
}

StatusOr<Trigger> DecodeTrigger(const json::value& v) {
  if (!v.is_object()) return WrongType("trigger", "an object");
  json::object spec = v.get_object();
  const json::object& o = v.get_object();
  for (std::string_view k : {"namespace", "created_at", "updated_at", "fired"}) spec.erase(k);
  auto decoded = DecodeTriggerSpec(spec, WideLimits());
  if (!decoded.ok()) return decoded.status();
  Trigger t;
  t.spec = std::move(*decoded);
  t.spec.ns = JsonString(o, "namespace");
  if (t.spec.ns.empty()) t.spec.ns = "default";
  t.spec.task.ns = t.spec.ns;
  t.created_at = Time(o, "created_at");
  t.updated_at = Time(o, "updated_at");
  t.fired = JsonInt(o, "fired");
  return t;
}

namespace {
bool SameValue(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  return a == b;
}
}  // namespace

bool MatchPayload(const json::value& payload,
                  const std::vector<std::pair<std::string, std::string>>& match) {
  for (const auto& [path, text] : match) {
    const json::value* at = &payload;
    std::size_t from = 0;
    while (at && from <= path.size()) {
      std::size_t dot = path.find('.', from);
      if (dot == std::string::npos) dot = path.size();
      const std::string_view key(path.data() + from, dot - from);
      at = at->is_object() ? at->get_object().if_contains(key) : nullptr;
      from = dot + 1;
    }
    if (!at) return false;
    boost::system::error_code ec;
    const json::value want = json::parse(text, ec);
    if (ec || !SameValue(*at, want)) return false;
  }
  return true;
}

// ---------------------------------------------------------------- workers

StatusOr<WorkerSpec> DecodeWorkerSpec(const json::value& body, const Limits& limits) {
  if (!body.is_object()) return WrongType("body", "an object");
  WorkerSpec w;
  bool has_id = false;
  for (const auto& [k, x] : body.get_object()) {
    if (x.is_null()) continue;  // absent
    const std::string f(k);
    if (k == "id") {
      auto r = GetName(x, f, limits);
      if (!r.ok()) return r.status();
      w.id = std::move(*r);
      has_id = true;
    } else if (k == "capacity") {
      if (!x.is_object()) return WrongType(f, "an object of resource names to integers");
      if (x.get_object().size() > 64) return InvalidArgument("field 'capacity' names more than 64 resources");
      for (const auto& [name, amount] : x.get_object()) {
        if (amount.is_null()) continue;  // absent
        const std::string rf = f + "." + std::string(name);
        DRAY_RETURN_IF_ERROR(ValidateName(rf, name, limits));
        auto n = ReadInt(amount, rf, 0, std::int64_t{1} << 50);
        if (!n.ok()) return n.status();
        w.capacity.emplace(std::string(name), *n);
      }
    } else if (k == "gpu_devices" || k == "queues") {
      if (!x.is_array()) return WrongType(f, "a list of strings");
      if (x.get_array().size() > 1024) return InvalidArgument("field '" + f + "' holds more than 1024 items");
      auto& into = k == "queues" ? w.queues : w.gpu_devices;
      for (std::size_t i = 0; i < x.get_array().size(); ++i) {
        const std::string ef = f + "[" + std::to_string(i) + "]";
        auto r = k == "queues" ? GetName(x.get_array()[i], ef, limits)
                               : GetText(x.get_array()[i], ef, limits.max_name_bytes);
        if (!r.ok()) return r.status();
        into.push_back(std::move(*r));
      }
    } else if (k == "labels") {
      DRAY_RETURN_IF_ERROR(GetLabels(x, f, limits, &w.labels));
    } else {
      return FieldError(f, "is unknown");
    }
  }
  if (!has_id) return InvalidArgument("field 'id' is required: the name the worker leases under");
  if (auto gpu = w.capacity.find("gpu"); !w.gpu_devices.empty() &&
      (gpu == w.capacity.end() || gpu->second != static_cast<std::int64_t>(w.gpu_devices.size()))) {
    return InvalidArgument("field 'gpu_devices' lists " + std::to_string(w.gpu_devices.size()) +
                           " devices; 'capacity.gpu' must say as many");
  }
  return w;
}

json::object EncodeWorker(const WorkerInfo& w) {
  json::object capacity, labels;
  for (const auto& [k, v] : w.spec.capacity) capacity[k] = v;
  for (const auto& [k, v] : w.spec.labels) labels[k] = v;
  json::array devices, queues, running;
  for (const std::string& d : w.spec.gpu_devices) devices.push_back(json::value(d));
  for (const std::string& q : w.spec.queues) queues.push_back(json::value(q));
  for (const std::string& t : w.running) running.push_back(json::value(t));
  json::object in_use;
  for (const auto& [k, v] : w.in_use) in_use[k] = v;
  json::array devices_in_use;
  for (const std::string& d : w.gpu_devices_in_use) devices_in_use.push_back(json::value(d));
  return {{"id", w.spec.id},
          {"namespace", w.spec.ns},
          {"capacity", std::move(capacity)},
          {"gpu_devices", std::move(devices)},
          {"labels", std::move(labels)},
          {"queues", std::move(queues)},
          {"registered_at", FormatRfc3339(w.registered_at)},
          {"last_seen", FormatRfc3339(w.last_seen)},
          {"running", std::move(running)},
          {"in_use", std::move(in_use)},
          {"gpu_devices_in_use", std::move(devices_in_use)},
          {"reserved_for", w.reserved_for.empty() ? json::value(nullptr) : json::value(w.reserved_for)}};
}

WorkerInfo DecodeWorker(const json::object& o) {
  WorkerInfo w;
  w.spec.id = JsonString(o, "id");
  w.spec.ns = JsonString(o, "namespace");
  if (const json::value* c = o.if_contains("capacity"); c && c->is_object()) {
    for (const auto& [k, v] : c->get_object()) {
      if (v.is_int64()) w.spec.capacity[std::string(k)] = v.get_int64();
    }
  }
  if (const json::value* l = o.if_contains("labels"); l && l->is_object()) {
    for (const auto& [k, v] : l->get_object()) {
      if (v.is_string()) w.spec.labels[std::string(k)] = std::string(v.get_string());
    }
  }
  auto strings = [&](std::string_view key, std::vector<std::string>* into) {
    if (const json::value* a = o.if_contains(key); a && a->is_array()) {
      for (const json::value& v : a->get_array()) {
        if (v.is_string()) into->emplace_back(v.get_string());
      }
    }
  };
  strings("gpu_devices", &w.spec.gpu_devices);
  strings("queues", &w.spec.queues);
  strings("running", &w.running);
  strings("gpu_devices_in_use", &w.gpu_devices_in_use);
  if (const json::value* u = o.if_contains("in_use"); u && u->is_object()) {
    for (const auto& [k, v] : u->get_object()) {
      if (v.is_int64()) w.in_use[std::string(k)] = v.get_int64();
    }
  }
  w.reserved_for = JsonString(o, "reserved_for");
  w.registered_at = Time(o, "registered_at");
  w.last_seen = Time(o, "last_seen");
  return w;
}

// ---------------------------------------------------------------- workflows

Workflow DecodeWorkflow(const json::object& o) {
  Workflow w;
  w.id = JsonString(o, "id");
  w.ns = JsonString(o, "namespace");
  w.name = JsonString(o, "name");
  w.state = ParseWorkflowState(JsonString(o, "state")).value_or(WorkflowState::kRunning);
  w.on_failure = ParseDepFailure(JsonString(o, "on_failure")).value_or(DepFailure::kCancel);
  w.tasks = static_cast<std::int32_t>(JsonInt(o, "task_count"));
  if (const json::value* c = o.if_contains("cancel_requested"); c && c->is_bool()) {
    w.cancel_requested = c->get_bool();
  }
  w.created_at = Time(o, "created_at");
  w.updated_at = Time(o, "updated_at");
  w.finished_at = Time(o, "finished_at");
  return w;
}

}  // namespace dray
