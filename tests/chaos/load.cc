#include "chaos/load.h"

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "support/server_process.h"
#include "support/wait.h"

namespace dray::chaos {
namespace json = boost::json;
using dray::testing::HttpConn;
using dray::testing::HttpResult;

namespace {

// After a call that found no server, wait this long before the next one: a
// retry pause for a server that is restarting, not a wait for an event.
constexpr auto kReconnectPause = std::chrono::milliseconds(2);

std::uint64_t Token(const json::value& lease) {
  const json::value* t = lease.is_object() ? lease.get_object().if_contains("token") : nullptr;
  if (!t || !t->is_string()) return 0;
  return std::strtoull(std::string(t->get_string()).c_str(), nullptr, 10);
}

std::string Str(const json::value& v, const char* k) {
  const json::value* x = v.is_object() ? v.get_object().if_contains(k) : nullptr;
  return x && x->is_string() ? std::string(x->get_string()) : std::string();
}

}  // namespace

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

std::uint64_t ChaosSeed() {
  const int env = EnvInt("DRAY_CHAOS_SEED", 0);
  if (env) return static_cast<std::uint64_t>(env);
  return static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
}

MixedLoad::MixedLoad(int port, History* history, LoadOptions options)
    : port_(port), history_(history), opt_(std::move(options)) {}

MixedLoad::~MixedLoad() {
  StopSubmitters();
  StopWorkers();
}

int MixedLoad::ConfigureQueue(int max_attempts) {
  HttpConn c(port_, opt_.host);
  return c.Call("PATCH", "/v1/queues/" + opt_.queue,
                R"({"lease_ms":)" + std::to_string(opt_.lease_ms) +
                    R"(,"max_attempts":)" + std::to_string(max_attempts) +
                    R"(,"backoff":{"initial_ms":10,"max_ms":50,"multiplier":2,"jitter":0}})")
      .status;
}

Report MixedLoad::DrainAndCheck(const History& history, std::chrono::seconds timeout,
                                const CheckOptions& options) {
  StopSubmitters();
  const bool drained = WaitForDrain(port_, opt_.queue, timeout, opt_.host);
  StopWorkers();
  Report report = FetchAndCheck(port_, opt_.queue, history, options, opt_.host);
  if (!drained) {
    report.stuck.insert(report.stuck.begin(), "the queue did not drain within " +
                                                  std::to_string(timeout.count()) + " s");
  }
  return report;
}

void MixedLoad::StartSubmitters() {
  stop_submitters_ = false;
  for (int i = 0; i < opt_.submitters; ++i) submitters_.emplace_back([this, i] { SubmitLoop(i); });
}

void MixedLoad::StopSubmitters() {
  stop_submitters_ = true;
  for (auto& t : submitters_) t.join();
  submitters_.clear();
}

void MixedLoad::StartWorkers() {
  stop_workers_ = false;
  for (int i = 0; i < opt_.workers; ++i) workers_.emplace_back([this, i] { WorkLoop(i); });
}

void MixedLoad::StopWorkers() {
  stop_workers_ = true;
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void MixedLoad::SubmitLoop(int n) {
  const std::string client = opt_.client_prefix + "-s" + std::to_string(n);
  std::mt19937_64 rng(opt_.seed * 1000 + static_cast<std::uint64_t>(n));
  std::uniform_real_distribution<double> coin(0, 1);
  HttpConn conn(port_, opt_.host);
  std::uint64_t next = 0;
  // Keys whose submit got no answer: a careful client sends them again
  // (the idempotency key makes that safe), so each is retried until answered.
  std::vector<std::string> pending;
  while (!stop_submitters_) {
    if (opt_.max_outstanding > 0 && acked_.load() > outcomes_.load() + opt_.max_outstanding) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the workers' pace, polled
      continue;
    }
    std::vector<std::string> keys;
    if (!pending.empty()) {
      keys.swap(pending);
    } else {
      const int count = coin(rng) < opt_.batch_ratio ? 5 : 1;
      for (int i = 0; i < count; ++i) keys.push_back(client + "-" + std::to_string(next++));
    }
    std::string body;
    const std::string pad = opt_.payload_padding ? R"(,"pad":")" + std::string(opt_.payload_padding, 'x') + "\"" : "";
    auto spec = [&](const std::string& key) {
      return R"({"type":"chaos","queue":")" + opt_.queue + R"(","key":")" + key +
             R"(","payload":{"key":")" + key + "\"" + pad + "}}";
    };
    if (keys.size() == 1) {
      body = spec(keys[0]);
    } else {
      body = R"({"tasks":[)";
      for (std::size_t i = 0; i < keys.size(); ++i) body += (i ? "," : "") + spec(keys[i]);
      body += "]}";
    }
    const std::int64_t invoked = history_->NowUs();
    HttpResult r = conn.Call("POST", "/v1/tasks", body, opt_.call_timeout);
    const std::int64_t returned = history_->NowUs();
    Outcome outcome = OutcomeOfStatus(r.status);
    std::vector<std::string> ids(keys.size());
    if (outcome == Outcome::kOk) {
      json::value v = r.json();
      if (keys.size() == 1) {
        ids[0] = Str(v, "id");
      } else if (const json::value* arr = v.is_object() ? v.get_object().if_contains("ids") : nullptr;
                 arr && arr->is_array() && arr->get_array().size() == keys.size()) {
        for (std::size_t i = 0; i < keys.size(); ++i) ids[i] = std::string(arr->get_array()[i].as_string());
      }
      for (const std::string& id : ids) {
        if (id.empty()) outcome = Outcome::kUnknown;  // a 2xx we cannot read
      }
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
      Op op;
      op.kind = OpKind::kSubmit;
      op.outcome = outcome;
      op.status = r.status;
      op.client = client;
      op.key = keys[i];
      if (outcome == Outcome::kOk) op.id = ids[i];
      op.invoked_us = invoked;
      op.returned_us = returned;
      history_->Record(std::move(op));
    }
    if (outcome == Outcome::kOk) acked_ += keys.size();
    if (outcome == Outcome::kUnknown) pending = keys;
    if (r.status == 0 || r.status == 503) std::this_thread::sleep_for(kReconnectPause);
  }
}

