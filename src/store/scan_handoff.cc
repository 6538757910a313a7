#include "store/scan_handoff.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace dray {
namespace {

constexpr std::size_t kBatch = 1024;
constexpr std::size_t kMaxBatchesAhead = 4;

class Handoff final : public TaskBatchSink {
 public:
  void Add(Task&& t) override {
    batch_.push_back(std::move(t));
    if (batch_.size() == kBatch) Publish(false, Status::Ok());
  }
  // The producer's last call.
  void Finish(const Status& status) { Publish(true, status); }

  // The next batch, or false once the producer finished and all are taken.
  bool Take(std::vector<Task>* out) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !batches_.empty() || done_; });
    if (batches_.empty()) return false;
    *out = std::move(batches_.front());
    batches_.pop_front();
    cv_.notify_all();
    return true;
  }
  Status status() {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }

 private:
  void Publish(bool last, const Status& status) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return batches_.size() < kMaxBatchesAhead; });
    if (!batch_.empty()) batches_.push_back(std::move(batch_));
    batch_.clear();
    if (last) {
      done_ = true;
      status_ = status;
    }
    cv_.notify_all();
  }

  std::vector<Task> batch_;  // the producer's own
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<Task>> batches_;  // guarded by mu_
  bool done_ = false;                      // guarded by mu_
  Status status_;                          // guarded by mu_
};

}  // namespace

Status ScanOnTwoThreads(const std::function<Status(TaskBatchSink&)>& produce,
                        const std::function<void(Task&&)>& consume) {
  Handoff h;
  std::thread producer([&] { h.Finish(produce(h)); });
  std::vector<Task> batch;
  while (h.Take(&batch)) {
    for (Task& t : batch) consume(std::move(t));
  }
  producer.join();
  return h.status();
}

}  // namespace dray
