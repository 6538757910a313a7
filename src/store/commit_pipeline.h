// Group commit: many writers' mutations share one transaction and one sync.
//
// Threading: Submit() may be called from any thread; entries are committed
// in the order Submit() was called (callers that need a global order, such as
// the engine, call it while holding their own lock). One background thread
// takes everything queued, commits it with one Store::Commit(), and then runs
// each entry's `done` on that thread, in order. `done` must be quick (post
// work elsewhere) and must not throw. It may call Submit(); the new entry
// lands in a later batch. It may call Stop() (which then returns without
// joining), but the pipeline must not be destroyed from inside a `done`.
//
// Batching: whatever was queued while the previous commit was syncing forms
// the next batch ("natural batching", leveldb's DBImpl::Write groups), cut
// at max_batch_mutations; max_wait optionally holds a batch open a little
// longer. A failed commit reports its error to every entry of that batch;
// the store is then broken, so later batches fail too.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/mutex.h"
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
  // Runs on the commit thread before each transaction that writes (the
  // disk guard's check); may be empty.
  std::function<void()> before_commit;
};

// Upper bounds, in seconds, of the buckets of the commit-time histogram
// (the last bucket, past them, is +Inf).
inline constexpr std::array<double, 13> kCommitSecondsBounds = {
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

struct CommitStats {
  std::uint64_t batches = 0;
  std::uint64_t entries = 0;
  std::uint64_t mutations = 0;
  std::uint64_t failures = 0;
  // How long Store::Commit took, per batch with mutations: the count in
  // each bucket of kCommitSecondsBounds (not cumulative), and the sum.
  std::array<std::uint64_t, kCommitSecondsBounds.size() + 1> commit_seconds{};
  std::uint64_t commit_ns = 0;
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
  // Safe to call more than once and from several threads; every call
  // returns after the drain (except one made from a `done`, see above).
  void Stop();

  CommitStats stats() const;
  // Mutations queued and not yet taken into a transaction: the commit
  // thread's backlog, which admission control bounds.
  std::size_t queued_mutations() const;

 private:
  struct Entry {
    std::vector<Mutation> mutations;
    Done done;
  };
  void Run();
  // Waits for work and moves the next batch out of queue_; false once
  // stopping with nothing left.
  bool TakeBatch(std::vector<Entry>* batch);
  void CommitBatch(std::vector<Entry>* batch);

  Store* const store_;
  const CommitOptions options_;
  mutable Mutex mu_;
  std::condition_variable_any cv_;  // signalled on Submit() and Stop()
  std::deque<Entry> queue_ DRAY_GUARDED_BY(mu_);
  std::size_t queued_mutations_ DRAY_GUARDED_BY(mu_) = 0;  // over queue_
  bool stopping_ DRAY_GUARDED_BY(mu_) = false;
  CommitStats stats_ DRAY_GUARDED_BY(mu_);
  std::mutex join_mu_;  // serializes joining thread_ between Stop() callers
  std::thread thread_;  // last: starts after every other member exists
};

}  // namespace dray
