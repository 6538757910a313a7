// The record a chaos test keeps of every operation its clients made, with
// what each client learned from the answer (Jepsen's history).
//
// A client records an operation once it has its outcome. An outcome is
//   - ok:       the server said yes (a 2xx, or an ack item with "ok": true);
//   - refused:  the server said no and promised nothing changed (a 4xx, or a
//               refused ack item): 409 for a stale lease, 429, 422;
//   - unknown:  no answer, or a 5xx: the change may or may not have happened.
// Times are microseconds on the steady clock since the history began, taken
// just before the request was sent (invoked) and just after the answer came
// (returned), so "A returned before B was invoked" is a real-time order.
//
// Thread-safety: Record() may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "dray/status.h"

namespace dray::chaos {

enum class OpKind { kSubmit, kLease, kHeartbeat, kComplete, kFail };
enum class Outcome { kOk, kRefused, kUnknown };

const char* OpKindName(OpKind k);
const char* OutcomeName(Outcome o);

struct Op {
  OpKind kind = OpKind::kSubmit;
  Outcome outcome = Outcome::kUnknown;
  int status = 0;           // the HTTP status, 0 when there was no answer
  std::string client;       // the client (a worker's name for worker calls)
  std::string key;          // submit: the idempotency key, unique per submit
  std::string id;           // the task (empty for a submit without an answer
                            // and for a lease call without one)
  std::uint64_t token = 0;  // lease, heartbeat, complete, fail: the lease token
  int attempt = 0;          // lease: the attempt number the lease started
  bool retry = true;        // fail: whether the worker asked for a retry
  std::int64_t invoked_us = 0;
  std::int64_t returned_us = 0;
};

// Outcome of an HTTP status as the rules above read it.
Outcome OutcomeOfStatus(int status);

class History {
 public:
  History();
  // A history whose clock starts at `start_ns` on the steady clock: a child
  // process given its parent's start records times comparable with the
  // parent's (CLOCK_MONOTONIC is one clock for the whole machine).
  explicit History(std::int64_t start_ns) : start_ns_(start_ns) {}
  std::int64_t start_ns() const { return start_ns_; }

  // Microseconds since this history began.
  std::int64_t NowUs() const;
  void Record(Op op);
  void Append(const std::vector<Op>& ops);

  std::vector<Op> ops() const;
  std::size_t size() const;

  // One JSON object per line. Load reads what Save wrote.
  Status Save(const std::string& path) const;
  static StatusOr<std::vector<Op>> Load(const std::string& path);

 private:
  std::int64_t start_ns_;
  mutable std::mutex mu_;
  std::vector<Op> ops_;
};

}  // namespace dray::chaos
