// The JSON documents a store keeps in a column: a task's backoff, labels,
// attempt history and flow fields, a queue's settings, a schedule, a
// trigger, a list of ids. This is the storage format, owned by the stores
// and shared by every one of them; it is not the API's JSON and does not
// change when the API does (docs/storage.md, "Documents"):
//
// - times are integers, milliseconds since the Unix epoch;
// - enums are their numbers in include/dray/types.h, which are never
//   renumbered;
// - a field at its default is left out; a payload or a match value is
//   embedded as the JSON it is.
//
// Readers are strict: a document that is not exactly what a writer here
// makes (a wrong type, an unknown field, an enum number out of range) is
// DataLoss naming the field, never a silently different value.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dray/status.h"
#include "dray/types.h"

namespace dray {

std::string BackoffDocument(const Backoff& b);
Status ReadBackoffDocument(std::string_view text, Backoff* out);

std::string LabelsDocument(const std::map<std::string, std::string>& labels);
Status ReadLabelsDocument(std::string_view text, std::map<std::string, std::string>* out);

std::string HistoryDocument(const std::vector<Attempt>& history);
Status ReadHistoryDocument(std::string_view text, std::vector<Attempt>* out);

// A task's flow-control fields (concurrency key and limit, node,
// depends_on, on_dep_failure, placement); "" when all are at their default.
std::string FlowDocument(const Task& t);
// Sets those fields of `t` from a FlowDocument ("" sets none).
Status ReadFlowDocument(std::string_view text, Task* t);

std::string QueueSettingsDocument(const QueueSettings& s);
Status ReadQueueSettingsDocument(std::string_view text, QueueSettings* out);

// next_fire_times is not stored.
std::string ScheduleDocument(const Schedule& s);
StatusOr<Schedule> ReadScheduleDocument(std::string_view text);

// `fired` is not stored (it counts since the server started).
std::string TriggerDocument(const Trigger& t);
StatusOr<Trigger> ReadTriggerDocument(std::string_view text);

std::string StringListDocument(const std::vector<std::string>& items);
Status ReadStringListDocument(std::string_view text, std::vector<std::string>* out);

}  // namespace dray
