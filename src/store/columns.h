// The column order every store uses for a task row and a workflow row:
// each store's SELECTs list these, and its row readers and writers follow
// the order (docs/storage.md has the columns' meaning).
#pragma once

namespace dray {

inline constexpr const char* kColumns =
    "ns, id, queue, type, payload, priority, run_at, max_attempts, backoff, timeout_ms, "
    "lease_ms, key, labels, state, attempts, result, error, created_at, updated_at, "
    "finished_at, lease_token, lease_expires_at, worker, cancel_requested, seq, history, flow, "
    "workflow";
inline constexpr int kColumnCount = 28;

inline constexpr const char* kWorkflowColumns =
    "ns, id, name, state, on_failure, tasks, cancel_requested, created_at, updated_at, "
    "finished_at";

}  // namespace dray
