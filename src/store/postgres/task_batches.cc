#include "store/postgres/task_batches.h"

#include <unordered_map>

#include "store/documents.h"

namespace dray {
namespace {

void PutBigEndian32(std::uint32_t v, std::string* out) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                         static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(bytes, 4);
}

void PutBigEndian64(std::uint64_t v, std::string* out) {
  PutBigEndian32(static_cast<std::uint32_t>(v >> 32), out);
  PutBigEndian32(static_cast<std::uint32_t>(v), out);
}

std::string_view UpToNul(std::string_view v) { return v.substr(0, v.find('\0')); }

// A task's row, as the database tells rows apart: (ns, id) as stored,
// length-prefixed so that no two pairs make one key.
std::string RowKey(const Task& t) {
  const std::string_view ns = UpToNul(t.ns);
  std::string key = std::to_string(ns.size());
  key += ':';
  key += ns;
  key += UpToNul(t.id);
  return key;
}

}  // namespace

std::vector<PlannedStatement> PlanStatements(std::span<const Mutation> batch, std::size_t max_rows) {
  using Kind = PlannedStatement::Kind;
  std::vector<PlannedStatement> out;
  // Within the current run of task mutations: the statement that holds
  // each task's last mutation so far.
  std::unordered_map<std::string, std::size_t> last;
  std::size_t run_start = 0;  // the run's first statement
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Task* task = TaskOf(batch[i]).get();
    if (!task) {
      out.push_back(PlannedStatement{Kind::kSingle, {i}});
      last.clear();
      run_start = out.size();
      continue;
    }
    const Kind kind = std::holds_alternative<mutation::PutTask>(batch[i]) ? Kind::kPutTasks
                                                                          : Kind::kUpdateTasks;
    auto [it, first] = last.try_emplace(RowKey(*task), 0);
    std::size_t s = first ? run_start : it->second + 1;
    while (s < out.size() && (out[s].kind != kind || out[s].mutations.size() >= max_rows)) ++s;
    if (s == out.size()) out.push_back(PlannedStatement{kind, {}});
    out[s].mutations.push_back(i);
    it->second = s;
  }
  for (PlannedStatement& st : out) {
    if (st.mutations.size() == 1) st.kind = Kind::kSingle;
  }
  return out;
}

void BinaryArray::AddText(std::string_view v) {
  v = UpToNul(v);
  PutBigEndian32(static_cast<std::uint32_t>(v.size()), &elements_);
  elements_.append(v);
  ++count_;
}

void BinaryArray::AddInt8(std::int64_t v) {
  PutBigEndian32(8, &elements_);
  PutBigEndian64(static_cast<std::uint64_t>(v), &elements_);
  ++count_;
}

void BinaryArray::AddBool(bool v) {
  PutBigEndian32(1, &elements_);
  elements_ += v ? '\1' : '\0';
  ++count_;
}

std::string BinaryArray::Encode() const {
  std::string out;
  out.reserve(20 + elements_.size());
  PutBigEndian32(count_ == 0 ? 0 : 1, &out);  // dimensions
  PutBigEndian32(0, &out);                     // flags: no NULLs
  PutBigEndian32(element_type_, &out);
  if (count_ == 0) return out;
  PutBigEndian32(static_cast<std::uint32_t>(count_), &out);
  PutBigEndian32(1, &out);  // lower bound
  out += elements_;
  return out;
}

namespace {

std::vector<std::string> EncodeAll(const std::vector<BinaryArray>& arrays) {
  std::vector<std::string> out;
  out.reserve(arrays.size());
  for (const BinaryArray& a : arrays) out.push_back(a.Encode());
  return out;
}

}  // namespace

std::vector<std::string> PutTaskArrays(std::span<const Mutation> batch,
                                       std::span<const std::size_t> which) {
  constexpr auto T = BinaryArray::kText;
  constexpr auto I = BinaryArray::kInt8;
  // kColumns' order.
  std::vector<BinaryArray> a = {
      BinaryArray(T), BinaryArray(T), BinaryArray(T), BinaryArray(T), BinaryArray(T),
      BinaryArray(I), BinaryArray(I), BinaryArray(I), BinaryArray(T), BinaryArray(I),
      BinaryArray(I), BinaryArray(T), BinaryArray(T), BinaryArray(I), BinaryArray(I),
      BinaryArray(T), BinaryArray(T), BinaryArray(I), BinaryArray(I), BinaryArray(I),
      BinaryArray(I), BinaryArray(I), BinaryArray(T), BinaryArray(BinaryArray::kBool),
      BinaryArray(I), BinaryArray(T), BinaryArray(T), BinaryArray(T)};
  for (std::size_t i : which) {
    const Task& t = *TaskOf(batch[i]);
    a[0].AddText(t.ns);
    a[1].AddText(t.id);
    a[2].AddText(t.queue);
    a[3].AddText(t.type);
    a[4].AddText(t.payload);
    a[5].AddInt8(t.priority);
    a[6].AddInt8(t.run_at);
    a[7].AddInt8(t.max_attempts);
    a[8].AddText(BackoffDocument(t.backoff));
    a[9].AddInt8(t.timeout_ms);
    a[10].AddInt8(t.lease_ms);
    a[11].AddText(t.key);
    a[12].AddText(LabelsDocument(t.labels));
    a[13].AddInt8(static_cast<int>(t.state));
    a[14].AddInt8(t.attempts);
    a[15].AddText(t.result);
    a[16].AddText(t.error);
    a[17].AddInt8(t.created_at);
    a[18].AddInt8(t.updated_at);
    a[19].AddInt8(t.finished_at);
    a[20].AddInt8(static_cast<std::int64_t>(t.lease_token));
    a[21].AddInt8(t.lease_expires_at);
    a[22].AddText(t.worker);
    a[23].AddBool(t.cancel_requested);
    a[24].AddInt8(static_cast<std::int64_t>(t.seq));
    a[25].AddText(HistoryDocument(t.history));
    a[26].AddText(FlowDocument(t));
    a[27].AddText(t.workflow);
  }
  return EncodeAll(a);
}

std::vector<std::string> UpdateTaskArrays(std::span<const Mutation> batch,
                                          std::span<const std::size_t> which) {
  constexpr auto T = BinaryArray::kText;
  constexpr auto I = BinaryArray::kInt8;
  std::vector<BinaryArray> a = {BinaryArray(I), BinaryArray(I), BinaryArray(I),
                                BinaryArray(T), BinaryArray(T), BinaryArray(I),
                                BinaryArray(I), BinaryArray(I), BinaryArray(I),
                                BinaryArray(T), BinaryArray(BinaryArray::kBool),
                                BinaryArray(T), BinaryArray(T), BinaryArray(T)};
  for (std::size_t i : which) {
    const Task& t = *TaskOf(batch[i]);
    a[0].AddInt8(t.run_at);
    a[1].AddInt8(static_cast<int>(t.state));
    a[2].AddInt8(t.attempts);
    a[3].AddText(t.result);
    a[4].AddText(t.error);
    a[5].AddInt8(t.updated_at);
    a[6].AddInt8(t.finished_at);
    a[7].AddInt8(static_cast<std::int64_t>(t.lease_token));
    a[8].AddInt8(t.lease_expires_at);
    a[9].AddText(t.worker);
    a[10].AddBool(t.cancel_requested);
    a[11].AddText(HistoryDocument(t.history));
    a[12].AddText(t.ns);
    a[13].AddText(t.id);
  }
  return EncodeAll(a);
}

}  // namespace dray
