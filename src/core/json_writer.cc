#include "core/json_writer.h"

#include <boost/json/value.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "core/json_codec.h"
#include "core/time_format.h"

namespace dray {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t c = b(i);
  std::size_t n;
  std::uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

namespace {

template <typename Integer>
void AppendInteger(Integer v, std::string* out) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

}  // namespace

std::string FormatDouble(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

void AppendJsonDouble(double v, std::string* out) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  const std::string text = FormatDouble(v);
  out->append(text);
  if (text.find_first_of(".e") == std::string::npos) out->append(".0");
}

void AppendJson(const boost::json::value& v, std::string* out) {
  switch (v.kind()) {
    case boost::json::kind::null: out->append("null"); return;
    case boost::json::kind::bool_: out->append(v.get_bool() ? "true" : "false"); return;
    case boost::json::kind::int64: AppendInteger(v.get_int64(), out); return;
    case boost::json::kind::uint64: AppendInteger(v.get_uint64(), out); return;
    case boost::json::kind::double_: AppendJsonDouble(v.get_double(), out); return;
    case boost::json::kind::string: {
      const boost::json::string& s = v.get_string();
      AppendJsonString(std::string_view(s.data(), s.size()), out);
      return;
    }
    case boost::json::kind::array: AppendJson(v.get_array(), out); return;
    case boost::json::kind::object: AppendJson(v.get_object(), out); return;
  }
}

void AppendJson(const boost::json::array& a, std::string* out) {
  out->push_back('[');
  bool first = true;
  for (const boost::json::value& x : a) {
    if (!first) out->push_back(',');
    first = false;
    AppendJson(x, out);
  }
  out->push_back(']');
}

void AppendJson(const boost::json::object& o, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (const auto& [key, x] : o) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(std::string_view(key.data(), key.size()), out);
    out->push_back(':');
    AppendJson(x, out);
  }
  out->push_back('}');
}

std::string JsonText(const boost::json::value& v) {
  std::string out;
  AppendJson(v, &out);
  return out;
}

std::string JsonText(const boost::json::object& o) {
  std::string out;
  AppendJson(o, &out);
  return out;
}

std::string JsonText(const boost::json::array& a) {
  std::string out;
  AppendJson(a, &out);
  return out;
}

namespace {

void Key(std::string_view k, std::string* out) {
  out->push_back(',');
  out->push_back('"');
  out->append(k);
  out->append("\":");
}

void Int(std::int64_t v, std::string* out) { AppendInteger(v, out); }

void Time(TimeMs t, std::string* out) {
  out->push_back('"');
  out->append(FormatRfc3339(t));
  out->push_back('"');
}

// A time, or null for 0 (not yet).
void TimeOrNull(TimeMs t, std::string* out) {
  if (t) {
    Time(t, out);
  } else {
    out->append("null");
  }
}

// Stored JSON text verbatim, or null for none.
void RawOrNull(std::string_view json_text, std::string* out) {
  out->append(json_text.empty() ? std::string_view("null") : json_text);
}

void StringOrNull(std::string_view s, std::string* out) {
  if (s.empty()) {
    out->append("null");
  } else {
    AppendJsonString(s, out);
  }
}

}  // namespace

void AppendTaskJson(const Task& t, std::string* out, bool close) {
  out->append("{\"id\":");
  AppendJsonString(t.id, out);
  Key("namespace", out);
  AppendJsonString(t.ns, out);
  Key("queue", out);
  AppendJsonString(t.queue, out);
  Key("type", out);
  AppendJsonString(t.type, out);
  Key("state", out);
  AppendJsonString(TaskStateName(t.state), out);
  Key("payload", out);
  RawOrNull(t.payload, out);
  Key("priority", out);
  Int(t.priority, out);
  Key("run_at", out);
  Time(t.run_at, out);
  Key("max_attempts", out);
  Int(t.max_attempts, out);
  Key("attempts", out);
  Int(t.attempts, out);
  out->append(",\"backoff\":{\"initial_ms\":");
  Int(t.backoff.initial_ms, out);
  Key("max_ms", out);
  Int(t.backoff.max_ms, out);
  Key("multiplier", out);
  AppendJsonDouble(t.backoff.multiplier, out);
  Key("jitter", out);
  AppendJsonDouble(t.backoff.jitter, out);
  out->push_back('}');
  Key("timeout_ms", out);
  Int(t.timeout_ms, out);
  if (t.lease_ms) {
    Key("lease_ms", out);
    Int(t.lease_ms, out);
  }
  if (!t.key.empty()) {
    Key("key", out);
    AppendJsonString(t.key, out);
  }
  if (!t.concurrency_key.empty()) {
    Key("concurrency_key", out);
    AppendJsonString(t.concurrency_key, out);
  }
  if (t.concurrency_limit) {
    Key("concurrency_limit", out);
    Int(t.concurrency_limit, out);
  }
  if (!t.workflow.empty()) {
    Key("workflow", out);
    AppendJsonString(t.workflow, out);
    Key("node", out);
    AppendJsonString(t.node, out);
  }
  if (!t.depends_on.empty()) {
    Key("depends_on", out);
    out->push_back('[');
    for (std::size_t i = 0; i < t.depends_on.size(); ++i) {
      if (i) out->push_back(',');
      AppendJsonString(t.depends_on[i], out);
    }
    out->push_back(']');
    Key("on_dep_failure", out);
    AppendJsonString(DepFailureName(t.on_dep_failure), out);
  }
  if (!t.placement.empty()) {
    out->push_back(',');
    out->append(PlacementToJson(t.placement));
  }
  Key("labels", out);
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : t.labels) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(k, out);
    out->push_back(':');
    AppendJsonString(v, out);
  }
  out->push_back('}');
  Key("result", out);
  RawOrNull(t.result, out);
  Key("error", out);
  StringOrNull(t.error, out);
  Key("created_at", out);
  Time(t.created_at, out);
  Key("updated_at", out);
  Time(t.updated_at, out);
  Key("finished_at", out);
  TimeOrNull(t.finished_at, out);
  if (t.state == TaskState::kRunning) {
    Key("worker", out);
    AppendJsonString(t.worker, out);
    Key("lease_expires_at", out);
    Time(t.lease_expires_at, out);
    Key("cancel_requested", out);
    out->append(t.cancel_requested ? "true" : "false");
  }
  if (!t.wait_reason.empty()) {
    Key("wait_reason", out);
    AppendJsonString(t.wait_reason, out);
    Key("wait_detail", out);
    AppendJsonString(t.wait_detail, out);
  }
  Key("history", out);
  out->push_back('[');
  for (std::size_t i = 0; i < t.history.size(); ++i) {
    const Attempt& a = t.history[i];
    if (i) out->push_back(',');
    out->append("{\"number\":");
    Int(a.number, out);
    Key("worker", out);
    AppendJsonString(a.worker, out);
    Key("started_at", out);
    Time(a.started_at, out);
    Key("ended_at", out);
    TimeOrNull(a.ended_at, out);
    Key("outcome", out);
    AppendJsonString(AttemptOutcomeName(a.outcome), out);
    Key("error", out);
    StringOrNull(a.error, out);
    out->push_back('}');
  }
  out->push_back(']');
  if (close) out->push_back('}');
}

