#include "dray/worker.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace dray {

namespace {

using Clock = std::chrono::steady_clock;

std::string DefaultName() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

// The server says the lease is gone (409: stale token or the task is no
// longer running under it; 404: the task itself is gone).
bool LeaseLost(const Status& s) {
  return s.code() == StatusCode::kAborted || s.code() == StatusCode::kFailedPrecondition ||
         s.code() == StatusCode::kNotFound;
}

// Worth sending again: the server did not take the batch for a reason that
// may pass (it is away, overloaded or stopping). Anything else (a bad
// request, an answer that makes no sense) would fail the same way again.
bool Transient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded ||
         s.code() == StatusCode::kResourceExhausted;
}

}  // namespace

// Threads: the caller of Run() leases; `concurrency` handler threads run
// tasks; one thread heartbeats every leased task; one thread sends acks. They
// share the state below under `mu` and wake each other through `cv`.
//
// A task's life here: LeaseLoop puts it in `running` and `queue` (busy+1);
// a handler thread takes it off `queue`, runs it and calls Outcome, which
// removes it from `running` (busy-1) and appends its ack to `acks` unless
// the lease was lost; AckLoop sends `acks` in batches. So every leased task
// leaves exactly once, through Outcome.
struct Worker::Impl {
  struct Running {
    LeasedTask leased;
    std::stop_source stop;
    std::atomic<bool> cancel{false};  // relaxed: a flag read by the handler, no data behind it
    std::atomic<bool> lost{false};    // read by Outcome under mu after the heartbeat thread set it
    Clock::time_point next_heartbeat;  // guarded by mu
  };

  ClientOptions client_options;
  WorkerOptions options;
  std::unique_ptr<Client> client;        // heartbeats and acks
  std::unique_ptr<Client> lease_client;  // its own, so that Stop() can cut a long-poll
  std::map<std::string, HandlerFn> handlers;  // fixed once Run() starts
  HandlerFn fallback;

  mutable std::mutex mu;
  std::condition_variable cv;  // work queue, free slots, acks, stop
  // The heartbeat thread's own: it must not wake on every outcome, since
  // each wake walks `running`.
  std::condition_variable heartbeat_cv;
  Clock::time_point heartbeat_wake = Clock::time_point::max();  // guarded by mu
  bool stopping = false;       // guarded by mu
  bool cancel_running = false;  // Stop(kCancelRunning) was called; guarded by mu
  Clock::time_point ack_give_up_at = Clock::time_point::max();  // guarded by mu
  bool leasing_done = false;   // the lease loop returned; guarded by mu
  std::deque<std::shared_ptr<Running>> queue;  // leased, not yet started; guarded by mu
  std::unordered_map<std::string, std::shared_ptr<Running>> running;  // by id; guarded by mu
  std::size_t busy = 0;        // queued + running; guarded by mu
  std::vector<AckRequest> acks;  // guarded by mu
  Stats stats;                 // guarded by mu
  std::size_t lease_slots = 0;   // the lease loop's, set before any task; guarded by mu
  std::size_t lease_refill = 1;  // guarded by mu
  Clock::time_point next_worker_heartbeat{};  // the heartbeat thread's own

  // At most a third of the lease, so that two heartbeats may fail before it
  // runs out.
  std::chrono::milliseconds HeartbeatInterval(const LeasedTask& l) const {
    TimeMs started = l.task.history.empty() ? l.task.updated_at : l.task.history.back().started_at;
    std::chrono::milliseconds third(std::max<std::int64_t>((l.lease.expires_at - started) / 3, 50));
    if (options.heartbeat_interval.count() > 0) return std::min(options.heartbeat_interval, third);
    return third;
  }
  void LeaseLoop();
  void HandlerLoop();
  void HeartbeatLoop();
  void AckLoop();
  // Registration: the spec to send; a worker heartbeat when one is due
  // (registering again if the server does not know the worker).
  WorkerSpec Registration() const;
  void BeatAsWorker();
  void RunOne(const std::shared_ptr<Running>& r);
  void Outcome(const std::shared_ptr<Running>& r, AckRequest ack);
  bool SendAcks(const std::vector<AckRequest>& batch);
};

