// One suite for every Store implementation (SQLite now, PostgreSQL later),
// plus a randomized comparison with a simple in-memory model.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

namespace dray {
namespace {

using Factory = std::function<std::unique_ptr<Store>(const std::string& dir)>;

struct StoreKind {
  std::string name;
  Factory open;
};

std::unique_ptr<Store> OpenSqlite(const std::string& dir) {
  SqliteOptions o;
  o.path = dir + "/dray.db";
  auto s = OpenSqliteStore(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

Task MakeTask(std::string id, std::string ns = "default", TaskState state = TaskState::kReady,
              std::uint64_t seq = 1) {
  Task t;
  t.id = std::move(id);
  t.ns = std::move(ns);
  t.queue = "q";
  t.type = "t";
  t.payload = R"({"text":"żółw 🐢","n":[1,2,3]})";
  t.state = state;
  t.seq = seq;
  t.created_at = 1000 + static_cast<TimeMs>(seq);
  t.updated_at = t.created_at;
  return t;
}

std::shared_ptr<const Task> Shared(Task t) { return std::make_shared<const Task>(std::move(t)); }

class StoreConformanceTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dray-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void Put(std::vector<Task> tasks) {
    std::vector<Mutation> m;
    for (Task& t : tasks) m.push_back(Mutation::PutTask(Shared(std::move(t))));
    ASSERT_TRUE(store_->Commit(m).ok());
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, EveryFieldRoundTrips) {
  Task t = MakeTask("a");
  t.priority = -7;
  t.run_at = 123456789;
  t.max_attempts = 9;
  t.backoff = Backoff{10, 20, 1.5, 0.25};
  t.timeout_ms = 5000;
  t.lease_ms = 700;
  t.key = "k1";
  t.labels = {{"team", "core"}, {"tier", "gold"}};
  t.state = TaskState::kRunning;
  t.attempts = 2;
  t.result = R"({"ok":true})";
  t.error = "boom \"quoted\"\nnewline";
  t.finished_at = 0;
  t.lease_token = 1ull << 40;
  t.lease_expires_at = 999;
  t.worker = "w-1";
  t.cancel_requested = true;
  t.seq = 77;
  t.history = {Attempt{1, "w-0", 1, 2, AttemptOutcome::kExpired, "lease expired"},
               Attempt{2, "w-1", 3, 0, AttemptOutcome::kRunning, ""}};
  Put({t});
  auto got = store_->GetTask("default", "a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, t);
}

TEST_P(StoreConformanceTest, PutReplacesAndDeleteRemoves) {
  Put({MakeTask("a")});
  Task changed = MakeTask("a");
  changed.state = TaskState::kSucceeded;
  changed.result = "42";
  Put({changed});
  EXPECT_EQ(store_->GetTask("default", "a")->result, "42");
  std::vector<Mutation> del = {Mutation::DeleteTask("default", "a")};
  ASSERT_TRUE(store_->Commit(del).ok());
  EXPECT_EQ(store_->GetTask("default", "a").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, NamespacesAreIsolated) {
  Task a = MakeTask("same", "one");
  Task b = MakeTask("same", "two");
  b.payload = "2";
  Put({a, b});
  EXPECT_EQ(store_->GetTask("one", "same")->payload, a.payload);
  EXPECT_EQ(store_->GetTask("two", "same")->payload, "2");
  EXPECT_EQ(store_->GetTask("three", "same").status().code(), StatusCode::kNotFound);
  TaskQuery q;
  q.ns = "two";
  auto page = store_->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 1u);
  EXPECT_EQ(page->tasks[0].ns, "two");
}

TEST_P(StoreConformanceTest, ListFiltersAndPagesWithoutGapsOrRepeats) {
  std::vector<Task> tasks;
  for (int i = 0; i < 57; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "t%03d", i);
    Task t = MakeTask(id, "default", i % 3 == 0 ? TaskState::kFailed : TaskState::kReady,
                      static_cast<std::uint64_t>(i + 1));
    t.queue = i % 2 ? "odd" : "even";
    t.type = i % 5 ? "x" : "y";
    tasks.push_back(t);
  }
  Put(tasks);
  for (bool newest_first : {true, false}) {
    TaskQuery q;
    q.limit = 10;
    q.newest_first = newest_first;
    std::vector<std::string> seen;
    for (int page = 0; page < 10; ++page) {
      auto p = store_->ListTasks(q);
      ASSERT_TRUE(p.ok());
      for (const Task& t : p->tasks) seen.push_back(t.id);
      if (p->next_cursor.empty()) break;
      q.cursor = p->next_cursor;
    }
    ASSERT_EQ(seen.size(), 57u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end(), [&](const auto& a, const auto& b) {
      return newest_first ? a > b : a < b;
    }));
  }
  TaskQuery q;
  q.queue = "odd";
  q.state = TaskState::kFailed;
  q.type = "x";
  q.limit = 1000;
  auto p = store_->ListTasks(q);
  ASSERT_TRUE(p.ok());
  std::size_t want = 0;
  for (const Task& t : tasks) {
    want += t.queue == "odd" && t.state == TaskState::kFailed && t.type == "x";
  }
  EXPECT_EQ(p->tasks.size(), want);
  for (const Task& t : p->tasks) {
    EXPECT_EQ(t.queue, "odd");
    EXPECT_EQ(t.state, TaskState::kFailed);
  }
}

TEST_P(StoreConformanceTest, PagesOfLargeTasksStopAtTheByteBound) {
  std::vector<Task> tasks;
  for (int i = 0; i < 10; ++i) {
    Task t = MakeTask("big" + std::to_string(i));
    t.payload = "\"" + std::string(1000, 'x') + "\"";
    tasks.push_back(t);
  }
  Put(tasks);
  TaskQuery q;
  q.limit = 100;
  q.max_bytes = 2500;
  std::size_t pages = 0, total = 0;
  for (;;) {
    auto p = store_->ListTasks(q);
    ASSERT_TRUE(p.ok());
    ASSERT_LE(p->tasks.size(), 3u);
    total += p->tasks.size();
    ++pages;
    if (p->next_cursor.empty()) break;
    q.cursor = p->next_cursor;
  }
  EXPECT_EQ(total, 10u);
  EXPECT_GE(pages, 4u);
}

TEST_P(StoreConformanceTest, ScanLiveTasksReturnsNonTerminalInSeqOrder) {
  Put({MakeTask("c", "default", TaskState::kRunning, 3), MakeTask("a", "default", TaskState::kReady, 5),
       MakeTask("b", "default", TaskState::kSucceeded, 1), MakeTask("d", "x", TaskState::kScheduled, 2),
       MakeTask("e", "default", TaskState::kCancelled, 4)});
  std::vector<std::string> ids;
  ASSERT_TRUE(store_->ScanLiveTasks([&](Task&& t) { ids.push_back(t.id); }).ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"d", "c", "a"}));
}

TEST_P(StoreConformanceTest, KeysMarksCountsAndExpiry) {
  Task a = MakeTask("a", "default", TaskState::kSucceeded, 1);
  a.key = "k-old";
  a.created_at = 100;
  a.finished_at = 150;
  a.lease_token = 9;
  Task b = MakeTask("b", "default", TaskState::kFailed, 2);
  b.key = "k-new";
  b.created_at = 500;
  b.finished_at = 600;
  b.lease_token = 4;
  Task c = MakeTask("c", "default", TaskState::kReady, 3);
  Put({a, b, c});
  std::vector<std::string> keys;
  ASSERT_TRUE(store_->ScanKeys(200, [&](const std::string&, const std::string& key,
                                        const std::string& id, TimeMs) {
                      keys.push_back(key + "=" + id);
                    }).ok());
  EXPECT_EQ(keys, std::vector<std::string>{"k-new=b"});
  auto marks = store_->LoadMarks();
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->max_lease_token, 9u);
  EXPECT_EQ(marks->max_seq, 3u);
  auto counts = store_->CountTerminal();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->size(), 2u);
  auto expired = store_->FindExpired(550, 10);
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ(expired->at(0).second, "a");
}