void MixedLoad::WorkLoop(int n) {
  const std::string worker = opt_.client_prefix + "-w" + std::to_string(n);
  std::mt19937_64 rng(opt_.seed * 1000 + 500 + static_cast<std::uint64_t>(n));
  std::uniform_real_distribution<double> coin(0, 1);
  HttpConn conn(port_, opt_.host);
  const std::string lease_body = R"({"worker":")" + worker + R"(","queues":[")" + opt_.queue +
                                 R"("],"max":)" + std::to_string(opt_.lease_max) +
                                 R"(,"wait_ms":100,"lease_ms":)" + std::to_string(opt_.lease_ms) + "}";
  auto record = [&](OpKind kind, Outcome outcome, int status, const std::string& id,
                    std::uint64_t token, std::int64_t invoked, std::int64_t returned, bool retry = true) {
    Op op;
    op.kind = kind;
    op.outcome = outcome;
    op.status = status;
    op.client = worker;
    op.id = id;
    op.token = token;
    op.retry = retry;
    op.invoked_us = invoked;
    op.returned_us = returned;
    history_->Record(std::move(op));
    if (outcome == Outcome::kOk && kind != OpKind::kHeartbeat) ++outcomes_;
  };
  struct Leased {
    std::string id;
    std::uint64_t token;
  };
  while (!stop_workers_) {
    std::int64_t invoked = history_->NowUs();
    HttpResult r = conn.Call("POST", "/v1/leases", lease_body, opt_.call_timeout);
    std::int64_t returned = history_->NowUs();
    std::vector<Leased> leased;
    json::value v = r.json();
    const json::value* tasks = v.is_object() ? v.get_object().if_contains("tasks") : nullptr;
    if (r.status != 200 || !tasks || !tasks->is_array()) {
      Op op;
      op.kind = OpKind::kLease;
      op.outcome = r.status == 200 ? Outcome::kUnknown : OutcomeOfStatus(r.status);
      op.status = r.status;
      op.client = worker;
      op.invoked_us = invoked;
      op.returned_us = returned;
      history_->Record(std::move(op));
      if (r.status == 0 || r.status == 503) std::this_thread::sleep_for(kReconnectPause);
      continue;
    }
    for (const json::value& t : tasks->get_array()) {
      Op op;
      op.kind = OpKind::kLease;
      op.outcome = Outcome::kOk;
      op.status = r.status;
      op.client = worker;
      op.id = Str(t, "id");
      op.token = Token(t.at("lease"));
      op.attempt = static_cast<int>(t.at("attempts").as_int64());
      op.invoked_us = invoked;
      op.returned_us = returned;
      leased.push_back({op.id, op.token});
      history_->Record(std::move(op));
    }
    if (leased.empty()) continue;
    if (opt_.work.count() > 0) std::this_thread::sleep_for(opt_.work);  // the handler's work
    for (const Leased& l : leased) {
      if (coin(rng) >= opt_.heartbeat_ratio) continue;
      invoked = history_->NowUs();
      HttpResult h = conn.Call("POST", "/v1/tasks/" + l.id + "/heartbeat",
                               R"({"lease":")" + std::to_string(l.token) + R"("})", opt_.call_timeout);
      record(OpKind::kHeartbeat, OutcomeOfStatus(h.status), h.status, l.id, l.token, invoked,
             history_->NowUs());
    }
    // Each task's outcome: complete, or fail (with or without a retry).
    struct Decision {
      OpKind kind;
      bool retry;
    };
    std::vector<Decision> decisions;
    for (std::size_t i = 0; i < leased.size(); ++i) {
      const double x = coin(rng);
      if (x < opt_.final_fail_ratio) {
        decisions.push_back({OpKind::kFail, false});
      } else if (x < opt_.final_fail_ratio + opt_.retry_fail_ratio) {
        decisions.push_back({OpKind::kFail, true});
      } else {
        decisions.push_back({OpKind::kComplete, true});
      }
    }
    // Report; outcomes without an answer are sent again, under the same
    // token, until answered or the lease has run out (as the SDK does).
    const bool batched = coin(rng) < opt_.batch_ratio;
    const auto lease_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.lease_ms);
    std::vector<std::size_t> unanswered(leased.size());
    for (std::size_t i = 0; i < leased.size(); ++i) unanswered[i] = i;
    while (!unanswered.empty()) {
      std::vector<std::size_t> again;
      if (batched) {
        std::string body = R"({"acks":[)";
        for (std::size_t k = 0; k < unanswered.size(); ++k) {
          const std::size_t i = unanswered[k];
          body += (k ? "," : "");
          body += R"({"id":")" + leased[i].id + R"(","lease":")" + std::to_string(leased[i].token) + "\"";
          if (decisions[i].kind == OpKind::kFail) {
            body += std::string(R"(,"error":"chaos","retry":)") + (decisions[i].retry ? "true" : "false");
          } else {
            body += R"(,"result":{"ok":true})";
          }
          body += "}";
        }
        body += "]}";
        invoked = history_->NowUs();
        HttpResult a = conn.Call("POST", "/v1/acks", body, opt_.call_timeout);
        returned = history_->NowUs();
        json::value av = a.json();
        const json::value* results = av.is_object() ? av.get_object().if_contains("results") : nullptr;
        const bool readable = a.status == 200 && results && results->is_array() &&
                              results->get_array().size() == unanswered.size();
        for (std::size_t k = 0; k < unanswered.size(); ++k) {
          const std::size_t i = unanswered[k];
          Outcome o = Outcome::kUnknown;
          if (readable) {
            const json::value& item = results->get_array()[k];
            const json::value* ok = item.is_object() ? item.get_object().if_contains("ok") : nullptr;
            o = ok && ok->is_bool() && ok->get_bool() ? Outcome::kOk : Outcome::kRefused;
          } else if (OutcomeOfStatus(a.status) == Outcome::kRefused) {
            o = Outcome::kRefused;
          }
          record(decisions[i].kind, o, a.status, leased[i].id, leased[i].token, invoked, returned,
                 decisions[i].retry);
          if (o == Outcome::kUnknown) again.push_back(i);
        }
      } else {
        for (const std::size_t i : unanswered) {
          const std::string tok = R"({"lease":")" + std::to_string(leased[i].token) + "\"";
          const bool fail = decisions[i].kind == OpKind::kFail;
          invoked = history_->NowUs();
          HttpResult a =
              fail ? conn.Call("POST", "/v1/tasks/" + leased[i].id + "/fail",
                               tok + R"(,"error":"chaos","retry":)" +
                                   (decisions[i].retry ? "true}" : "false}"),
                               opt_.call_timeout)
                   : conn.Call("POST", "/v1/tasks/" + leased[i].id + "/complete",
                               tok + R"(,"result":{"ok":true}})", opt_.call_timeout);
          const Outcome o = OutcomeOfStatus(a.status);
          record(decisions[i].kind, o, a.status, leased[i].id, leased[i].token, invoked,
                 history_->NowUs(), decisions[i].retry);
          if (o == Outcome::kUnknown) again.push_back(i);
        }
      }
      unanswered.swap(again);
      if (unanswered.empty() || stop_workers_ || std::chrono::steady_clock::now() >= lease_end) break;
      std::this_thread::sleep_for(kReconnectPause);
    }
  }
}

