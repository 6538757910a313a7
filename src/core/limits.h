// Bounds on what a request may carry. Every one is configurable (see
// `dray server --help`); past a bound the caller gets a clear error.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dray {

// The largest per-key concurrency limit: a keyed task's transition costs
// O(limit) (Engine::RefreshKey).
inline constexpr std::int64_t kMaxKeyConcurrency = 10'000;

struct Limits {
  std::size_t max_body_bytes = 16 << 20;    // one HTTP request body
  std::size_t max_payload_bytes = 1 << 20;  // one task's payload, serialized
  std::size_t max_result_bytes = 1 << 20;   // one task's result, serialized
  std::size_t max_error_bytes = 16 << 10;   // longer error messages are cut
  std::size_t max_batch = 1000;             // tasks per submit, acks per request
  std::size_t max_workflow_tasks = 100'000; // tasks per workflow
  std::size_t max_name_bytes = 128;         // queue, namespace, type
  std::size_t max_key_bytes = 256;          // idempotency key
  std::size_t max_labels = 64;
  std::size_t max_label_bytes = 256;        // a label's key or value
  std::int32_t max_attempts_cap = 1000;
  std::int64_t max_delay_ms = 10LL * 365 * 86'400'000;  // how far ahead run_at may be
};

}  // namespace dray