TEST_P(StoreConformanceTest, QueuesRoundTrip) {
  QueueSettings s;
  s.paused = true;
  s.lease_ms = 1234;
  s.max_attempts = 7;
  s.backoff = Backoff{1, 2, 3.0, 0.5};
  std::vector<Mutation> m = {Mutation::PutQueue(QueueRecord{"ns", "q1", s}),
                             Mutation::PutQueue(QueueRecord{"ns", "q0", QueueSettings{}})};
  ASSERT_TRUE(store_->Commit(m).ok());
  Reopen();
  auto qs = store_->LoadQueues();
  ASSERT_TRUE(qs.ok());
  ASSERT_EQ(qs->size(), 2u);
  EXPECT_EQ(qs->at(1).name, "q1");
  EXPECT_EQ(qs->at(1).settings, s);
}

TEST_P(StoreConformanceTest, AFailedBatchLeavesNothingAndBreaksTheStore) {
  Put({MakeTask("before")});
  std::vector<Mutation> bad = {Mutation::PutTask(Shared(MakeTask("x"))), Mutation::PutTask(nullptr)};
  Status s = store_->Commit(bad);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store_->GetTask("default", "x").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->health().ok());
  std::vector<Mutation> good = {Mutation::PutTask(Shared(MakeTask("after")))};
  EXPECT_EQ(store_->Commit(good).code(), StatusCode::kUnavailable);
  EXPECT_TRUE(store_->GetTask("default", "before").ok());  // reads still work
  Reopen();  // a restart clears the error
  EXPECT_TRUE(store_->health().ok());
  EXPECT_TRUE(store_->Commit(good).ok());
}