void Worker::Impl::LeaseLoop() {
  std::chrono::milliseconds backoff{50};
  const auto slots = static_cast<std::size_t>(options.concurrency + std::max(0, options.prefetch));
  const auto batch = static_cast<std::size_t>(options.lease_batch > 0 ? options.lease_batch
                                                                      : options.concurrency);
  // Lease once room for half a batch is free, or at once when the handlers
  // have nothing left to start: few large calls while tasks stream, no idle
  // handler while the server has work.
  const std::size_t refill = std::max<std::size_t>(1, std::min(batch, slots) / 2);
  {
    std::lock_guard<std::mutex> lock(mu);
    lease_slots = slots;
    lease_refill = refill;
  }
  for (;;) {
    std::size_t want;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] {
        return stopping || (busy < slots && (slots - busy >= refill || queue.empty()));
      });
      if (stopping) return;
      want = std::min(slots - busy, batch);
    }
    auto leased = lease_client->Lease(options.name, options.queues, want, options.poll_wait);
    if (!leased.ok()) {
      // The server is away or refusing: back off, but wake at once on Stop.
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, backoff, [&] { return stopping; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      continue;
    }
    backoff = std::chrono::milliseconds(50);
    std::lock_guard<std::mutex> lock(mu);
    // Tasks that arrive after Stop() are still ours: they run (or, after
    // kCancelRunning, fail retryably without running) like any other.
    auto now = Clock::now();
    auto earliest = Clock::time_point::max();
    for (LeasedTask& l : *leased) {
      auto r = std::make_shared<Running>();
      r->leased = std::move(l);
      r->next_heartbeat = now + HeartbeatInterval(r->leased);
      earliest = std::min(earliest, r->next_heartbeat);
      running[r->leased.task.id] = r;
      queue.push_back(r);
      ++busy;
      ++stats.leased;
    }
    cv.notify_all();
    if (earliest < heartbeat_wake) heartbeat_cv.notify_one();
  }
}

void Worker::Impl::HandlerLoop() {
  for (;;) {
    std::shared_ptr<Running> r;
    bool run;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return !queue.empty() || leasing_done; });
      if (queue.empty()) return;  // no more leases, and every leased task has started
      r = std::move(queue.front());
      queue.pop_front();
      run = !cancel_running;
      // The lease loop, holding fewer free slots than it refills at, waits
      // for the queue to empty to ask for them: tell it (only then, so that
      // a busy stream of short tasks does not wake every thread per pop).
      if (queue.empty() && busy < lease_slots && lease_slots - busy < lease_refill) {
        cv.notify_all();
      }
    }
    if (r->lost.load()) {
      Outcome(r, {});  // dropped: another attempt owns it already
    } else if (!run) {
      AckRequest ack;
      ack.id = r->leased.task.id;
      ack.token = r->leased.lease.token;
      ack.success = false;
      ack.error = "the worker stopped before running the task";
      Outcome(r, std::move(ack));
    } else {
      RunOne(r);
    }
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
  TaskContext ctx(task, r->stop.get_token(), &r->cancel, &r->leased.parents,
                  &r->leased.gpu_devices);
  try {
    ack.result = (*fn)(ctx);
    if (ack.result.empty()) ack.result = "null";
  } catch (const TaskFailed& e) {
    ack.success = false;
    ack.retry = e.retryable();
    ack.error = e.what();
    ack.result = e.result();
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
    // The server asked to cancel: report that the work stopped. Any failure
    // of a task with a cancel requested ends it cancelled on the server.
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
  if (leasing_done && running.empty()) heartbeat_cv.notify_one();
}

WorkerSpec Worker::Impl::Registration() const {
  WorkerSpec spec = *options.registration;
  spec.id = options.name;
  if (spec.queues.empty()) spec.queues = options.queues;
  return spec;
}

void Worker::Impl::BeatAsWorker() {
  if (!options.registration) return;
  const auto now = Clock::now();
  if (now < next_worker_heartbeat) return;
  next_worker_heartbeat = now + options.worker_heartbeat;
  auto hb = client->WorkerHeartbeat(options.name);
  if (!hb.ok() && hb.status().code() == StatusCode::kNotFound) {
    (void)client->RegisterWorker(Registration());
  }
}

