#include "dray/worker.h"

#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace dray {

namespace {

std::string DefaultName() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

}  // namespace

struct Worker::Impl {
  struct Running {
    LeasedTask leased;
    std::stop_source stop;
    std::atomic<bool> cancel{false};
    std::atomic<bool> lost{false};
    std::chrono::steady_clock::time_point next_heartbeat;
  };

  ClientOptions client_options;
  WorkerOptions options;
  std::unique_ptr<Client> client;
  std::unique_ptr<Client> lease_client;  // its own, so that Stop() can cut a long-poll
  std::map<std::string, HandlerFn> handlers;
  HandlerFn fallback;

  std::mutex mu;
  std::condition_variable cv;  // work queue, free slots, acks, stop
  bool stopping = false;       // guarded by mu
  bool leasing_done = false;   // the lease loop returned; guarded by mu
  std::deque<std::shared_ptr<Running>> queue;  // leased, not yet started; guarded by mu
  std::unordered_map<std::string, std::shared_ptr<Running>> running;  // by id; guarded by mu
  std::size_t busy = 0;        // queued + running; guarded by mu
  std::vector<AckRequest> acks;  // guarded by mu
  std::size_t acks_in_flight = 0;  // guarded by mu
  Stats stats;                 // guarded by mu

  // A third of the lease, so that two heartbeats may fail before it runs out.
  std::chrono::milliseconds HeartbeatInterval(const LeasedTask& l) const {
    if (options.heartbeat_interval.count() > 0) return options.heartbeat_interval;
    TimeMs started = l.task.history.empty() ? l.task.updated_at : l.task.history.back().started_at;
    return std::chrono::milliseconds(std::max<std::int64_t>((l.lease.expires_at - started) / 3, 50));
  }
  void LeaseLoop();
  void HandlerLoop();
  void HeartbeatLoop();
  void AckLoop();
  void RunOne(const std::shared_ptr<Running>& r);
  void Outcome(const std::shared_ptr<Running>& r, AckRequest ack);
};

void Worker::Impl::LeaseLoop() {
  std::chrono::milliseconds backoff{50};
  for (;;) {
    std::size_t free;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stopping || busy < static_cast<std::size_t>(options.concurrency); });
      if (stopping) return;
      free = static_cast<std::size_t>(options.concurrency) - busy;
    }
    auto leased = lease_client->Lease(options.name, options.queues, free, options.poll_wait);
    if (!leased.ok()) {
      // The server is away or refusing: back off, but wake at once on Stop.
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, backoff, [&] { return stopping; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      continue;
    }
    backoff = std::chrono::milliseconds(50);
    std::lock_guard<std::mutex> lock(mu);
    for (LeasedTask& l : *leased) {
      auto r = std::make_shared<Running>();
      r->leased = std::move(l);
      r->next_heartbeat = std::chrono::steady_clock::now() + HeartbeatInterval(r->leased);
      running[r->leased.task.id] = r;
      queue.push_back(r);
      ++busy;
      ++stats.leased;
    }
    cv.notify_all();
  }
}

void Worker::Impl::HandlerLoop() {
  for (;;) {
    std::shared_ptr<Running> r;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !queue.empty() || leasing_done; });
      if (queue.empty()) return;  // no more leases, and every leased task has started
      r = std::move(queue.front());
      queue.pop_front();
    }
    RunOne(r);
  }
}

void Worker::Impl::RunOne(const std::shared_ptr<Running>& r) {
  const Task& task = r->leased.task;
  AckRequest ack;
  ack.id = task.id;
  ack.token = r->leased.lease.token;
  auto it = handlers.find(task.type);
  const HandlerFn* fn = it != handlers.end() ? &it->second : (fallback ? &fallback : nullptr);
  if (!fn) {
    ack.success = false;
    ack.retry = false;
    ack.error = "no handler for type " + task.type;
    return Outcome(r, std::move(ack));
  }
  TaskContext ctx(task, r->stop.get_token(), &r->cancel);
  try {
    ack.result = (*fn)(ctx);
    if (ack.result.empty()) ack.result = "null";
  } catch (const NonRetryableError& e) {
    ack.success = false;
    ack.retry = false;
    ack.error = e.what();
  } catch (const std::exception& e) {
    ack.success = false;
    ack.error = e.what();
  } catch (...) {
    ack.success = false;
    ack.error = "the handler threw a non-standard exception";
  }
  if (r->cancel.load() && ack.success) {
    // The server asked to cancel: report that the work stopped.
    ack.success = false;
    ack.error = "cancelled";
  }
  Outcome(r, std::move(ack));
}

