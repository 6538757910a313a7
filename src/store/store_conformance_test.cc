// One suite for every Store implementation (SQLite now, PostgreSQL later),
// plus a randomized comparison with a simple in-memory model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "store/postgres/postgres_store.h"
#include "support/test_postgres.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "support/status_assert.h"

namespace dray {
namespace {

using Factory = std::function<std::unique_ptr<Store>(const std::string& dir)>;

struct StoreKind {
  std::string name;
  Factory open;
  // Removes everything the store kept for `dir` (its file, its database).
  std::function<void(const std::string& dir)> wipe;
  // Why this kind cannot run here ("" when it can).
  std::function<std::string()> unavailable = [] { return std::string(); };
};

// Names the store in test output instead of dumping its bytes.
void PrintTo(const StoreKind& kind, std::ostream* os) { *os << kind.name; }

std::unique_ptr<Store> OpenSqlite(const std::string& dir) {
  SqliteOptions o;
  o.path = dir + "/dray.db";
  auto s = OpenSqliteStore(o);
  EXPECT_OK(s);
  return s.ok() ? std::move(*s) : nullptr;
}

void WipeSqlite(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
}

// A database per test, named after its temp dir, on the test server.
std::unique_ptr<Store> OpenPostgres(const std::string& dir) {
  std::string error;
  PostgresOptions o;
  o.conninfo = testing_pg::CreateDatabase(dir, &error);
  EXPECT_TRUE(error.empty()) << error;
  if (!error.empty()) return nullptr;
  auto s = OpenPostgresStore(o);
  EXPECT_OK(s);
  return s.ok() ? std::move(*s) : nullptr;
}

std::string PostgresUnavailable() {
  return testing_pg::ServerConninfo().empty()
             ? "no test PostgreSQL server (ctest starts one: scripts/test-postgres.sh)"
             : "";
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
    if (std::string why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    if (GetParam().unavailable().empty()) GetParam().wipe(dir_);
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void Put(std::vector<Task> tasks) {
    std::vector<Mutation> m;
    for (Task& t : tasks) m.push_back(mutation::PutTask{Shared(std::move(t))});
    ASSERT_OK(store_->Commit(m));
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
  t.concurrency_key = "acct-\"7\"";
  t.concurrency_limit = 3;
  t.placement.resources = {{"cpu", 1500}, {"memory_mb", 2048}, {"licenses", 1}};
  t.placement.require = {LabelSelector{"zone", SelectorOp::kIn, {"a", "b"}},
                         LabelSelector{"spot", SelectorOp::kNotExists, {}}};
  t.placement.prefer = {LabelPreference{LabelSelector{"arch", SelectorOp::kEquals, {"arm64"}}, 7}};
  t.placement.affinity_key = "user \"42\"";
  t.placement.worker = "w-1";
  t.placement.shard_index = 2;
  t.placement.shard_total = 5;
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
  ASSERT_OK(got);
  EXPECT_EQ(*got, t);
}

TEST_P(StoreConformanceTest, PutReplacesAndDeleteRemoves) {
  Put({MakeTask("a")});
  Task changed = MakeTask("a");
  changed.state = TaskState::kSucceeded;
  changed.result = "42";
  Put({changed});
  EXPECT_EQ(store_->GetTask("default", "a")->result, "42");
  std::vector<Mutation> del = {mutation::DeleteTask{"default", "a"}};
  ASSERT_OK(store_->Commit(del));
  EXPECT_EQ(store_->GetTask("default", "a").status().code(), StatusCode::kNotFound);
}

// kUpdateTask writes what a transition changes and keeps the rest of the
// row; on a task not stored yet it writes the whole task.
TEST_P(StoreConformanceTest, UpdateWritesTransitionFieldsAndKeepsTheSpec) {
  Task t = MakeTask("a");
  t.payload = R"({"n":1})";
  t.key = "k";
  t.labels = {{"team", "core"}};
  Put({t});
  Task moved = t;
  moved.run_at = 500;
  moved.state = TaskState::kFailed;
  moved.attempts = 2;
  moved.result = R"({"partial":true})";
  moved.error = "boom \"x\"\n\u00e9";
  moved.updated_at = 600;
  moved.finished_at = 600;
  moved.lease_token = 9;
  moved.lease_expires_at = 700;
  moved.worker = "w\t1";
  moved.cancel_requested = true;
  moved.history = {Attempt{1, "w0", 1, 2, AttemptOutcome::kExpired, "lease expired"},
                   Attempt{2, "w\t1", 3, 4, AttemptOutcome::kFailed, "boom \"x\"\n\u00e9"}};
  Task spec_changed = moved;  // spec fields an update must not write
  spec_changed.payload = R"({"n":2})";
  spec_changed.priority = 5;
  spec_changed.key = "other";
  std::vector<Mutation> update = {mutation::UpdateTask{Shared(Task(spec_changed))}};
  ASSERT_OK(store_->Commit(update));
  auto got = store_->GetTask("default", "a");
  ASSERT_OK(got);
  EXPECT_EQ(*got, moved);

  Task fresh = MakeTask("b");
  fresh.payload = R"({"n":3})";
  std::vector<Mutation> insert = {mutation::UpdateTask{Shared(Task(fresh))}};
  ASSERT_OK(store_->Commit(insert));
  EXPECT_EQ(*store_->GetTask("default", "b"), fresh);
}

// What an UpdateTask writes of `to` onto `from`: the transition fields.
Task Transitioned(Task from, const Task& to) {
  from.run_at = to.run_at;
  from.state = to.state;
  from.attempts = to.attempts;
  from.result = to.result;
  from.error = to.error;
  from.updated_at = to.updated_at;
  from.finished_at = to.finished_at;
  from.lease_token = to.lease_token;
  from.lease_expires_at = to.lease_expires_at;
  from.worker = to.worker;
  from.cancel_requested = to.cancel_requested;
  from.history = to.history;
  return from;
}

// A transition of `t` that also carries spec fields an update must not
// write.
Task Moved(const Task& t, TaskState state, int attempts, const std::string& note) {
  Task m = t;
  m.state = state;
  m.attempts = attempts;
  m.result = "{\"note\":\"" + note + "\"}";
  m.error = note;
  m.worker = "w-" + note;
  m.lease_token = t.lease_token + 1;
  m.updated_at = t.updated_at + 10;
  m.history.push_back(Attempt{attempts, m.worker, 1, 2, AttemptOutcome::kFailed, note});
  m.payload = "{\"ignored\":\"" + note + "\"}";
  m.priority = t.priority + 1;
  return m;
}

// Several writes of one task in one batch, in every order, beside writes of
// other tasks: each applies at its place (a store that writes many rows per
// statement must not merge or reorder them).
TEST_P(StoreConformanceTest, SeveralWritesOfOneTaskInABatchApplyInOrder) {
  const Task u0 = MakeTask("u", "default", TaskState::kReady, 1);
  const Task m0 = MakeTask("m", "default", TaskState::kReady, 2);
  Put({u0, m0});
  const Task p1 = MakeTask("p", "default", TaskState::kReady, 10);
  const Task p2 = Moved(p1, TaskState::kRunning, 1, "p2");
  const Task p3 = Moved(p2, TaskState::kSucceeded, 1, "p3");
  const Task x1 = MakeTask("x", "default", TaskState::kReady, 11);
  const Task x2 = Moved(x1, TaskState::kRunning, 1, "x2");
  const Task u1 = Moved(u0, TaskState::kRunning, 1, "u1");
  Task u2 = MakeTask("u", "default", TaskState::kScheduled, 12);
  u2.payload = "{\"whole\":true}";
  const Task m1 = Moved(m0, TaskState::kRunning, 1, "m1");
  const Task m2 = Moved(m1, TaskState::kFailed, 1, "m2");
  std::vector<Mutation> batch = {
      mutation::PutTask{Shared(p1)},    mutation::PutTask{Shared(x1)},
      mutation::UpdateTask{Shared(p2)}, mutation::UpdateTask{Shared(m1)},
      mutation::UpdateTask{Shared(u1)}, mutation::UpdateTask{Shared(p3)},
      mutation::PutTask{Shared(u2)},    mutation::UpdateTask{Shared(m2)},
      mutation::UpdateTask{Shared(x2)}};
  ASSERT_OK(store_->Commit(batch));
  EXPECT_EQ(*store_->GetTask("default", "p"), Transitioned(p1, p3));  // Put, Update, Update
  EXPECT_EQ(*store_->GetTask("default", "u"), u2);                    // Update, Put
  EXPECT_EQ(*store_->GetTask("default", "m"), Transitioned(m0, m2));  // Update, Update
  EXPECT_EQ(*store_->GetTask("default", "x"), Transitioned(x1, x2));  // Put, Update

  // An update of a task not stored, among updates of stored ones and
  // followed by another write of it: written whole at its place.
  const Task n1 = MakeTask("n", "default", TaskState::kRunning, 13);
  const Task n2 = Moved(n1, TaskState::kSucceeded, 1, "n2");
  const Task m3 = Moved(m2, TaskState::kReady, 2, "m3");
  const Task x3 = Moved(x2, TaskState::kSucceeded, 1, "x3");
  Task p4 = MakeTask("p", "default", TaskState::kReady, 14);
  p4.payload = "{\"again\":1}";
  std::vector<Mutation> missing = {
      mutation::UpdateTask{Shared(m3)}, mutation::UpdateTask{Shared(n1)},
      mutation::UpdateTask{Shared(x3)}, mutation::PutTask{Shared(p4)},
      mutation::UpdateTask{Shared(n2)}};
  ASSERT_OK(store_->Commit(missing));
  EXPECT_EQ(*store_->GetTask("default", "n"), Transitioned(n1, n2));
  EXPECT_EQ(*store_->GetTask("default", "m"), Transitioned(Transitioned(m0, m2), m3));
  EXPECT_EQ(*store_->GetTask("default", "x"), Transitioned(x1, x3));
  EXPECT_EQ(*store_->GetTask("default", "p"), p4);
  EXPECT_OK(store_->health());
}

// Text that a store might quote, escape or parse on its way: every byte
// comes back, whether a batch writes one task or many, through a read of
// one task and through the recovery scan.
TEST_P(StoreConformanceTest, AwkwardTextRoundTripsByteForByteInBatches) {
  const std::vector<std::string> texts = {
      "",           "NULL",        "null",         "\"",         "\\",           "\\\"",
      "{}",         "{\"a\":\"b,c\"}", "{,}",      "a,b",        "'quoted'",     "{\"x\":\"\\\\\"}",
      " spaced ",   "tab\tnew\nline\rret", "żółw 🐢 日本", "\x01\x7f",   "{NULL}",   "(1,2)",
      "$1::text[]", "\\N",         "E'\\x00'",     "ARRAY[1]"};
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const std::string& s = texts[i];
    Task t = MakeTask("id" + std::to_string(i) + s, "default", TaskState::kReady, i + 1);
    t.queue = "q" + s;
    t.type = s;
    t.payload = s;
    t.key = s;
    t.labels = {{"k", s}};
    t.workflow = "";
    tasks.push_back(t);
  }
  std::vector<Mutation> puts;
  for (const Task& t : tasks) puts.push_back(mutation::PutTask{Shared(t)});
  ASSERT_OK(store_->Commit(puts));
  std::vector<Mutation> updates;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const std::string& s = texts[i];
    Task& t = tasks[i];
    t.state = TaskState::kRunning;
    t.attempts = 1;
    t.result = s;
    t.error = s;
    t.worker = s;
    t.history = {Attempt{1, s, 1, 2, AttemptOutcome::kFailed, s}};
    updates.push_back(mutation::UpdateTask{Shared(t)});
  }
  ASSERT_OK(store_->Commit(updates));
  for (const Task& t : tasks) {
    auto got = store_->GetTask(t.ns, t.id);
    ASSERT_OK(got) << t.id;
    EXPECT_EQ(*got, t);
  }
  std::map<std::string, Task> live;
  ASSERT_OK(store_->ScanLiveTasks([&](Task&& t) { live[t.id] = std::move(t); }));
  ASSERT_EQ(live.size(), tasks.size());
  for (const Task& t : tasks) EXPECT_EQ(live[t.id], t);
}

// More writes than any store puts in one statement, several per task, a
// queue between them and an update of a missing task near the end.
TEST_P(StoreConformanceTest, ABatchOfThousandsOfWritesAppliesInOrder) {
  constexpr int kTasks = 2500;
  std::vector<Task> want;
  std::vector<Mutation> batch;
  for (int i = 0; i < kTasks; ++i) {
    want.push_back(MakeTask("t" + std::to_string(i), "default", TaskState::kReady,
                            static_cast<std::uint64_t>(i + 1)));
    batch.push_back(mutation::PutTask{Shared(want.back())});
  }
  for (int round = 1; round <= 2; ++round) {
    if (round == 2) batch.push_back(mutation::PutQueue{QueueRecord{"default", "q", QueueSettings{}}});
    for (int i = 0; i < kTasks; ++i) {
      Task moved = Moved(want[static_cast<std::size_t>(i)],
                         round == 1 ? TaskState::kRunning : TaskState::kSucceeded, 1,
                         std::to_string(round));
      batch.push_back(mutation::UpdateTask{Shared(moved)});
      want[static_cast<std::size_t>(i)] = Transitioned(want[static_cast<std::size_t>(i)], moved);
    }
  }
  ASSERT_OK(store_->Commit(batch));
  for (int i = 0; i < kTasks; i += 97) {
    EXPECT_EQ(*store_->GetTask("default", "t" + std::to_string(i)), want[static_cast<std::size_t>(i)]);
  }
  EXPECT_EQ(*store_->GetTask("default", "t2499"), want.back());

  std::vector<Mutation> with_missing;
  for (int i = 0; i < kTasks; ++i) {
    Task moved = Moved(want[static_cast<std::size_t>(i)], TaskState::kFailed, 2, "3");
    with_missing.push_back(mutation::UpdateTask{Shared(moved)});
    want[static_cast<std::size_t>(i)] = Transitioned(want[static_cast<std::size_t>(i)], moved);
    if (i == kTasks - 10) {
      want.push_back(MakeTask("absent", "default", TaskState::kReady, 99999));
      with_missing.push_back(mutation::UpdateTask{Shared(want.back())});
    }
  }
  ASSERT_OK(store_->Commit(with_missing));
  EXPECT_EQ(*store_->GetTask("default", "absent"), want.back());
  for (int i = 0; i < kTasks; i += 97) {
    EXPECT_EQ(*store_->GetTask("default", "t" + std::to_string(i)), want[static_cast<std::size_t>(i)]);
  }
  auto counts = store_->CountTerminal();
  ASSERT_OK(counts);
  ASSERT_EQ(counts->size(), 1u);
  EXPECT_EQ((*counts)[0].count, kTasks);
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
  ASSERT_OK(page);
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
      ASSERT_OK(p);
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
  ASSERT_OK(p);
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
    ASSERT_OK(p);
    ASSERT_LE(p->tasks.size(), 3u);
    total += p->tasks.size();
    ++pages;
    if (p->next_cursor.empty()) break;
    q.cursor = p->next_cursor;
  }
  EXPECT_EQ(total, 10u);
  EXPECT_GE(pages, 4u);
}

TEST_P(StoreConformanceTest, ScanLiveTasksReturnsEveryNonTerminalTask) {
  Put({MakeTask("c", "default", TaskState::kRunning, 3), MakeTask("a", "default", TaskState::kReady, 5),
       MakeTask("b", "default", TaskState::kSucceeded, 1), MakeTask("d", "x", TaskState::kScheduled, 2),
       MakeTask("e", "default", TaskState::kCancelled, 4)});
  std::vector<std::string> ids;
  ASSERT_OK(store_->ScanLiveTasks([&](Task&& t) { ids.push_back(t.id); }));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "c", "d"}));
}

