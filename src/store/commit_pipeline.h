// Group commit: many writers' mutations share one transaction and one sync.
//
// Threading: Submit() may be called from any thread; entries are committed
// in the order Submit() was called (callers that need a global order, such as
// the engine, call it while holding their own lock). One background thread
// takes everything queued, commits it with one Store::Commit(), and then runs
// each entry's `done` on that thread, in order. `done` must be quick (post
// work elsewhere); it must not call Submit() synchronously... it may, but the
// new entry lands in a later batch.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/store.h"

namespace dray {

struct CommitOptions {
  // A batch closes when it holds this many mutations (a single larger entry
  // still commits whole).
  std::size_t max_batch_mutations = 20'000;
  // After the first entry arrives, wait up to this long for more before
  // committing. 0 = natural batching only: whatever queued up while the
  // previous commit was syncing forms the next batch.
  std::chrono::microseconds max_wait{0};
};

struct CommitStats {
  std::uint64_t batches = 0;
  std::uint64_t entries = 0;
  std::uint64_t mutations = 0;
  std::uint64_t failures = 0;
};

class CommitPipeline {
 public:
  using Done = std::function<void(const Status&)>;

  CommitPipeline(Store* store, CommitOptions options);
  ~CommitPipeline();  // Stop()
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Queues `mutations`; `done` runs once they are durable (OK) or failed.
  // An empty entry is a barrier: done runs after everything before it is
  // durable. After Stop(), done runs at once with Unavailable.
  void Submit(std::vector<Mutation> mutations, Done done);

  // Commits everything queued, runs its callbacks, and joins the thread.
  void Stop();

  CommitStats stats() const;

 private:
  struct Entry {
    std::vector<Mutation> mutations;
    Done done;
  };
  void Run();

  Store* const store_;
  const CommitOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;  // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  CommitStats stats_;        // guarded by mu_
  std::thread thread_;
};

}  // namespace dray