void Worker::Impl::HeartbeatLoop() {
  for (;;) {
    BeatAsWorker();
    std::vector<std::shared_ptr<Running>> due;
    {
      std::unique_lock<std::mutex> lock(mu);
      auto next = Clock::now() + std::chrono::seconds(1);
      if (options.registration) next = std::min(next, next_worker_heartbeat);
      for (auto& [id, r] : running) next = std::min(next, r->next_heartbeat);
      if (leasing_done && running.empty()) return;
      // No predicate: a new lease due sooner than `next`, or the end,
      // wakes it to recompute.
      heartbeat_wake = next;
      heartbeat_cv.wait_until(lock, next);
      heartbeat_wake = Clock::time_point::max();
      if (leasing_done && running.empty()) return;
      auto now = Clock::now();
      for (auto& [id, r] : running) {
        if (r->next_heartbeat <= now && !r->lost) {
          due.push_back(r);
          // Set before the call, so that a slow heartbeat is not repeated.
          r->next_heartbeat = now + HeartbeatInterval(r->leased);
        }
      }
    }
    for (auto& r : due) {
      auto hb = client->Heartbeat(r->leased.task.id, r->leased.lease.token);
      if (hb.ok()) {
        if (hb->cancel_requested && !r->cancel.exchange(true)) r->stop.request_stop();
      } else if (LeaseLost(hb.status())) {
        r->lost = true;
        r->stop.request_stop();
      }
      // Any other error (server away): keep going; the next heartbeat may
      // still be in time, and if not the server will say 409.
    }
  }
}

// Sends one batch until the server answers, or until Stop()'s deadline for
// acks passes. Returns false if the batch was given up.
bool Worker::Impl::SendAcks(const std::vector<AckRequest>& batch) {
  std::chrono::milliseconds backoff{50};
  for (;;) {
    auto r = client->Ack(batch);
    if (r.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      for (const AckResult& a : *r) stats.acks_refused += a.status.ok() ? 0 : 1;
      return true;
    }
    // Not delivered, or not known to be: send again. A repeat of an ack the
    // server did take is refused as stale and changes nothing.
    if (!Transient(r.status())) {
      std::lock_guard<std::mutex> lock(mu);
      stats.acks_refused += batch.size();
      return true;
    }
    std::unique_lock<std::mutex> lock(mu);
    if (Clock::now() + backoff >= ack_give_up_at) {
      stats.acks_unsent += batch.size();
      return false;
    }
    cv.wait_for(lock, backoff, [&] { return Clock::now() + backoff >= ack_give_up_at; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
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
        cv.wait_for(lock, options.ack_linger,
                    [&] { return acks.size() >= options.ack_batch || stopping; });
      }
      std::size_t n = std::min(acks.size(), options.ack_batch);
      auto end = acks.begin() + static_cast<std::ptrdiff_t>(n);
      batch.assign(std::make_move_iterator(acks.begin()), std::make_move_iterator(end));
      acks.erase(acks.begin(), end);
    }
    SendAcks(batch);
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
  auto lease_client = Client::Create(impl_->client_options);
  if (!lease_client.ok()) return lease_client.status();
  {
    // Published under mu: Stop() reads lease_client under it.
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return Status::Ok();
    impl_->client = std::move(*client);
    impl_->lease_client = std::move(*lease_client);
  }
  if (impl_->options.registration) {
    // A spec the server refuses is the caller's mistake: say so. A server
    // that is away is not: the heartbeat thread registers once it answers.
    auto reg = impl_->client->RegisterWorker(impl_->Registration());
    if (!reg.ok() && reg.status().code() == StatusCode::kInvalidArgument) return reg.status();
    impl_->next_worker_heartbeat = Clock::now() + impl_->options.worker_heartbeat;
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
    impl_->heartbeat_cv.notify_one();
  }
  for (auto& t : threads) t.join();
  heartbeats.join();
  acker.join();
  if (impl_->options.registration) (void)impl_->client->DeregisterWorker(impl_->options.name);
  return Status::Ok();
}

void Worker::Stop(StopMode mode) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto now = Clock::now();
  if (!impl_->stopping) {
    impl_->stopping = true;
    impl_->ack_give_up_at = now + impl_->options.stop_ack_timeout;
    // A long-poll in flight would hold Run() for up to poll_wait. Cutting it
    // may lose an answer that carried tasks; their leases then run out and
    // the server hands them out again (at-least-once).
    // Shutdown, not Interrupt: the lease loop may be just about to start
    // its next call.
    if (impl_->lease_client) impl_->lease_client->Shutdown();
  }
  if (mode == StopMode::kCancelRunning && !impl_->cancel_running) {
    impl_->cancel_running = true;
    impl_->ack_give_up_at = now;  // one try per batch
    for (auto& [id, r] : impl_->running) r->stop.request_stop();
  }
  impl_->cv.notify_all();
}

Worker::Stats Worker::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

}  // namespace dray