void Worker::Impl::Outcome(const std::shared_ptr<Running>& r, AckRequest ack) {
  std::lock_guard<std::mutex> lock(mu);
  running.erase(r->leased.task.id);
  --busy;
  if (r->lost.load()) {
    ++stats.dropped;  // another attempt owns the task now
  } else {
    (ack.success ? stats.succeeded : stats.failed)++;
    acks.push_back(std::move(ack));
  }
  cv.notify_all();
}

void Worker::Impl::HeartbeatLoop() {
  for (;;) {
    std::vector<std::shared_ptr<Running>> due;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return leasing_done && running.empty(); });
      if (leasing_done && running.empty()) return;
      auto now = std::chrono::steady_clock::now();
      for (auto& [id, r] : running) {
        if (r->next_heartbeat <= now && !r->lost) due.push_back(r);
      }
    }
    for (auto& r : due) {
      auto hb = client->Heartbeat(r->leased.task.id, r->leased.lease.token);
      r->next_heartbeat = std::chrono::steady_clock::now() + HeartbeatInterval(r->leased);
      if (hb.ok()) {
        if (hb->cancel_requested && !r->cancel.exchange(true)) r->stop.request_stop();
      } else if (hb.status().code() == StatusCode::kAborted ||
                 hb.status().code() == StatusCode::kNotFound) {
        r->lost = true;
        r->stop.request_stop();
      }
    }
  }
}

void Worker::Impl::AckLoop() {
  for (;;) {
    std::vector<AckRequest> batch;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !acks.empty() || (leasing_done && busy == 0); });
      if (acks.empty()) return;  // stopping, nothing running, nothing to send
      // Linger a moment so that acks from several handlers share a request.
      if (acks.size() < options.ack_batch && !stopping) {
        cv.wait_for(lock, options.ack_linger, [&] { return acks.size() >= options.ack_batch; });
      }
      std::size_t n = std::min(acks.size(), options.ack_batch);
      batch.assign(std::make_move_iterator(acks.begin()), std::make_move_iterator(acks.begin() + static_cast<long>(n)));
      acks.erase(acks.begin(), acks.begin() + static_cast<long>(n));
    }
    std::chrono::milliseconds backoff{50};
    for (;;) {
      auto r = client->Ack(batch);
      if (r.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        for (const AckResult& a : *r) stats.acks_refused += a.status.ok() ? 0 : 1;
        break;
      }
      // Not delivered: try again (a repeat of a delivered ack is refused as
      // stale and changes nothing). Give up only on a bad request.
      if (r.status().code() == StatusCode::kInvalidArgument ||
          r.status().code() == StatusCode::kOutOfRange ||
          r.status().code() == StatusCode::kMalformed) {
        std::lock_guard<std::mutex> lock(mu);
        stats.acks_refused += batch.size();
        break;
      }
      std::this_thread::sleep_for(backoff);  // retry pacing while the server is away
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  }
}

Worker::Worker(ClientOptions client, WorkerOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->client_options = std::move(client);
  impl_->options = std::move(options);
  if (impl_->options.name.empty()) impl_->options.name = DefaultName();
  impl_->options.concurrency = std::max(1, impl_->options.concurrency);
  impl_->options.ack_batch = std::max<std::size_t>(1, impl_->options.ack_batch);
}

Worker::~Worker() { Stop(); }

void Worker::Handle(const std::string& type, HandlerFn fn) { impl_->handlers[type] = std::move(fn); }
void Worker::HandleAll(HandlerFn fn) { impl_->fallback = std::move(fn); }

Status Worker::Run() {
  ClientOptions co = impl_->client_options;
  co.max_idle_connections = static_cast<std::size_t>(impl_->options.concurrency) + 4;
  auto client = Client::Create(co);
  if (!client.ok()) return client.status();
  impl_->client = std::move(*client);
  auto lease_client = Client::Create(impl_->client_options);
  if (!lease_client.ok()) return lease_client.status();
  impl_->lease_client = std::move(*lease_client);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return Status::Ok();
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < impl_->options.concurrency; ++i) {
    threads.emplace_back([impl = impl_] { impl->HandlerLoop(); });
  }
  std::thread heartbeats([impl = impl_] { impl->HeartbeatLoop(); });
  std::thread acker([impl = impl_] { impl->AckLoop(); });
  impl_->LeaseLoop();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->leasing_done = true;
    impl_->cv.notify_all();
  }
  for (auto& t : threads) t.join();
  heartbeats.join();
  acker.join();
  return Status::Ok();
}

void Worker::Stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->stopping = true;
  impl_->cv.notify_all();
  // A long-poll in flight would hold Run() for up to poll_wait. Cutting it
  // may lose an answer that carried tasks; their leases then run out and the
  // server hands them out again (at-least-once).
  if (impl_->lease_client) impl_->lease_client->Interrupt();
}

Worker::Stats Worker::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

}  // namespace dray
