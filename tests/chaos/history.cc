#include "chaos/history.h"

#include <boost/json.hpp>
#include <chrono>
#include <fstream>

namespace dray::chaos {
namespace json = boost::json;

namespace {

std::int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename E, std::size_t N>
bool FromName(std::string_view name, const char* const (&names)[N], E* out) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}

constexpr const char* kKindNames[] = {"submit", "lease", "heartbeat", "complete", "fail"};
constexpr const char* kOutcomeNames[] = {"ok", "refused", "unknown"};

}  // namespace

const char* OpKindName(OpKind k) { return kKindNames[static_cast<int>(k)]; }
const char* OutcomeName(Outcome o) { return kOutcomeNames[static_cast<int>(o)]; }

Outcome OutcomeOfStatus(int status) {
  if (status >= 200 && status < 300) return Outcome::kOk;
  if (status >= 400 && status < 500) return Outcome::kRefused;
  return Outcome::kUnknown;
}

History::History() : start_ns_(SteadyNs()) {}

std::int64_t History::NowUs() const { return (SteadyNs() - start_ns_) / 1000; }

void History::Record(Op op) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_.push_back(std::move(op));
}

void History::Append(const std::vector<Op>& ops) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_.insert(ops_.end(), ops.begin(), ops.end());
}

std::vector<Op> History::ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

std::size_t History::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_.size();
}

Status History::Save(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Unavailable("cannot write " + path);
  for (const Op& op : ops()) {
    json::object o;
    o["kind"] = OpKindName(op.kind);
    o["outcome"] = OutcomeName(op.outcome);
    o["status"] = op.status;
    o["client"] = op.client;
    if (!op.key.empty()) o["key"] = op.key;
    if (!op.id.empty()) o["id"] = op.id;
    if (op.token != 0) o["token"] = op.token;
    if (op.attempt != 0) o["attempt"] = op.attempt;
    if (op.kind == OpKind::kFail) o["retry"] = op.retry;
    o["invoked_us"] = op.invoked_us;
    o["returned_us"] = op.returned_us;
    out << json::serialize(o) << '\n';
  }
  out.flush();
  return out ? Status::Ok() : Unavailable("cannot write " + path);
}

StatusOr<std::vector<Op>> History::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path);
  std::vector<Op> ops;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    auto bad = [&](const std::string& why) {
      return DataLoss(path + ":" + std::to_string(n) + ": " + why);
    };
    if (!o) return bad("not a JSON object");
    Op op;
    auto str = [&](const char* k) -> std::string {
      const json::value* x = o->if_contains(k);
      return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    auto num = [&](const char* k) -> std::int64_t {
      const json::value* x = o->if_contains(k);
      if (!x) return 0;
      if (x->is_int64()) return x->get_int64();
      if (x->is_uint64()) return static_cast<std::int64_t>(x->get_uint64());
      return 0;
    };
    if (!FromName(str("kind"), kKindNames, &op.kind)) return bad("unknown kind");
    if (!FromName(str("outcome"), kOutcomeNames, &op.outcome)) return bad("unknown outcome");
    op.status = static_cast<int>(num("status"));
    op.client = str("client");
    op.key = str("key");
    op.id = str("id");
    op.token = static_cast<std::uint64_t>(num("token"));
    op.attempt = static_cast<int>(num("attempt"));
    const json::value* retry = o->if_contains("retry");
    op.retry = !retry || !retry->is_bool() || retry->get_bool();
    op.invoked_us = num("invoked_us");
    op.returned_us = num("returned_us");
    ops.push_back(std::move(op));
  }
  return ops;
}

}  // namespace dray::chaos