// Enough tasks for the scan to hand them over in many batches.
TEST_P(StoreConformanceTest, ScanLiveTasksReturnsManyTasksEachOnce) {
  std::vector<Task> tasks;
  for (int i = 0; i < 5000; ++i) {
    tasks.push_back(MakeTask("t" + std::to_string(i), i % 7 ? "default" : "other",
                             i % 5 ? TaskState::kReady : TaskState::kSucceeded,
                             static_cast<std::uint64_t>(i + 1)));
  }
  Put(tasks);
  std::vector<std::uint64_t> seqs;
  ASSERT_OK(store_->ScanLiveTasks([&](Task&& t) { seqs.push_back(t.seq); }));
  std::sort(seqs.begin(), seqs.end());
  std::vector<std::uint64_t> want;
  for (int i = 0; i < 5000; ++i) {
    if (i % 5) want.push_back(static_cast<std::uint64_t>(i + 1));
  }
  EXPECT_EQ(seqs, want);
  // And again: the statement is ready for another scan.
  std::size_t n = 0;
  ASSERT_OK(store_->ScanLiveTasks([&](Task&&) { ++n; }));
  EXPECT_EQ(n, want.size());
}

TEST_P(StoreConformanceTest, ScanKeysReturnsKeyedTasksInTheWindow) {
  Task old = MakeTask("old", "default", TaskState::kSucceeded, 1);
  old.key = "k-old";
  old.created_at = 100;
  Task edge = MakeTask("edge", "other", TaskState::kReady, 2);
  edge.key = "k-edge";
  edge.created_at = 200;  // exactly `since`: inside
  Task fresh = MakeTask("fresh", "default", TaskState::kFailed, 3);
  fresh.key = "k-new";
  fresh.created_at = 500;
  Task unkeyed = MakeTask("unkeyed", "default", TaskState::kReady, 4);
  unkeyed.created_at = 600;
  Put({old, edge, fresh, unkeyed});
  std::vector<std::string> keys;
  ASSERT_TRUE(store_->ScanKeys(200, [&](const std::string& ns, const std::string& key,
                                        const std::string& id, TimeMs created_at) {
                      keys.push_back(ns + "/" + key + "=" + id + "@" + std::to_string(created_at));
                    }).ok());
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"default/k-new=fresh@500", "other/k-edge=edge@200"}));
}

