#include "server/change_feed.h"

#include <charconv>
#include <cstdio>
#include <optional>

#include "core/json_writer.h"

namespace dray {

namespace {

std::string Hex(TimeMs v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "<epoch>-<seq>" -> seq, if the epoch is `epoch`.
std::optional<std::uint64_t> SeqOf(const std::string& id, const std::string& epoch) {
  if (id.size() <= epoch.size() + 1 || id.compare(0, epoch.size(), epoch) != 0 ||
      id[epoch.size()] != '-') {
    return std::nullopt;
  }
  std::uint64_t seq = 0;
  const char* begin = id.data() + epoch.size() + 1;
  auto [p, ec] = std::from_chars(begin, id.data() + id.size(), seq);
  if (ec != std::errc() || p != id.data() + id.size()) return std::nullopt;
  return seq;
}

std::string ResetText(const std::string& position, const std::string& why) {
  std::string data = "{\"reason\":";
  AppendJsonString(why, &data);
  data.push_back('}');
  return "id: " + position + "\nevent: reset\ndata: " + data + "\n\n";
}

}  // namespace

bool ChangeFilter::Matches(const Task& t) const {
  return t.ns == ns && (queue.empty() || t.queue == queue) &&
         (workflow.empty() || t.workflow == workflow) && (task.empty() || t.id == task);
}

ChangeFeed::ChangeFeed(ChangeFeedOptions options, const Clock* clock)
    : options_(options), clock_(clock), epoch_(Hex(clock->NowMs())) {}

bool ChangeFeed::recording(TimeMs now) const {
  return subscriber_count_.load(std::memory_order_relaxed) > 0 ||
         now < keep_until_.load(std::memory_order_relaxed);
}

void ChangeFeed::Missed() { hole_.store(true, std::memory_order_relaxed); }

void ChangeFeed::DropHoleLocked() {
  if (!hole_.exchange(false)) return;
  // Changes went by unpublished: nothing kept before them can be resumed from.
  kept_.clear();
  kept_bytes_ = 0;
  replay_from_ = next_seq_;
}

std::string ChangeFeed::PositionLocked() const {
  return epoch_ + "-" + std::to_string(next_seq_ - 1);
}

std::string ChangeFeed::EventText(std::uint64_t seq, const Task& t) const {
  std::string data;
  AppendTaskChangeJson(t, options_.max_result_bytes, &data);
  // `data` is one line: JSON text written by Dray has no raw newline.
  return "id: " + epoch_ + "-" + std::to_string(seq) + "\nevent: task\ndata: " + data + "\n\n";
}

void ChangeFeed::Publish(const std::vector<std::shared_ptr<const Task>>& changed) {
  std::lock_guard<std::mutex> lock(mu_);
  DropHoleLocked();
  for (const auto& t : changed) {
    const std::uint64_t seq = next_seq_++;
    Change c{seq, t->ns, t->queue, t->workflow, t->id, EventText(seq, *t)};
    WriteLocked(c.text, t.get());
    kept_bytes_ += c.text.size();
    kept_.push_back(std::move(c));
    while (!kept_.empty() &&
           (kept_.size() > options_.max_changes || kept_bytes_ > options_.max_bytes)) {
      kept_bytes_ -= kept_.front().text.size();
      replay_from_ = kept_.front().seq + 1;
      kept_.pop_front();
    }
  }
}

std::uint64_t ChangeFeed::Subscribe(ChangeFilter filter, const std::string& last_event_id,
                                    const std::shared_ptr<HttpStream>& out, const Task* current) {
  std::uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    DropHoleLocked();
    out->Write("retry: 1000\n\n");
    if (!last_event_id.empty()) {
      const std::optional<std::uint64_t> last = SeqOf(last_event_id, epoch_);
      if (!last || *last >= next_seq_) {
        out->Write(ResetText(PositionLocked(),
                             "the server restarted since event " + last_event_id +
                                 ": read the state again, then follow from here"));
      } else if (*last + 1 < replay_from_) {
        out->Write(ResetText(PositionLocked(), "the changes after event " + last_event_id +
                                                   " are no longer kept: read the state "
                                                   "again, then follow from here"));
      } else {
        for (const Change& c : kept_) {
          if (c.seq <= *last) continue;
          Task probe;  // the filter reads only these fields
          probe.ns = c.ns;
          probe.queue = c.queue;
          probe.workflow = c.workflow;
          probe.id = c.id;
          if (filter.Matches(probe)) out->Write(c.text);
        }
      }
    } else if (current) {
      // Where the task stands, at the position the stream goes on from.
      std::string text = EventText(next_seq_ - 1, *current);
      out->Write(text);
    }
    id = next_subscriber_++;
    subscribers_.emplace(id, Subscriber{std::move(filter), out});
    subscriber_count_.store(subscribers_.size(), std::memory_order_relaxed);
    keep_until_.store(clock_->NowMs() + options_.keep_ms, std::memory_order_relaxed);
  }
  out->OnClose([weak = weak_from_this(), id] {
    if (auto feed = weak.lock()) feed->Unsubscribe(id);
  });
  return id;
}

void ChangeFeed::Unsubscribe(std::uint64_t id) {
  std::shared_ptr<HttpStream> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = subscribers_.find(id);
    if (it == subscribers_.end()) return;
    out = std::move(it->second.out);
    subscribers_.erase(it);
    subscriber_count_.store(subscribers_.size(), std::memory_order_relaxed);
    keep_until_.store(clock_->NowMs() + options_.keep_ms, std::memory_order_relaxed);
  }
  out->End();
}

void ChangeFeed::Heartbeat() {
  std::lock_guard<std::mutex> lock(mu_);
  WriteLocked(": keep-alive\n\n", nullptr);
}

void ChangeFeed::WriteLocked(const std::string& text, const Task* change) {
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    // A stream that no longer takes bytes (its client left, or it was never
    // answered) is dropped here.
    if ((!change || it->second.filter.Matches(*change)) && !it->second.out->Write(text)) {
      it = subscribers_.erase(it);
    } else {
      ++it;
    }
  }
  subscriber_count_.store(subscribers_.size(), std::memory_order_relaxed);
}

std::size_t ChangeFeed::subscribers() const { return subscriber_count_.load(); }

}  // namespace dray