bool WaitForDrain(int port, const std::string& queue, std::chrono::milliseconds timeout,
                  const std::string& host) {
  HttpConn c(port, host);
  return dray::testing::WaitFor(
      [&] {
        json::value q = c.Call("GET", "/v1/queues/" + queue).json();
        const json::value* counts = q.is_object() ? q.get_object().if_contains("counts") : nullptr;
        if (!counts || !counts->is_object()) return false;
        for (const char* s : {"scheduled", "ready", "running", "blocked"}) {
          const json::value* x = counts->get_object().if_contains(s);
          if (x && x->is_int64() && x->get_int64() != 0) return false;
        }
        return true;
      },
      timeout);
}

StatusOr<std::vector<FinalTask>> FetchTasks(int port, const std::string& queue,
                                            const std::string& host) {
  HttpConn c(port, host);
  std::vector<FinalTask> out;
  std::string cursor;
  for (;;) {
    HttpResult r = c.Call("GET", "/v1/tasks?queue=" + queue + "&limit=1000&order=asc" +
                                     (cursor.empty() ? "" : "&cursor=" + cursor));
    if (r.status != 200) return Unavailable("listing tasks: HTTP " + std::to_string(r.status) + " " + r.body);
    json::value page = r.json();
    for (const json::value& t : page.at("tasks").as_array()) {
      auto ft = ParseFinalTask(t);
      if (!ft.ok()) return ft.status();
      out.push_back(std::move(*ft));
    }
    const json::value& next = page.at("next_cursor");
    if (next.is_null()) break;
    cursor = std::string(next.as_string());
  }
  return out;
}

Report FetchAndCheck(int port, const std::string& queue, const History& history,
                     const CheckOptions& options, const std::string& host) {
  auto tasks = FetchTasks(port, queue, host);
  Report report;
  if (!tasks.ok()) {
    report.illegal.push_back("could not read the final state: " + tasks.status().message());
  } else {
    report = Check(history.ops(), *tasks, options);
  }
  if (!report.ok() || std::getenv("DRAY_CHAOS_KEEP_HISTORY")) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("dray-chaos-history-" + std::to_string(::getpid()) + ".jsonl"))
                                 .string();
    if (history.Save(path).ok()) report.history_path = path;
  }
  return report;
}

}  // namespace dray::chaos