TEST_P(StoreConformanceTest, LoadMarksTakesTheMaximaOverEveryTask) {
  auto empty = store_->LoadMarks();
  ASSERT_OK(empty);
  EXPECT_EQ(empty->max_lease_token, 0u);
  EXPECT_EQ(empty->max_seq, 0u);
  Task a = MakeTask("a", "default", TaskState::kSucceeded, 3);
  a.lease_token = 9;
  Task b = MakeTask("b", "other", TaskState::kRunning, 12);
  b.lease_token = 4;
  Put({a, b});
  auto marks = store_->LoadMarks();
  ASSERT_OK(marks);
  EXPECT_EQ(marks->max_lease_token, 9u);
  EXPECT_EQ(marks->max_seq, 12u);
  // They never go down, even when the task that set them is purged, and
  // they survive a restart.
  std::vector<Mutation> del = {mutation::DeleteTask{"default", "a"},
                               mutation::DeleteTask{"other", "b"}};
  ASSERT_OK(store_->Commit(del));
  Reopen();
  marks = store_->LoadMarks();
  ASSERT_OK(marks);
  EXPECT_EQ(marks->max_lease_token, 9u);
  EXPECT_EQ(marks->max_seq, 12u);
}

TEST_P(StoreConformanceTest, CountTerminalGroupsByNamespaceQueueAndState) {
  std::vector<Task> tasks;
  auto add = [&](std::string ns, std::string queue, TaskState state, int n) {
    for (int i = 0; i < n; ++i) {
      Task t = MakeTask(queue + std::to_string(static_cast<int>(state)) + "-" + std::to_string(i), ns,
                        state, tasks.size() + 1);
      t.queue = queue;
      tasks.push_back(t);
    }
  };
  add("default", "q1", TaskState::kSucceeded, 3);
  add("default", "q1", TaskState::kFailed, 1);
  add("default", "q2", TaskState::kCancelled, 2);
  add("other", "q1", TaskState::kSucceeded, 1);
  add("default", "q1", TaskState::kReady, 5);  // live: not counted
  add("default", "q1", TaskState::kRunning, 1);
  Put(tasks);
  auto counts = store_->CountTerminal();
  ASSERT_OK(counts);
  std::map<std::string, std::int64_t> got;
  for (const StateCount& c : *counts) {
    got[c.ns + "/" + c.queue + "/" + std::to_string(static_cast<int>(c.state))] += c.count;
  }
  EXPECT_EQ(got, (std::map<std::string, std::int64_t>{
                     {"default/q1/5", 3}, {"default/q1/6", 1}, {"default/q2/7", 2}, {"other/q1/5", 1}}));
}

