// The SQL of the store's task writes, shared with bench/store_floor.cc so
// that the floor it measures is that of these very statements.
#pragma once

#include <string>

#include "store/columns.h"

namespace dray {

// mutation::PutTask: the whole row.
inline std::string PutTaskSql() {
  std::string placeholders;
  for (int i = 0; i < kColumnCount; ++i) placeholders += i ? ",?" : "?";
  return std::string("INSERT OR REPLACE INTO tasks (") + kColumns + ") VALUES (" + placeholders +
         ")";
}

// mutation::UpdateTask: the columns a transition may change. Two
// statements: one for a transition that leaves finished_at at 0, which then
// does not touch the index on it, and one that sets it. Parameters:
// ?1 run_at, ?2 state, ?3 attempts, ?4 result, ?5 error, ?6 updated_at,
// ?7 finished_at, ?8 lease_token, ?9 lease_expires_at, ?10 worker,
// ?11 cancel_requested, ?12 history, ?13 ns, ?14 id.
inline constexpr const char* kUpdateLiveTask =
    "UPDATE tasks SET run_at = ?1, state = ?2, attempts = ?3, result = ?4, error = ?5, "
    "updated_at = ?6, lease_token = ?8, lease_expires_at = ?9, worker = ?10, "
    "cancel_requested = ?11, history = ?12 WHERE ns = ?13 AND id = ?14 AND finished_at = ?7";
inline constexpr const char* kUpdateTask =
    "UPDATE tasks SET run_at = ?1, state = ?2, attempts = ?3, result = ?4, error = ?5, "
    "updated_at = ?6, finished_at = ?7, lease_token = ?8, lease_expires_at = ?9, worker = ?10, "
    "cancel_requested = ?11, history = ?12 WHERE ns = ?13 AND id = ?14";

}  // namespace dray
