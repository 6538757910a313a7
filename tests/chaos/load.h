// A mixed load for chaos tests: submitters and workers that talk to a real
// server over HTTP and record every call and its outcome in a History.
//
// Submitters submit tasks one at a time or in batches, each with a unique
// idempotency key. Workers lease in batches, sometimes heartbeat, then
// complete, fail with a retry, or fail for good, one call per task or all
// in one /v1/acks call. A call without an answer is recorded as unknown and
// the client carries on (reconnecting), as a real client would while the
// server is down.
//
// Thread-safety: Start*/Stop* from one thread; the counters from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "chaos/checker.h"
#include "chaos/history.h"

namespace dray::chaos {

struct LoadOptions {
  std::string host = "127.0.0.1";
  std::string queue = "chaos";
  int submitters = 2;
  int workers = 2;
  int lease_max = 8;
  int lease_ms = 1000;
  double retry_fail_ratio = 0.05;  // fail asking for a retry
  double final_fail_ratio = 0.02;  // fail for good
  double heartbeat_ratio = 0.2;
  double batch_ratio = 0.3;  // submits in a batch of 5; outcomes in one /v1/acks call
  // Time a worker spends "working" on each leased batch before it reports,
  // so that a paused or partitioned worker is likely to hold tasks.
  std::chrono::milliseconds work{0};
  // Extra bytes of padding in each payload (the disk-full test fills a disk).
  std::size_t payload_padding = 0;
  // Submitters hold off while this many acknowledged tasks have no final
  // outcome accepted yet (0: no limit), so that a long run whose workers are
  // slower than its submitters does not pile up more than it can drain.
  std::uint64_t max_outstanding = 0;
  std::chrono::milliseconds call_timeout{5000};
  std::string client_prefix = "c";
  std::uint64_t seed = 1;
};

class MixedLoad {
 public:
  MixedLoad(int port, History* history, LoadOptions options);
  ~MixedLoad();
  MixedLoad(const MixedLoad&) = delete;
  MixedLoad& operator=(const MixedLoad&) = delete;

  // Creates or updates the queue: the lease, a short backoff, max attempts.
  // Returns the HTTP status (200 expected).
  int ConfigureQueue(int max_attempts = 6);

  void StartSubmitters();
  void StopSubmitters();
  void StartWorkers();
  void StopWorkers();

  // The end of a run: stops the submitters, lets the workers drain the queue
  // (up to `timeout`; a queue that does not drain is reported as stuck),
  // stops them, and checks `history` against the final state.
  Report DrainAndCheck(const History& history, std::chrono::seconds timeout,
                       const CheckOptions& options = {});

  std::uint64_t acknowledged_submits() const { return acked_.load(); }
  std::uint64_t accepted_outcomes() const { return outcomes_.load(); }

 private:
  void SubmitLoop(int n);
  void WorkLoop(int n);

  const int port_;
  History* const history_;
  const LoadOptions opt_;
  std::atomic<bool> stop_submitters_{false}, stop_workers_{false};
  std::atomic<std::uint64_t> acked_{0}, outcomes_{0};
  std::vector<std::thread> submitters_, workers_;
};

// Polls until no task of `queue` is scheduled, ready or running (workers must
// be running); returns whether that happened before `timeout`.
bool WaitForDrain(int port, const std::string& queue, std::chrono::milliseconds timeout,
                  const std::string& host = "127.0.0.1");

// Every task of `queue`, read page by page from GET /v1/tasks.
StatusOr<std::vector<FinalTask>> FetchTasks(int port, const std::string& queue,
                                            const std::string& host = "127.0.0.1");

// Fetches the final state, checks it against the history, and on failure
// saves the history to a file whose path the report names.
Report FetchAndCheck(int port, const std::string& queue, const History& history,
                     const CheckOptions& options = {}, const std::string& host = "127.0.0.1");

// An integer from the environment, or `fallback`.
int EnvInt(const char* name, int fallback);

// A run's random seed: DRAY_CHAOS_SEED when set (to replay a run), else
// from the time. Tests print it.
std::uint64_t ChaosSeed();

}  // namespace dray::chaos