TEST_P(StoreConformanceTest, FindExpiredReturnsOldFinishedTasksOldestFirst) {
  std::vector<Task> tasks;
  for (int i = 0; i < 6; ++i) {
    Task t = MakeTask("done" + std::to_string(i), i % 2 ? "other" : "default",
                      i % 3 == 0 ? TaskState::kSucceeded : TaskState::kFailed,
                      static_cast<std::uint64_t>(i + 1));
    t.finished_at = 1000 - 100 * i;  // done5 finished first
    tasks.push_back(t);
  }
  Task live = MakeTask("live", "default", TaskState::kReady, 10);
  live.finished_at = 1;  // never a candidate while live, whatever the field says
  Task edge = MakeTask("edge", "default", TaskState::kCancelled, 11);
  edge.finished_at = 900;  // == cutoff: not before it
  tasks.push_back(live);
  tasks.push_back(edge);
  Put(tasks);
  auto expired = store_->FindExpired(900, 100);
  ASSERT_OK(expired);
  std::vector<std::string> ids;
  for (const ExpiredTask& e : *expired) {
    ids.push_back(e.ns + "/" + e.id);
    EXPECT_EQ(e.queue, "q");
    EXPECT_TRUE(IsTerminal(e.state));
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"other/done5", "default/done4", "other/done3",
                                           "default/done2"}));
  auto two = store_->FindExpired(900, 2);
  ASSERT_OK(two);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ(two->at(1).id, "done4");
  EXPECT_EQ(two->at(1).state, TaskState::kFailed);
  auto none = store_->FindExpired(900, 0);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreConformanceTest, ListFiltersEachAloneAndPagesWithAFilter) {
  std::vector<Task> tasks;
  for (int i = 0; i < 40; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "u%03d", i);
    Task t = MakeTask(id, "default", static_cast<TaskState>(1 + i % 7), static_cast<std::uint64_t>(i + 1));
    t.queue = "q" + std::to_string(i % 3);
    t.type = "type" + std::to_string(i % 4);
    tasks.push_back(t);
  }
  tasks.push_back(MakeTask("u999", "elsewhere"));  // other namespaces never show
  Put(tasks);
  auto ids_of = [&](TaskQuery q) {
    std::vector<std::string> ids;
    for (;;) {
      auto p = store_->ListTasks(q);
      EXPECT_OK(p);
      if (!p.ok()) break;
      for (const Task& t : p->tasks) ids.push_back(t.id);
      if (p->next_cursor.empty()) break;
      q.cursor = p->next_cursor;
    }
    return ids;
  };
  auto want = [&](const std::function<bool(const Task&)>& keep, bool newest_first) {
    std::vector<std::string> ids;
    for (const Task& t : tasks) {
      if (t.ns == "default" && keep(t)) ids.push_back(t.id);
    }
    if (newest_first) std::reverse(ids.begin(), ids.end());
    return ids;
  };
  for (bool newest_first : {true, false}) {
    TaskQuery q;
    q.limit = 3;
    q.newest_first = newest_first;
    q.queue = "q1";
    EXPECT_EQ(ids_of(q), want([](const Task& t) { return t.queue == "q1"; }, newest_first));
    q.queue.clear();
    q.state = TaskState::kRunning;
    EXPECT_EQ(ids_of(q), want([](const Task& t) { return t.state == TaskState::kRunning; }, newest_first));
    q.state.reset();
    q.type = "type2";
    EXPECT_EQ(ids_of(q), want([](const Task& t) { return t.type == "type2"; }, newest_first));
    q.queue = "q0";
    q.state = TaskState::kScheduled;
    EXPECT_EQ(ids_of(q), want(
                             [](const Task& t) {
                               return t.type == "type2" && t.queue == "q0" &&
                                      t.state == TaskState::kScheduled;
                             },
                             newest_first));
  }
}

TEST_P(StoreConformanceTest, ListClampsTheLimitToOneThroughAThousand) {
  std::vector<Task> tasks;
  for (int i = 0; i < 1001; ++i) tasks.push_back(MakeTask("n" + std::to_string(i), "default",
                                                          TaskState::kReady, static_cast<std::uint64_t>(i + 1)));
  Put(tasks);
  TaskQuery q;
  q.limit = 0;
  auto one = store_->ListTasks(q);
  ASSERT_OK(one);
  EXPECT_EQ(one->tasks.size(), 1u);
  EXPECT_FALSE(one->next_cursor.empty());
  q.limit = 1'000'000;
  auto most = store_->ListTasks(q);
  ASSERT_OK(most);
  EXPECT_EQ(most->tasks.size(), 1000u);
  EXPECT_FALSE(most->next_cursor.empty());
}

TEST_P(StoreConformanceTest, ListOfAnEmptyNamespaceIsAnEmptyLastPage) {
  TaskQuery q;
  q.ns = "nobody";
  auto p = store_->ListTasks(q);
  ASSERT_OK(p);
  EXPECT_TRUE(p->tasks.empty());
  EXPECT_TRUE(p->next_cursor.empty());
}

