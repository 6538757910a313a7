// Writing JSON text directly, without building a document first: for the
// answers on hot paths (leases, task reads), where a DOM per task costs more
// allocations than the work itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dray/types.h"

namespace dray {

// Appends `s` as a JSON string literal, quotes included. Invalid UTF-8
// becomes U+FFFD, so the output is always valid JSON.
void AppendJsonString(std::string_view s, std::string* out);

// Appends the task as the API returns it (the same fields as EncodeTask in
// json_codec.h). With `close` false the object is left open, so the caller
// can append more fields (",\"lease\":{...}") and the closing brace.
// Payload and result are stored as JSON text and copied verbatim.
void AppendTaskJson(const Task& t, std::string* out, bool close = true);

// {"name": {"id": ..., "state": ..., "result": ...}, ...}: what a leased task
// gets of the tasks it depends on.
void AppendParentsJson(const std::vector<ParentResult>& parents, std::string* out);

// A workflow's own fields (not its tasks); `close` as for AppendTaskJson.
void AppendWorkflowJson(const Workflow& w, std::string* out, bool close = true);

}  // namespace dray
