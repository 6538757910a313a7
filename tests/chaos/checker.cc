#include "chaos/checker.h"

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <sstream>
#include <unordered_map>

namespace dray::chaos {
namespace json = boost::json;

namespace {

bool IsTerminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

// Outcomes after which the task may run again.
bool IsRetryableEnd(const std::string& outcome) {
  return outcome == "failed" || outcome == "expired" || outcome == "timed_out";
}

std::string Str(const json::object& o, const char* k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

int Int(const json::object& o, const char* k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_int64() ? static_cast<int>(v->get_int64()) : 0;
}

// What the clients learned about one task.
struct Seen {
  struct Lease {
    std::uint64_t token;
    int attempt;
    std::int64_t returned_us;
    std::string client;
  };
  std::vector<Lease> leases;   // answered leases, in record order
  std::vector<const Op*> accepted;  // heartbeats, completes and fails answered yes
};

void CheckHistory(const FinalTask& t, const CheckOptions& opt, Report* r) {
  auto illegal = [&](const std::string& why) { r->illegal.push_back("task " + t.id + ": " + why); };
  const auto& h = t.history;
  if (static_cast<int>(h.size()) != t.attempts) {
    illegal("attempts is " + std::to_string(t.attempts) + " but the history has " +
            std::to_string(h.size()));
  }
  if (t.max_attempts > 0 && t.attempts > t.max_attempts) {
    illegal(std::to_string(t.attempts) + " attempts, more than max_attempts " +
            std::to_string(t.max_attempts));
  }
  for (std::size_t i = 0; i < h.size(); ++i) {
    const FinalAttempt& a = h[i];
    if (a.number != static_cast<int>(i) + 1) {
      illegal("attempt at position " + std::to_string(i + 1) + " is numbered " +
              std::to_string(a.number));
    }
    const bool last = i + 1 == h.size();
    if (!last && !IsRetryableEnd(a.outcome)) {
      illegal("attempt " + std::to_string(a.number) + " ended '" + a.outcome +
              "' yet another attempt followed");
    }
    if (opt.check_times) {
      if (!a.ended_at.empty() && a.ended_at < a.started_at) {
        illegal("attempt " + std::to_string(a.number) + " ended before it started");
      }
      if (!last && h[i + 1].started_at < a.ended_at) {
        illegal("attempt " + std::to_string(a.number + 1) + " started before attempt " +
                std::to_string(a.number) + " ended");
      }
    }
    if (a.outcome == "running" && a.ended_at.size()) {
      illegal("attempt " + std::to_string(a.number) + " is running but has ended_at");
    }
  }
  const std::string last = h.empty() ? "" : h.back().outcome;
  bool consistent = true;
  if (t.state == "running") {
    consistent = last == "running";
  } else if (t.state == "succeeded") {
    consistent = last == "succeeded";
  } else if (t.state == "failed") {
    consistent = IsRetryableEnd(last);
  } else if (t.state == "scheduled" || t.state == "ready" || t.state == "blocked") {
    consistent = h.empty() || IsRetryableEnd(last);
  } else if (t.state == "cancelled") {
    consistent = last != "running" && last != "succeeded";
  } else {
    illegal("unknown state '" + t.state + "'");
  }
  if (!consistent) {
    illegal("state '" + t.state + "' after a last attempt '" + (last.empty() ? "(none)" : last) + "'");
  }
}

}  // namespace

StatusOr<FinalTask> ParseFinalTask(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return DataLoss("a task is not a JSON object");
  FinalTask t;
  t.id = Str(*o, "id");
  t.key = Str(*o, "key");
  t.state = Str(*o, "state");
  t.attempts = Int(*o, "attempts");
  t.max_attempts = Int(*o, "max_attempts");
  if (t.id.empty() || t.state.empty()) return DataLoss("a task without id or state: " + json::serialize(v));
  const json::value* hist = o->if_contains("history");
  if (hist && hist->is_array()) {
    for (const json::value& x : hist->get_array()) {
      const json::object* a = x.if_object();
      if (!a) return DataLoss("task " + t.id + ": an attempt is not an object");
      t.history.push_back(FinalAttempt{Int(*a, "number"), Str(*a, "worker"), Str(*a, "outcome"),
                                       Str(*a, "started_at"), Str(*a, "ended_at")});
    }
  }
  return t;
}

Report Check(const std::vector<Op>& ops, const std::vector<FinalTask>& tasks,
             const CheckOptions& opt) {
  Report r;
  r.ops = ops.size();
  r.tasks = tasks.size();

  // Submits by key: the acknowledged id, and whether any submit might have
  // created it (ok or unknown).
  struct KeyInfo {
    std::string acked_id;
    bool maybe = false;
  };
  std::unordered_map<std::string, KeyInfo> keys;
  std::unordered_map<std::string, Seen> seen;
  for (const Op& op : ops) {
    switch (op.kind) {
      case OpKind::kSubmit: {
        KeyInfo& k = keys[op.key];
        if (op.outcome == Outcome::kOk) {
          if (k.acked_id.empty()) {
            k.acked_id = op.id;
            ++r.acknowledged_submits;
          } else if (k.acked_id != op.id) {
            r.unexpected.push_back("key " + op.key + " acknowledged as " + k.acked_id + " and as " + op.id);
          }
        }
        if (op.outcome != Outcome::kRefused) k.maybe = true;
        break;
      }
      case OpKind::kLease:
        if (op.outcome == Outcome::kOk && !op.id.empty()) {
          seen[op.id].leases.push_back({op.token, op.attempt, op.returned_us, op.client});
        }
        break;
      case OpKind::kHeartbeat:
      case OpKind::kComplete:
      case OpKind::kFail:
        if (op.outcome == Outcome::kOk) {
          seen[op.id].accepted.push_back(&op);
          ++r.accepted_outcomes;
        }
        break;
    }
  }

  std::unordered_map<std::string, const FinalTask*> by_id;
  std::unordered_map<std::string, const FinalTask*> by_key;
  for (const FinalTask& t : tasks) {
    by_id[t.id] = &t;
    r.attempts += t.history.size();
    auto k = keys.find(t.key);
    if (t.key.empty() || k == keys.end()) {
      r.unexpected.push_back("task " + t.id + " with key '" + t.key + "' was never submitted");
    } else if (!k->second.maybe) {
      r.unexpected.push_back("task " + t.id + " exists though every submit of key " + t.key +
                             " was refused");
    }
    if (!t.key.empty() && !by_key.emplace(t.key, &t).second) {
      r.unexpected.push_back("key " + t.key + " has two tasks: " + by_key[t.key]->id + " and " + t.id);
    }
    if (!IsTerminal(t.state)) r.stuck.push_back("task " + t.id + " is still " + t.state);
    CheckHistory(t, opt, &r);
    // Duplicates: a later attempt after a healthy worker's attempt ran out.
    for (std::size_t i = 0; i + 1 < t.history.size(); ++i) {
      const FinalAttempt& a = t.history[i];
      if ((a.outcome == "expired" || a.outcome == "timed_out") && !opt.faulty_workers.count(a.worker)) {
        ++r.duplicates;
      }
    }
  }

  for (const auto& [key, k] : keys) {
    if (k.acked_id.empty()) continue;
    auto it = by_id.find(k.acked_id);
    if (it == by_id.end()) {
      r.lost.push_back("acknowledged submit " + key + " -> " + k.acked_id + " is missing");
    } else if (it->second->key != key) {
      r.lost.push_back("acknowledged submit " + key + " -> " + k.acked_id + " has key '" +
                       it->second->key + "'");
    } else if (!IsTerminal(it->second->state)) {
      r.lost.push_back("acknowledged submit " + key + " -> " + k.acked_id + " never finished (" +
                       it->second->state + ")");
    }
  }

  for (auto& [id, s] : seen) {
    auto it = by_id.find(id);
    const FinalTask* t = it == by_id.end() ? nullptr : it->second;
    // Leases: one token per attempt, tokens growing with attempts, and every
    // attempt a client was given is in the server's history.
    std::map<int, std::uint64_t> token_of_attempt;
    for (const Seen::Lease& l : s.leases) {
      auto [pos, fresh] = token_of_attempt.emplace(l.attempt, l.token);
      if (!fresh && pos->second != l.token) {
        r.illegal.push_back("task " + id + ": attempt " + std::to_string(l.attempt) +
                            " leased twice (tokens " + std::to_string(pos->second) + " and " +
                            std::to_string(l.token) + ")");
      }
      if (t && l.attempt > t->attempts) {
        r.illegal.push_back("task " + id + ": attempt " + std::to_string(l.attempt) +
                            " was leased but the history has " + std::to_string(t->attempts));
      }
    }
    std::uint64_t prev = 0;
    for (const auto& [attempt, token] : token_of_attempt) {
      if (token <= prev) {
        r.illegal.push_back("task " + id + ": attempt " + std::to_string(attempt) + " has token " +
                            std::to_string(token) + ", not above the previous attempt's " +
                            std::to_string(prev));
      }
      prev = token;
    }
    // Not [&]: clang 14 cannot capture a structured binding (C++20 allows it).
    auto attempt_of = [&leases = s.leases](std::uint64_t token) {
      for (const Seen::Lease& l : leases) {
        if (l.token == token) return l.attempt;
      }
      return 0;
    };
    for (const Op* op : s.accepted) {
      for (const Seen::Lease& l : s.leases) {
        if (l.token > op->token && l.returned_us < op->invoked_us) {
          r.stale_accepted.push_back(std::string(OpKindName(op->kind)) + " of task " + id + " by " +
                                     op->client + " under token " + std::to_string(op->token) +
                                     " accepted after token " + std::to_string(l.token) +
                                     " had been handed to " + l.client);
          break;
        }
      }
      if (!t) continue;
      const int attempt = attempt_of(op->token);
      const bool ends_task = op->kind == OpKind::kComplete || (op->kind == OpKind::kFail && !op->retry);
      if (!ends_task || attempt == 0) continue;
      const bool state_ok = op->kind == OpKind::kComplete
                                ? t->state == "succeeded"
                                : t->state == "failed" || t->state == "cancelled";
      if (t->attempts != attempt || !state_ok) {
        r.illegal.push_back("task " + id + ": " + OpKindName(op->kind) + " of attempt " +
                            std::to_string(attempt) + " was accepted, yet the task is " + t->state +
                            " after " + std::to_string(t->attempts) + " attempts");
      }
    }
  }
  return r;
}

std::string Report::Summary(std::size_t examples) const {
  std::ostringstream s;
  s << ops << " operations, " << acknowledged_submits << " acknowledged submits, " << tasks
    << " tasks, " << attempts << " attempts, " << accepted_outcomes
    << " accepted heartbeats/completes/fails; lost " << lost.size() << ", unexpected "
    << unexpected.size() << ", stale accepted " << stale_accepted.size() << ", illegal "
    << illegal.size() << ", stuck " << stuck.size() << ", duplicates " << duplicates;
  auto list = [&](const char* name, const std::vector<std::string>& v) {
    for (std::size_t i = 0; i < v.size() && i < examples; ++i) s << "\n  " << name << ": " << v[i];
  };
  list("lost", lost);
  list("unexpected", unexpected);
  list("stale accepted", stale_accepted);
  list("illegal", illegal);
  list("stuck", stuck);
  if (!history_path.empty()) s << "\n  history saved to " << history_path;
  return s.str();
}

}  // namespace dray::chaos