TEST_P(StoreConformanceTest, DeletingAMissingTaskIsNotAnError) {
  std::vector<Mutation> del = {mutation::DeleteTask{"default", "never-was"}};
  EXPECT_OK(store_->Commit(del));
  EXPECT_OK(store_->health());
}

TEST_P(StoreConformanceTest, WorkflowsAndTheirTasksRoundTrip) {
  auto workflow = [](std::string id, WorkflowState state, TimeMs finished_at) {
    Workflow w;
    w.id = std::move(id);
    w.name = "nightly";
    w.state = state;
    w.on_failure = DepFailure::kContinue;
    w.tasks = 2;
    w.cancel_requested = state == WorkflowState::kCancelled;
    w.created_at = 10;
    w.updated_at = 20;
    w.finished_at = finished_at;
    return w;
  };
  Workflow running = workflow("w1", WorkflowState::kRunning, 0);
  Workflow done = workflow("w2", WorkflowState::kFailed, 500);
  Task a = MakeTask("a", "default", TaskState::kFailed, 2);
  a.workflow = "w1";
  a.node = "first";
  a.finished_at = 400;
  Task b = MakeTask("b", "default", TaskState::kBlocked, 1);
  b.workflow = "w1";
  b.node = "second";
  b.depends_on = {"a", "x"};
  b.on_dep_failure = DepFailure::kContinue;
  b.concurrency_key = "k";
  Task c = MakeTask("c", "default", TaskState::kSucceeded, 3);
  c.workflow = "w2";
  c.node = "only";
  c.finished_at = 450;
  std::vector<Mutation> m = {mutation::PutWorkflow{std::make_shared<const Workflow>(running)},
                             mutation::PutWorkflow{std::make_shared<const Workflow>(done)},
                             mutation::PutTask{Shared(a)}, mutation::PutTask{Shared(b)},
                             mutation::PutTask{Shared(c)}, mutation::PutTask{Shared(MakeTask("plain"))}};
  ASSERT_OK(store_->Commit(m));
  Reopen();
  auto got = store_->GetWorkflow("default", "w1");
  ASSERT_OK(got);
  EXPECT_EQ(*got, running);
  EXPECT_EQ(store_->GetWorkflow("other", "w1").status().code(), StatusCode::kNotFound);
  auto tasks = store_->WorkflowTasks("default", "w1");
  ASSERT_OK(tasks);
  ASSERT_EQ(tasks->size(), 2u);
  EXPECT_EQ(tasks->at(0), b);  // by seq
  EXPECT_EQ(tasks->at(1), a);
  auto live = store_->LoadRunningWorkflows();
  ASSERT_OK(live);
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ(live->at(0).workflow, running);
  EXPECT_EQ(live->at(0).failed_tasks, 1);
  // Listing: newest id first, by state and name, in pages.
  auto page = store_->ListWorkflows(WorkflowQuery{"default", std::nullopt, "", 1, ""});
  ASSERT_OK(page);
  ASSERT_EQ(page->workflows.size(), 1u);
  EXPECT_EQ(page->workflows[0].id, "w2");
  page = store_->ListWorkflows(WorkflowQuery{"default", std::nullopt, "", 1, page->next_cursor});
  ASSERT_OK(page);
  ASSERT_EQ(page->workflows.size(), 1u);
  EXPECT_EQ(page->workflows[0].id, "w1");
  EXPECT_TRUE(page->next_cursor.empty());
  page = store_->ListWorkflows(WorkflowQuery{"default", WorkflowState::kFailed, "nightly", 10, ""});
  ASSERT_OK(page);
  ASSERT_EQ(page->workflows.size(), 1u);
  EXPECT_EQ(page->workflows[0], done);
  // Retention: finished workflows only; their tasks are not purged alone.
  auto expired = store_->FindExpiredWorkflows(1000, 10);
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ(expired->at(0).second, "w2");
  auto lone = store_->FindExpired(1'000'000, 10);
  ASSERT_OK(lone);
  EXPECT_TRUE(lone->empty()) << "a workflow's finished tasks go with their workflow";
  m = {mutation::DeleteTask{"default", "c"}, mutation::DeleteWorkflow{"default", "w2"}};
  ASSERT_OK(store_->Commit(m));
  EXPECT_EQ(store_->GetWorkflow("default", "w2").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->WorkflowTasks("default", "w2")->empty());
}

TEST_P(StoreConformanceTest, SchedulesRoundTripWithEveryField) {
  Schedule a;
  a.spec.ns = a.spec.task.ns = "other";
  a.spec.id = "nightly";
  a.spec.name = "the nightly report";
  a.spec.cron = "0 2 * * *";
  a.spec.timezone = "Asia/Shanghai";
  a.spec.task.type = "report";
  a.spec.task.queue = "reports";
  a.spec.task.payload = R"({"kind":"daily","n":[1,2]})";
  a.spec.task.priority = -3;
  a.spec.task.delay_ms = 500;
  a.spec.task.max_attempts = 5;
  a.spec.task.backoff = Backoff{200, 9000, 3.0, 0.5};
  a.spec.task.timeout_ms = 60'000;
  a.spec.task.lease_ms = 9000;
  a.spec.task.labels = {{"team", "finance"}};
  a.spec.task.concurrency_key = "reports";
  a.spec.task.concurrency_limit = 2;
  a.spec.misfire = MisfirePolicy::kAll;
  a.spec.overlap = OverlapPolicy::kBufferOne;
  a.spec.jitter_ms = 30'000;
  a.spec.start_at = 1'767'225'600'000;
  a.spec.end_at = 1'798'761'600'000;
  a.spec.paused = true;
  a.spec.max_catchup = 7;
  a.created_at = 1'700'000'000'001;
  a.updated_at = 1'700'000'000'002;
  a.last_tick = 1'700'000'000'003;
  a.last_fired_at = 1'700'000'000'004;
  a.last_task = "0190f3a0-0000-7000-8000-000000000001";
  a.buffered_tick = 1'700'000'000'005;
  a.fired = 41;
  a.skipped = 2;
  Schedule b;
  b.spec.id = "every-minute";
  b.spec.interval_ms = 60'000;
  b.spec.task.type = "ping";
  ASSERT_TRUE(store_->Commit(std::vector<Mutation>{
                                 mutation::PutSchedule{std::make_shared<const Schedule>(a)},
                                 mutation::PutSchedule{std::make_shared<const Schedule>(b)}})
                  .ok());
  Reopen();
  auto loaded = store_->LoadSchedules();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ(loaded->at(0), b);  // ordered by (namespace, id)
  EXPECT_EQ(loaded->at(1), a);
  ASSERT_OK(store_->Commit(std::vector<Mutation>{mutation::DeleteSchedule{"other", "nightly"}}));
  loaded = store_->LoadSchedules();
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->at(0).spec.id, "every-minute");
}