TEST_P(StoreConformanceTest, EverythingSurvivesReopen) {
  Put({MakeTask("a"), MakeTask("b", "other")});
  Reopen();
  EXPECT_TRUE(store_->GetTask("default", "a").ok());
  EXPECT_TRUE(store_->GetTask("other", "b").ok());
}

// leveldb's ModelDB idea: the same random operations applied to a std::map
// and to the store, compared after every batch and across reopens.
TEST_P(StoreConformanceTest, RandomizedAgainstAModel) {
  std::mt19937 rng(20261124);
  std::map<std::pair<std::string, std::string>, Task> model;
  std::uint64_t seq = 0;
  for (int round = 0; round < 60; ++round) {
    std::vector<Mutation> batch;
    auto pending = model;
    int n = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      std::string ns = rng() % 4 == 0 ? "b" : "a";
      std::string id = "id" + std::to_string(rng() % 40);
      if (rng() % 5 == 0) {
        batch.push_back(Mutation::DeleteTask(ns, id));
        pending.erase({ns, id});
      } else {
        Task t = MakeTask(id, ns, static_cast<TaskState>(1 + rng() % 7), ++seq);
        t.attempts = static_cast<int>(rng() % 4);
        t.payload = std::to_string(rng());
        batch.push_back(Mutation::PutTask(Shared(t)));
        pending[{ns, id}] = t;
      }
    }
    ASSERT_TRUE(store_->Commit(batch).ok());
    model = std::move(pending);
    if (round % 15 == 14) Reopen();
    for (const auto& [key, t] : model) {
      auto got = store_->GetTask(key.first, key.second);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(*got, t);
    }
    std::size_t live_model = 0;
    for (const auto& [key, t] : model) live_model += !IsTerminal(t.state);
    std::size_t live_store = 0;
    ASSERT_TRUE(store_->ScanLiveTasks([&](Task&& t) {
      ASSERT_FALSE(IsTerminal(t.state));
      ASSERT_EQ(model.at({t.ns, t.id}), t);
      ++live_store;
    }).ok());
    ASSERT_EQ(live_store, live_model);
    for (const char* ns : {"a", "b"}) {
      TaskQuery q;
      q.ns = ns;
      q.limit = 1000;
      auto page = store_->ListTasks(q);
      ASSERT_TRUE(page.ok());
      std::size_t want = 0;
      for (const auto& [key, t] : model) want += key.first == ns;
      ASSERT_EQ(page->tasks.size(), want);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformanceTest,
                         ::testing::Values(StoreKind{"sqlite", OpenSqlite}),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace dray
