// Writing JSON text directly, without building a document first: for the
// answers on hot paths (leases, task reads), where a DOM per task costs more
// allocations than the work itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "dray/types.h"

namespace dray {

// Appends `s` as a JSON string literal, quotes included. Invalid UTF-8
// becomes U+FFFD, so the output is always valid JSON.
void AppendJsonString(std::string_view s, std::string* out);

// The shortest text that reads back as the same double (2, 0.5, 1e+300), for
// messages and tables; NaN and the infinities as "nan", "inf", "-inf".
std::string FormatDouble(double v);

// Appends a double as people write it: the shortest text that reads back as
// the same double, with a decimal point or an exponent so that it reads back
// as a double and not an integer (2.0, 0.2, 0.0, 1e+300). NaN and the
// infinities, which JSON cannot hold, become null.
void AppendJsonDouble(double v, std::string* out);

// Appends `v` as compact JSON text. This, not boost::json::serialize (which
// writes 2.0 as 2E0), is how every JSON value Dray sends or stores is
// written: the API, the CLI, the change feed and the store's JSON columns.
void AppendJson(const boost::json::value& v, std::string* out);
void AppendJson(const boost::json::object& o, std::string* out);
void AppendJson(const boost::json::array& a, std::string* out);
std::string JsonText(const boost::json::value& v);
std::string JsonText(const boost::json::object& o);
std::string JsonText(const boost::json::array& a);

// Appends the task as the API returns it (the same fields as EncodeTask in
// json_codec.h). With `close` false the object is left open, so the caller
// can append more fields (",\"lease\":{...}") and the closing brace.
// Payload and result are stored as JSON text and copied verbatim.
void AppendTaskJson(const Task& t, std::string* out, bool close = true);

// Every task JSON Dray writes is written here, so the views below agree
// with AppendTaskJson field by field (the same names, types and formats).
//
// A task as an event of GET /v1/changes carries it: id, namespace, queue,
// type, state, attempts, max_attempts, workflow and node (in a workflow),
// worker (while running), updated_at, finished_at (when finished), error
// (when any), and result when it is at most `max_result_bytes` long
// ("result_truncated": true in its place when longer).
void AppendTaskChangeJson(const Task& t, std::size_t max_result_bytes, std::string* out);

// A finished task as the "source" of the task a trigger on task outcomes
// submits (docs/triggers.md): id, type, queue, state, attempts, and result
// and error, null when none.
void AppendTaskOutcomeJson(const Task& t, std::string* out);

// {"name": {"id": ..., "state": ..., "result": ...}, ...}: what a leased task
// gets of the tasks it depends on.
void AppendParentsJson(const std::vector<ParentResult>& parents, std::string* out);

// A workflow's own fields (not its tasks); `close` as for AppendTaskJson.
void AppendWorkflowJson(const Workflow& w, std::string* out, bool close = true);

}  // namespace dray