TEST_P(StoreConformanceTest, EventsAndTriggersRoundTripAndOldEventsGo) {
  Event e;
  e.ns = "shop";
  e.id = "order-1234-paid";
  e.name = "order.paid";
  e.payload = R"({"order":1234,"currency":"EUR"})";
  e.created_at = 5000;
  e.tasks = {"t1", "t2"};
  Event old = e;
  old.id = "older";
  old.created_at = 10;
  old.tasks.clear();
  Trigger t;
  t.spec.ns = t.spec.task.ns = "shop";
  t.spec.id = "ship";
  t.spec.name = "ship paid orders";
  t.spec.event = "order.paid";
  t.spec.match = {{"currency", "\"EUR\""}, {"customer.tier", "2"}};
  t.spec.task.type = "ship";
  t.spec.task.queue = "shipping";
  t.spec.task.payload = R"({"carrier":"dhl"})";
  t.created_at = 3;
  t.updated_at = 4;
  Trigger u;
  u.spec.id = "on-fail";
  u.spec.on_task = true;
  u.spec.task_queue = "payments";
  u.spec.task_type = "charge";
  u.spec.task_states = {TaskState::kFailed, TaskState::kCancelled};
  u.spec.task.type = "alert";
  u.spec.paused = true;
  ASSERT_TRUE(store_
                  ->Commit(std::vector<Mutation>{
                      mutation::PutEvent{std::make_shared<const Event>(e)},
                      mutation::PutEvent{std::make_shared<const Event>(old)},
                      mutation::PutTrigger{std::make_shared<const Trigger>(t)},
                      mutation::PutTrigger{std::make_shared<const Trigger>(u)}})
                  .ok());
  Reopen();
  EXPECT_EQ(*store_->GetEvent("shop", "order-1234-paid"), e);
  EXPECT_EQ(store_->GetEvent("default", "order-1234-paid").status().code(),
            StatusCode::kNotFound);
  auto triggers = store_->LoadTriggers();
  ASSERT_OK(triggers);
  ASSERT_EQ(triggers->size(), 2u);
  EXPECT_EQ(triggers->at(0), u);  // by (namespace, id)
  EXPECT_EQ(triggers->at(1), t);
  EXPECT_TRUE(*store_->HasEventsBefore(11));
  EXPECT_FALSE(*store_->HasEventsBefore(10));
  ASSERT_TRUE(store_->Commit(std::vector<Mutation>{mutation::DeleteEventsBefore{100},
                                                   mutation::DeleteTrigger{"default", "on-fail"}})
                  .ok());
  EXPECT_EQ(store_->GetEvent("shop", "older").status().code(), StatusCode::kNotFound);
  EXPECT_OK(store_->GetEvent("shop", "order-1234-paid"));
  EXPECT_FALSE(*store_->HasEventsBefore(100));
  EXPECT_EQ(store_->LoadTriggers()->size(), 1u);
}

TEST_P(StoreConformanceTest, QueuesRoundTrip) {
  QueueSettings s;
  s.paused = true;
  s.lease_ms = 1234;
  s.max_attempts = 7;
  s.backoff = Backoff{1, 2, 3.0, 0.5};
  s.concurrency = 5;
  s.key_concurrency = 2;
  s.rate = 12.5;
  s.burst = 4;
  s.weight = 3;
  std::vector<Mutation> m = {mutation::PutQueue{QueueRecord{"ns", "q1", s}},
                             mutation::PutQueue{QueueRecord{"ns", "q0", QueueSettings{}}}};
  ASSERT_OK(store_->Commit(m));
  Reopen();
  auto qs = store_->LoadQueues();
  ASSERT_OK(qs);
  ASSERT_EQ(qs->size(), 2u);
  EXPECT_EQ(qs->at(0).ns, "ns");
  EXPECT_EQ(qs->at(1).name, "q1");
  EXPECT_EQ(qs->at(1).settings, s);
  s.paused = false;
  m = {mutation::PutQueue{QueueRecord{"ns", "q1", s}}};
  ASSERT_OK(store_->Commit(m));
  qs = store_->LoadQueues();
  ASSERT_OK(qs);
  ASSERT_EQ(qs->size(), 2u);
  EXPECT_FALSE(qs->at(1).settings.paused);
}

TEST_P(StoreConformanceTest, AFailedBatchLeavesNothingAndBreaksTheStore) {
  Put({MakeTask("before")});
  std::vector<Mutation> bad = {mutation::PutTask{Shared(MakeTask("x"))},
                               mutation::DeleteTask{"default", "before"},
                               mutation::PutQueue{QueueRecord{"default", "qx", QueueSettings{}}},
                               mutation::PutTask{nullptr}};
  Status s = store_->Commit(bad);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store_->GetTask("default", "x").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->LoadQueues()->empty());
  EXPECT_EQ(store_->health().code(), StatusCode::kUnavailable);
  EXPECT_NE(store_->health().message().find("without a task"), std::string::npos)
      << store_->health().ToString();  // names the cause
  std::vector<Mutation> good = {mutation::PutTask{Shared(MakeTask("after"))}};
  EXPECT_EQ(store_->Commit(good).code(), StatusCode::kUnavailable);
  EXPECT_OK(store_->GetTask("default", "before"));  // reads still work
  Reopen();  // a restart clears the error
  EXPECT_OK(store_->health());
  EXPECT_OK(store_->Commit(good));
}

