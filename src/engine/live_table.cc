#include "engine/live_table.h"

#include <cstring>
#include <new>

#include "engine/engine_records.h"

namespace dray {

namespace {

void AppendSized(std::string_view s, std::string* out) {
  const auto n = static_cast<std::uint32_t>(s.size());
  out->append(reinterpret_cast<const char*>(&n), sizeof n);
  out->append(s);
}

std::string_view TakeSized(std::string_view* in) {
  std::uint32_t n;
  std::memcpy(&n, in->data(), sizeof n);
  std::string_view s = in->substr(sizeof n, n);
  in->remove_prefix(sizeof n + n);
  return s;
}

// Each key and value with its length before it (labels may hold any byte).
std::string FlattenLabels(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    AppendSized(k, &out);
    AppendSized(v, &out);
  }
  return out;
}

std::map<std::string, std::string> UnflattenLabels(std::string_view flat) {
  std::map<std::string, std::string> out;
  while (!flat.empty()) {
    std::string_view k = TakeSized(&flat);
    std::string_view v = TakeSized(&flat);
    out.emplace(std::string(k), std::string(v));
  }
  return out;
}

}  // namespace

// One allocation per live task: this header, then the payload's bytes.
void LiveDeleter::operator()(Live* l) const {
  l->~Live();
  ::operator delete(static_cast<void*>(l));
}

// ---------------------------------------------------------------- the index

LiveTable::~LiveTable() {
  for (Live* head : buckets_) {
    while (head) {
      Live* next = head->next;
      LiveDeleter()(head);
      head = next;
    }
  }
}

// UUIDv7 ends in 62 random bits: the last eight bytes hash well as they are.
std::size_t LiveTable::Hash(const IdBytes& id) {
  std::uint64_t h = 0;
  for (std::size_t i = 8; i < 16; ++i) h = h << 8 | id[i];
  return static_cast<std::size_t>(h ^ (h >> 29));
}

Live* LiveTable::Find(const IdBytes& id) const {
  if (buckets_.empty()) return nullptr;
  for (Live* l = buckets_[Hash(id) & (buckets_.size() - 1)]; l; l = l->next) {
    if (l->id == id) return l;
  }
  return nullptr;
}

void LiveTable::Insert(LivePtr l) {
  if (size_ >= 2 * buckets_.size()) Grow();  // chains of two on average
  Live*& head = buckets_[Hash(l->id) & (buckets_.size() - 1)];
  l->next = head;
  head = l.release();
  ++size_;
}

LivePtr LiveTable::Remove(Live* l) {
  Live** p = &buckets_[Hash(l->id) & (buckets_.size() - 1)];
  while (*p != l) p = &(*p)->next;
  *p = l->next;
  l->next = nullptr;
  --size_;
  return LivePtr(l);
}

void LiveTable::Grow() {
  std::vector<Live*> old = std::move(buckets_);
  buckets_.assign(old.empty() ? 1024 : old.size() * 2, nullptr);
  const std::size_t mask = buckets_.size() - 1;
  for (Live* head : old) {
    while (head) {
      Live* next = head->next;
      Live*& b = buckets_[Hash(head->id) & mask];
      head->next = b;
      b = head;
      head = next;
    }
  }
}

// ---------------------------------------------------------------- compact form

const std::string* LiveTable::InternType(const std::string& type) {
  if (auto it = types_.find(type); it != types_.end()) return &*it;
  if (types_.size() >= kMaxInternedTypes) return nullptr;
  return &*types_.insert(type).first;
}

const Backoff* LiveTable::InternBackoff(const Backoff& b) {
  auto key = std::make_tuple(b.initial_ms, b.max_ms, b.multiplier, b.jitter);
  if (auto it = backoffs_.find(key); it != backoffs_.end()) return it->second.get();
  if (backoffs_.size() >= kMaxInternedBackoffs) return nullptr;
  return backoffs_.emplace(key, std::make_unique<Backoff>(b)).first->second.get();
}