void AppendTaskChangeJson(const Task& t, std::size_t max_result_bytes, std::string* out) {
  out->append("{\"id\":");
  AppendJsonString(t.id, out);
  Key("namespace", out);
  AppendJsonString(t.ns, out);
  Key("queue", out);
  AppendJsonString(t.queue, out);
  Key("type", out);
  AppendJsonString(t.type, out);
  Key("state", out);
  AppendJsonString(TaskStateName(t.state), out);
  Key("attempts", out);
  Int(t.attempts, out);
  Key("max_attempts", out);
  Int(t.max_attempts, out);
  if (!t.workflow.empty()) {
    Key("workflow", out);
    AppendJsonString(t.workflow, out);
    Key("node", out);
    AppendJsonString(t.node, out);
  }
  if (!t.worker.empty() && t.state == TaskState::kRunning) {
    Key("worker", out);
    AppendJsonString(t.worker, out);
  }
  Key("updated_at", out);
  Time(t.updated_at, out);
  if (t.finished_at) {
    Key("finished_at", out);
    Time(t.finished_at, out);
  }
  if (!t.error.empty()) {
    Key("error", out);
    AppendJsonString(t.error, out);
  }
  if (!t.result.empty()) {
    if (t.result.size() <= max_result_bytes) {
      Key("result", out);
      out->append(t.result);
    } else {
      out->append(",\"result_truncated\":true");
    }
  }
  out->push_back('}');
}

void AppendTaskOutcomeJson(const Task& t, std::string* out) {
  out->append("{\"id\":");
  AppendJsonString(t.id, out);
  Key("type", out);
  AppendJsonString(t.type, out);
  Key("queue", out);
  AppendJsonString(t.queue, out);
  Key("state", out);
  AppendJsonString(TaskStateName(t.state), out);
  Key("attempts", out);
  Int(t.attempts, out);
  Key("result", out);
  RawOrNull(t.result, out);
  Key("error", out);
  StringOrNull(t.error, out);
  out->push_back('}');
}

}  // namespace dray

namespace dray {

void AppendParentsJson(const std::vector<ParentResult>& parents, std::string* out) {
  out->push_back('{');
  for (std::size_t i = 0; i < parents.size(); ++i) {
    const ParentResult& p = parents[i];
    if (i) out->push_back(',');
    AppendJsonString(p.name, out);
    out->append(":{\"id\":");
    AppendJsonString(p.id, out);
    Key("state", out);
    AppendJsonString(TaskStateName(p.state), out);
    Key("result", out);
    RawOrNull(p.result, out);
    out->push_back('}');
  }
  out->push_back('}');
}

void AppendWorkflowJson(const Workflow& w, std::string* out, bool close) {
  out->append("{\"id\":");
  AppendJsonString(w.id, out);
  Key("namespace", out);
  AppendJsonString(w.ns, out);
  Key("name", out);
  AppendJsonString(w.name, out);
  Key("state", out);
  AppendJsonString(WorkflowStateName(w.state), out);
  Key("on_failure", out);
  AppendJsonString(DepFailureName(w.on_failure), out);
  Key("task_count", out);
  Int(w.tasks, out);
  Key("cancel_requested", out);
  out->append(w.cancel_requested ? "true" : "false");
  Key("created_at", out);
  Time(w.created_at, out);
  Key("updated_at", out);
  Time(w.updated_at, out);
  Key("finished_at", out);
  TimeOrNull(w.finished_at, out);
  if (close) out->push_back('}');
}

}  // namespace dray