TEST_P(StoreConformanceTest, EverythingSurvivesReopen) {
  Task a = MakeTask("a", "default", TaskState::kRunning, 4);
  a.history = {Attempt{1, "w", 10, 0, AttemptOutcome::kRunning, ""}};
  a.labels = {{"k", "v"}};
  a.lease_token = 31;
  Task b = MakeTask("b", "other", TaskState::kSucceeded, 5);
  b.result = R"({"answer":42})";
  QueueSettings paused;
  paused.paused = true;
  std::vector<Mutation> m = {mutation::PutTask{Shared(a)}, mutation::PutTask{Shared(b)},
                             mutation::PutQueue{QueueRecord{"default", "q", paused}}};
  ASSERT_OK(store_->Commit(m));
  Reopen();
  EXPECT_EQ(*store_->GetTask("default", "a"), a);
  EXPECT_EQ(*store_->GetTask("other", "b"), b);
  auto qs = store_->LoadQueues();
  ASSERT_OK(qs);
  ASSERT_EQ(qs->size(), 1u);
  EXPECT_TRUE(qs->at(0).settings.paused);
  EXPECT_EQ(store_->LoadMarks()->max_lease_token, 31u);
  EXPECT_EQ(store_->LoadMarks()->max_seq, 5u);
}

// leveldb's ModelDB idea: the same random operations applied to a std::map
// and to the store, compared after every batch and across reopens.
class StoreModel {
 public:
  using Key = std::pair<std::string, std::string>;  // (ns, id)
  std::map<Key, Task> tasks;
  std::map<Key, QueueSettings> queues;  // (ns, name)
  std::map<Key, Workflow> workflows;
  std::map<Key, Schedule> schedules;
  std::map<Key, Event> events;
  std::map<Key, Trigger> triggers;

  void Apply(const Mutation& m) { std::visit([this](const auto& r) { Apply(r); }, m); }
  void Apply(const mutation::PutTask& m) { tasks[{m.task->ns, m.task->id}] = *m.task; }
  void Apply(const mutation::UpdateTask& m) {
    auto [it, fresh] = tasks.try_emplace({m.task->ns, m.task->id}, *m.task);
    if (fresh) return;
    Task& t = it->second;
    const Task& u = *m.task;
    t.run_at = u.run_at;
    t.state = u.state;
    t.attempts = u.attempts;
    t.result = u.result;
    t.error = u.error;
    t.updated_at = u.updated_at;
    t.finished_at = u.finished_at;
    t.lease_token = u.lease_token;
    t.lease_expires_at = u.lease_expires_at;
    t.worker = u.worker;
    t.cancel_requested = u.cancel_requested;
    t.history = u.history;
  }
  void Apply(const mutation::DeleteTask& m) { tasks.erase({m.ns, m.id}); }
  void Apply(const mutation::PutQueue& m) { queues[{m.queue.ns, m.queue.name}] = m.queue.settings; }
  void Apply(const mutation::PutWorkflow& m) {
    workflows[{m.workflow->ns, m.workflow->id}] = *m.workflow;
  }
  void Apply(const mutation::DeleteWorkflow& m) { workflows.erase({m.ns, m.id}); }
  void Apply(const mutation::PutSchedule& m) {
    schedules[{m.schedule->spec.ns, m.schedule->spec.id}] = *m.schedule;
  }
  void Apply(const mutation::DeleteSchedule& m) { schedules.erase({m.ns, m.id}); }
  void Apply(const mutation::PutEvent& m) { events[{m.event->ns, m.event->id}] = *m.event; }
  void Apply(const mutation::DeleteEventsBefore& m) {
    std::vector<std::pair<TimeMs, Key>> old;
    for (const auto& [k, e] : events) {
      if (e.created_at < m.cutoff) old.emplace_back(e.created_at, k);
    }
    std::sort(old.begin(), old.end());
    if (old.size() > 10'000) old.resize(10'000);
    for (const auto& o : old) events.erase(o.second);
  }
  void Apply(const mutation::PutTrigger& m) {
    Trigger t = *m.trigger;
    t.fired = 0;  // not stored
    triggers[{t.spec.ns, t.spec.id}] = std::move(t);
  }
  void Apply(const mutation::DeleteTrigger& m) { triggers.erase({m.ns, m.id}); }
  // Ids the store should list for `q`, across every page, in order.
  std::vector<std::string> List(const TaskQuery& q) const {
    std::vector<std::string> ids;
    for (const auto& [key, t] : tasks) {
      if (t.ns == q.ns && (q.queue.empty() || t.queue == q.queue) &&
          (q.type.empty() || t.type == q.type) && (!q.state || t.state == *q.state)) {
        ids.push_back(t.id);
      }
    }
    if (q.newest_first) std::reverse(ids.begin(), ids.end());
    return ids;
  }
  std::vector<Task> Live() const {
    std::vector<Task> live;
    for (const auto& [key, t] : tasks) {
      if (!IsTerminal(t.state)) live.push_back(t);
    }
    std::sort(live.begin(), live.end(), [](const Task& x, const Task& y) { return x.seq < y.seq; });
    return live;
  }
};

class RandomOps {
 public:
  explicit RandomOps(std::uint32_t seed) : rng_(seed) {}
  int Uniform(int n) { return static_cast<int>(rng_() % static_cast<std::uint32_t>(n)); }
  std::string Ns() { return Uniform(4) == 0 ? "b" : "a"; }