LivePtr LiveTable::Compact(const Task& t, QueueState* q) {
  void* mem = ::operator new(sizeof(Live) + t.payload.size());
  LivePtr l(new (mem) Live);
  std::memcpy(static_cast<void*>(l.get() + 1), t.payload.data(), t.payload.size());
  l->payload_size = static_cast<std::uint32_t>(t.payload.size());
  l->id = *ParseId(t.id);  // the caller checked
  l->state_value = static_cast<std::uint8_t>(t.state);
  l->queue = q;
  l->type = InternType(t.type);
  if (!l->type) {
    l->MutableExtra().type = t.type;
    l->type = &l->extra->type;
  }
  l->backoff = InternBackoff(t.backoff);
  if (!l->backoff) {
    l->MutableExtra().backoff = std::make_unique<Backoff>(t.backoff);
    l->backoff = l->extra->backoff.get();
  }
  l->run_at = t.run_at;
  l->created_at = t.created_at;
  l->updated_at = t.updated_at;
  l->seq = t.seq;
  l->priority = t.priority;
  l->max_attempts = t.max_attempts;
  l->attempts = t.attempts;
  if (!t.key.empty()) l->MutableExtra().key = t.key;
  if (!t.labels.empty()) l->MutableExtra().labels = FlattenLabels(t.labels);
  if (t.timeout_ms) l->MutableExtra().timeout_ms = t.timeout_ms;
  if (t.lease_ms) l->MutableExtra().spec_lease_ms = t.lease_ms;
  if (!t.placement.empty()) l->MutableExtra().placement = std::make_unique<Placement>(t.placement);
  if (!t.workflow.empty() || !t.depends_on.empty()) {
    auto d = std::make_unique<Deps>();
    d->workflow_id = t.workflow;
    d->node = t.node;
    d->policy = t.on_dep_failure;
    for (const std::string& dep : t.depends_on) {
      if (auto b = ParseId(dep)) d->depends_on.push_back(*b);
    }
    l->MutableExtra().deps = std::move(d);
  }
  if (!t.concurrency_key.empty()) l->MutableExtra().concurrency_limit = t.concurrency_limit;
  Absorb(l.get(), t);
  return l;
}

void LiveTable::Absorb(Live* l, const Task& t) {
  l->state_value = static_cast<std::uint8_t>(t.state);
  l->run_at = t.run_at;
  l->updated_at = t.updated_at;
  l->max_attempts = t.max_attempts;
  l->attempts = t.attempts;
  const bool any = !t.result.empty() || !t.error.empty() || !t.worker.empty() ||
                   t.lease_token != 0 || t.lease_expires_at != 0 || t.cancel_requested ||
                   !t.history.empty();
  if (!any) {
    l->run.reset();
    return;
  }
  if (!l->run) l->run = std::make_unique<RunState>();
  RunState& r = *l->run;
  r.result = t.result;
  r.error = t.error;
  r.worker = t.worker;
  r.lease_token = t.lease_token;
  r.lease_expires_at = t.lease_expires_at;
  r.cancel_requested = t.cancel_requested;
  r.history = t.history;
}

Task LiveTable::Expand(const Live* l) {
  Task t;
  t.id = FormatId(l->id);
  t.ns = l->queue->ns;
  t.queue = l->queue->name;
  t.type = *l->type;
  t.payload = std::string(l->payload());
  t.priority = l->priority;
  t.run_at = l->run_at;
  t.max_attempts = l->max_attempts;
  t.backoff = *l->backoff;
  t.state = l->state();
  t.attempts = l->attempts;
  t.created_at = l->created_at;
  t.updated_at = l->updated_at;
  t.seq = l->seq;
  if (const Extra* x = l->extra.get()) {
    t.timeout_ms = x->timeout_ms;
    t.lease_ms = x->spec_lease_ms;
    t.key = x->key;
    t.labels = UnflattenLabels(x->labels);
    if (x->group) t.concurrency_key = *x->group->key;
    t.concurrency_limit = x->concurrency_limit;
    if (x->placement) t.placement = *x->placement;
    if (const Deps* d = x->deps.get()) {
      t.workflow = d->workflow_id;
      t.node = d->node;
      t.on_dep_failure = d->policy;
      t.depends_on.reserve(d->depends_on.size());
      for (const IdBytes& b : d->depends_on) t.depends_on.push_back(FormatId(b));
    }
  }
  if (const RunState* r = l->run.get()) {
    t.result = r->result;
    t.error = r->error;
    t.lease_token = r->lease_token;
    t.lease_expires_at = r->lease_expires_at;
    t.worker = r->worker;
    t.cancel_requested = r->cancel_requested;
    t.history = r->history;
  }
  return t;
}

}  // namespace dray
