// Long-poll waiters of one kind: callers parked until something they wait
// for happens or their deadline passes. TaskService keeps every waiter it
// has in three of these (leases, tasks, workflows); the engine keeps only
// what it decides with, a waiting lease's request (Engine::AddWaiter).
//
// Each waiter has an id, an optional key (the task or workflow it waits
// for; empty for a lease, found by id), its entry (the answer callback and
// what that needs) and a deadline timer. Whoever takes a waiter out (by id,
// by key, or all at stop) owns its entry and answers it; its timer is
// cancelled at once, so a waiter is answered exactly once.
//
// Threading: none of its own. The owner guards it with its lock; a
// deadline's handler runs on an io thread and must take that lock before
// it calls TakeById (which tells it whether the waiter is still there).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dray {

template <typename Entry>
class WaitList {
 public:
  explicit WaitList(boost::asio::io_context& ioc) : ioc_(ioc) {}
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  // Parks `entry` under `key` for `wait`; then `on_deadline(id)` runs on an
  // io thread, unless the waiter was taken out first.
  std::uint64_t Add(std::string key, Entry entry, std::chrono::milliseconds wait,
                    std::function<void(std::uint64_t id)> on_deadline) {
    const std::uint64_t id = next_id_++;
    auto timer = std::make_unique<boost::asio::steady_timer>(ioc_);
    timer->expires_after(wait);
    timer->async_wait([id, on_deadline = std::move(on_deadline)](boost::system::error_code ec) {
      if (!ec) on_deadline(id);
    });
    if (!key.empty()) by_key_.emplace(key, id);
    waiters_.emplace(id, Waiter{std::move(key), std::move(entry), std::move(timer)});
    return id;
  }

  // The waiter `id`, taken out; nullopt if it was answered already.
  std::optional<Entry> TakeById(std::uint64_t id) {
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return std::nullopt;
    if (!it->second.key.empty()) {
      auto [lo, hi] = by_key_.equal_range(it->second.key);
      for (auto k = lo; k != hi; ++k) {
        if (k->second == id) {
          by_key_.erase(k);
          break;
        }
      }
    }
    return Take(it);
  }

  // Every waiter under `key`, taken out, oldest first.
  std::vector<Entry> TakeByKey(const std::string& key) {
    std::vector<Entry> out;
    auto [lo, hi] = by_key_.equal_range(key);
    if (lo == hi) return out;
    std::vector<std::uint64_t> ids;
    for (auto k = lo; k != hi; ++k) ids.push_back(k->second);
    by_key_.erase(lo, hi);
    std::sort(ids.begin(), ids.end());
    for (std::uint64_t id : ids) out.push_back(Take(waiters_.find(id)));
    return out;
  }

  // Every waiter, with its id and key, taken out (the service stops).
  struct Taken {
    std::uint64_t id;
    std::string key;
    Entry entry;
  };
  std::vector<Taken> TakeAll() {
    std::vector<Taken> out;
    out.reserve(waiters_.size());
    for (auto& [id, w] : waiters_) {
      w.timer->cancel();
      out.push_back(Taken{id, std::move(w.key), std::move(w.entry)});
    }
    waiters_.clear();
    by_key_.clear();
    return out;
  }

  bool empty() const { return waiters_.empty(); }
  std::size_t size() const { return waiters_.size(); }

 private:
  struct Waiter {
    std::string key;
    Entry entry;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  using Map = std::unordered_map<std::uint64_t, Waiter>;

  Entry Take(typename Map::iterator it) {
    it->second.timer->cancel();
    Entry entry = std::move(it->second.entry);
    waiters_.erase(it);
    return entry;
  }

  boost::asio::io_context& ioc_;
  std::uint64_t next_id_ = 1;
  Map waiters_;
  std::unordered_multimap<std::string, std::uint64_t> by_key_;
};

}  // namespace dray