  Mutation Next() {
    int what = Uniform(10);
    if (Uniform(12) == 0) {
      const std::string id = "e" + std::to_string(Uniform(20));
      if (Uniform(6) == 0) return mutation::DeleteEventsBefore{1000 + Uniform(100)};
      Event e;
      e.ns = Ns();
      e.id = id;
      e.name = "n" + std::to_string(Uniform(3));
      e.payload = "{\"x\":" + std::to_string(Uniform(100)) + "}";
      e.created_at = 1000 + Uniform(100);
      for (int i = Uniform(3); i > 0; --i) e.tasks.push_back("id" + std::to_string(Uniform(50)));
      return mutation::PutEvent{std::make_shared<const Event>(std::move(e))};
    }
    if (Uniform(12) == 0) {
      const std::string id = "tr" + std::to_string(Uniform(6));
      if (Uniform(3) == 0) return mutation::DeleteTrigger{Ns(), id};
      Trigger t;
      t.spec.ns = t.spec.task.ns = Ns();
      t.spec.id = id;
      if (Uniform(2) == 0) {
        t.spec.event = "n" + std::to_string(Uniform(3));
        t.spec.match = {{"a.b", "\"x\""}, {"n", std::to_string(Uniform(9))}};
      } else {
        t.spec.on_task = true;
        t.spec.task_queue = "q" + std::to_string(Uniform(3));
        t.spec.task_states = {TaskState::kFailed};
      }
      t.spec.task.type = "follow";
      t.spec.task.queue = "later";
      t.spec.paused = Uniform(2) == 0;
      t.created_at = t.updated_at = 1000 + Uniform(100);
      return mutation::PutTrigger{std::make_shared<const Trigger>(std::move(t))};
    }
    if (Uniform(10) == 0) {
      const std::string id = "s" + std::to_string(Uniform(6));
      if (Uniform(3) == 0) return mutation::DeleteSchedule{Ns(), id};
      Schedule s;
      s.spec.ns = s.spec.task.ns = Ns();
      s.spec.id = id;
      s.spec.interval_ms = 1000 * (1 + Uniform(100));
      s.spec.task.type = "t" + std::to_string(Uniform(2));
      s.fired = Uniform(1000);
      s.last_tick = 1'700'000'000'000 + Uniform(1000) * 1000;
      s.last_task = "id" + std::to_string(Uniform(50));
      return mutation::PutSchedule{std::make_shared<const Schedule>(std::move(s))};
    }
    if (what < 2) return mutation::DeleteTask{Ns(), "id" + std::to_string(Uniform(50))};
    if (what < 3) {
      QueueSettings s;
      s.paused = Uniform(2) == 0;
      s.max_attempts = 1 + Uniform(9);
      return mutation::PutQueue{QueueRecord{Ns(), "q" + std::to_string(Uniform(3)), s}};
    }
    Task t = MakeTask("id" + std::to_string(Uniform(50)), Ns(), static_cast<TaskState>(1 + Uniform(7)),
                      ++seq_);
    t.queue = "q" + std::to_string(Uniform(3));
    t.type = "t" + std::to_string(Uniform(2));
    t.attempts = Uniform(4);
    t.payload = "{\"n\":" + std::to_string(rng_()) + "}";
    t.lease_token = static_cast<std::uint64_t>(Uniform(1000));
    if (Uniform(3) == 0) t.key = "key" + std::to_string(Uniform(100));
    if (Uniform(3) == 0) t.history.push_back(Attempt{1, "w", 1, 2, AttemptOutcome::kFailed, "x"});
    auto shared = std::make_shared<const Task>(std::move(t));
    // Updates carry spec fields too (seq, payload, key differ here): the
    // store must keep the stored ones.
    if (what < 6) return mutation::PutTask{std::move(shared)};
    return mutation::UpdateTask{std::move(shared)};
  }
  TaskQuery Query() {
    TaskQuery q;
    q.ns = Ns();
    if (Uniform(3) == 0) q.queue = "q" + std::to_string(Uniform(3));
    if (Uniform(3) == 0) q.type = "t" + std::to_string(Uniform(2));
    if (Uniform(3) == 0) q.state = static_cast<TaskState>(1 + Uniform(7));
    q.newest_first = Uniform(2) == 0;
    q.limit = static_cast<std::size_t>(1 + Uniform(15));
    return q;
  }

 private:
  std::mt19937 rng_;
  std::uint64_t seq_ = 0;
};

void ExpectStoreMatchesModel(Store* store, const StoreModel& model, RandomOps* ops) {
  for (const auto& [key, t] : model.tasks) {
    auto got = store->GetTask(key.first, key.second);
    ASSERT_OK(got) << key.first << "/" << key.second;
    ASSERT_EQ(*got, t);
  }
  std::vector<Task> live;
  ASSERT_OK(store->ScanLiveTasks([&](Task&& t) { live.push_back(std::move(t)); }));
  std::sort(live.begin(), live.end(), [](const Task& x, const Task& y) { return x.seq < y.seq; });
  ASSERT_EQ(live, model.Live());
  for (int i = 0; i < 4; ++i) {
    TaskQuery q = ops->Query();
    std::vector<std::string> ids;
    for (int pages = 0; pages < 200; ++pages) {
      auto p = store->ListTasks(q);
      ASSERT_OK(p);
      for (const Task& t : p->tasks) ids.push_back(t.id);
      if (p->next_cursor.empty()) break;
      q.cursor = p->next_cursor;
    }
    q.cursor.clear();
    ASSERT_EQ(ids, model.List(q));
  }
  auto queues = store->LoadQueues();
  ASSERT_OK(queues);
  std::map<StoreModel::Key, QueueSettings> got;
  for (const QueueRecord& r : *queues) got[{r.ns, r.name}] = r.settings;
  ASSERT_EQ(got, model.queues);
  auto schedules = store->LoadSchedules();
  ASSERT_OK(schedules);
  std::map<StoreModel::Key, Schedule> got_schedules;
  for (Schedule& s : *schedules) got_schedules[{s.spec.ns, s.spec.id}] = std::move(s);
  ASSERT_EQ(got_schedules, model.schedules);
  for (const auto& [key, e] : model.events) {
    auto got_event = store->GetEvent(key.first, key.second);
    ASSERT_OK(got_event);
    ASSERT_EQ(*got_event, e);
  }
  std::map<StoreModel::Key, TimeMs> seen, want;
  ASSERT_TRUE(store->ScanEventIds(1050, [&](const std::string& ns, const std::string& id,
                                            TimeMs at) { seen[{ns, id}] = at; }).ok());
  for (const auto& [key, e] : model.events) {
    if (e.created_at >= 1050) want[key] = e.created_at;
  }
  ASSERT_EQ(seen, want);
  auto triggers = store->LoadTriggers();
  ASSERT_OK(triggers);
  std::map<StoreModel::Key, Trigger> got_triggers;
  for (Trigger& t : *triggers) got_triggers[{t.spec.ns, t.spec.id}] = std::move(t);
  ASSERT_EQ(got_triggers, model.triggers);
}

TEST_P(StoreConformanceTest, RandomizedAgainstAModel) {
  for (std::uint32_t seed : {20261124u, 7u, 99991u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomOps ops(seed);
    StoreModel model;
    for (int round = 0; round < 40; ++round) {
      std::vector<Mutation> batch;
      int n = 1 + ops.Uniform(ops.Uniform(4) == 0 ? 60 : 8);
      for (int i = 0; i < n; ++i) batch.push_back(ops.Next());
      ASSERT_OK(store_->Commit(batch));
      for (const Mutation& m : batch) model.Apply(m);
      if (ops.Uniform(8) == 0) Reopen();
      ASSERT_NO_FATAL_FAILURE(ExpectStoreMatchesModel(store_.get(), model, &ops));
    }
    // Start the next seed from an empty store.
    store_.reset();
    GetParam().wipe(dir_);
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreConformanceTest,
                         ::testing::Values(StoreKind{"sqlite", OpenSqlite, WipeSqlite},
                                           StoreKind{"postgres", OpenPostgres, testing_pg::DropDatabase,
                                                     PostgresUnavailable}),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace dray
