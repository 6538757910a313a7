#include "store/commit_pipeline.h"

#include <chrono>
#include <utility>

namespace dray {

namespace {
// The pipeline whose thread this is, if any: lets Stop() see that it was
// called from a `done` without touching thread_, which another Stop() may be
// joining at that moment.
thread_local const CommitPipeline* tls_pipeline = nullptr;
}  // namespace

CommitPipeline::CommitPipeline(Store* store, CommitOptions options)
    : store_(store), options_(options), thread_([this] { Run(); }) {}

CommitPipeline::~CommitPipeline() { Stop(); }

void CommitPipeline::Submit(std::vector<Mutation> mutations, Done done) {
  {
    MutexLock lock(&mu_);
    if (!stopping_) {
      queued_mutations_ += mutations.size();
      queue_.push_back(Entry{std::move(mutations), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  if (done) done(Unavailable("the commit pipeline is stopped"));
}

void CommitPipeline::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  // Joining from the pipeline's own thread would wait for itself; that
  // thread exits by itself once the queue is drained.
  if (tls_pipeline == this) return;
  std::lock_guard<std::mutex> join(join_mu_);
  if (thread_.joinable()) thread_.join();
}

std::size_t CommitPipeline::queued_mutations() const {
  MutexLock lock(&mu_);
  return queued_mutations_;
}

CommitStats CommitPipeline::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void CommitPipeline::Run() {
  tls_pipeline = this;
  std::vector<Entry> batch;
  while (TakeBatch(&batch)) CommitBatch(&batch);
}

bool CommitPipeline::TakeBatch(std::vector<Entry>* batch) {
  batch->clear();
  MutexLock lock(&mu_);
  while (!stopping_ && queue_.empty()) cv_.wait(mu_);
  if (queue_.empty()) return false;  // stopping and drained
  if (options_.max_wait.count() > 0) {
    // Let the batch grow a little, unless it is already full or we stop.
    const auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
    while (!stopping_ && queued_mutations_ < options_.max_batch_mutations) {
      if (cv_.wait_until(mu_, deadline) == std::cv_status::timeout) break;
    }
  }
  // Whole entries until the bound; the first one always, however large.
  std::size_t n = 0;
  while (!queue_.empty() &&
         (batch->empty() || n + queue_.front().mutations.size() <= options_.max_batch_mutations)) {
    n += queue_.front().mutations.size();
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_mutations_ -= n;
  return true;
}

void CommitPipeline::CommitBatch(std::vector<Entry>* batch) {
  std::vector<Mutation> mutations;
  for (Entry& e : *batch) {
    for (Mutation& m : e.mutations) mutations.push_back(std::move(m));
  }
  // A batch of barriers alone needs no transaction: every earlier batch has
  // already returned from Commit(). It still reports a broken store.
  if (!mutations.empty() && options_.before_commit) options_.before_commit();
  const auto started = std::chrono::steady_clock::now();
  Status s = mutations.empty() ? store_->health() : store_->Commit(mutations);
  const auto took = std::chrono::steady_clock::now() - started;
  {
    MutexLock lock(&mu_);
    if (!mutations.empty()) {
      const double seconds = std::chrono::duration<double>(took).count();
      std::size_t bucket = 0;
      while (bucket < kCommitSecondsBounds.size() && seconds > kCommitSecondsBounds[bucket]) ++bucket;
      ++stats_.commit_seconds[bucket];
      stats_.commit_ns += static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
    }
    stats_.batches += mutations.empty() ? 0 : 1;
    stats_.entries += batch->size();
    stats_.mutations += mutations.size();
    stats_.failures += s.ok() ? 0 : 1;
  }
  // Without the lock: a callback may Submit() again.
  for (Entry& e : *batch) {
    if (e.done) e.done(s);
  }
}

}  // namespace dray
