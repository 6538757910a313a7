#include "store/commit_pipeline.h"

#include <utility>

namespace dray {

CommitPipeline::CommitPipeline(Store* store, CommitOptions options)
    : store_(store), options_(options), thread_([this] { Run(); }) {}

CommitPipeline::~CommitPipeline() { Stop(); }

void CommitPipeline::Submit(std::vector<Mutation> mutations, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(Entry{std::move(mutations), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  if (done) done(Unavailable("the commit pipeline is stopped"));
}

void CommitPipeline::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

CommitStats CommitPipeline::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CommitPipeline::Run() {
  std::vector<Entry> batch;
  std::vector<Mutation> mutations;
  for (;;) {
    batch.clear();
    mutations.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      if (options_.max_wait.count() > 0 && !stopping_) {
        // Let the batch grow a little, unless it is already full.
        auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
        cv_.wait_until(lock, deadline, [this] {
          std::size_t n = 0;
          for (const Entry& e : queue_) n += e.mutations.size();
          return stopping_ || n >= options_.max_batch_mutations;
        });
      }
      // Take whole entries until the batch is full; the first one always.
      std::size_t n = 0;
      while (!queue_.empty() &&
             (batch.empty() || n + queue_.front().mutations.size() <= options_.max_batch_mutations)) {
        n += queue_.front().mutations.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::size_t total = 0;
    for (const Entry& e : batch) total += e.mutations.size();
    mutations.reserve(total);
    for (Entry& e : batch) {
      for (Mutation& m : e.mutations) mutations.push_back(std::move(m));
    }
    // A batch of barriers alone still orders after every earlier commit,
    // which returned before this loop came round again.
    Status s = mutations.empty() ? store_->health() : store_->Commit(mutations);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.batches += mutations.empty() ? 0 : 1;
      stats_.entries += batch.size();
      stats_.mutations += total;
      stats_.failures += s.ok() ? 0 : 1;
    }
    // Callbacks run without the lock: they may Submit() again.
    for (Entry& e : batch) {
      if (e.done) e.done(s);
    }
  }
}

}  // namespace dray
