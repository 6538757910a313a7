// SQLite-specific behaviour: failed syncs, simulated crashes, schema
// versions. What every store must do is in store_conformance_test.cc.
#include "store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "store/sqlite/fault_vfs.h"
#include "store/sqlite/migrations.h"
#include "support/status_assert.h"

namespace dray {
namespace {

Task MakeTask(const std::string& id, std::uint64_t seq = 1) {
  Task t;
  t.id = id;
  t.queue = "q";
  t.type = "t";
  t.payload = R"({"n":1})";
  t.state = TaskState::kReady;
  t.seq = seq;
  return t;
}

std::vector<Mutation> PutAll(const std::vector<std::string>& ids, std::size_t payload_bytes = 10) {
  std::vector<Mutation> m;
  for (const std::string& id : ids) {
    Task t = MakeTask(id);
    t.payload = "\"" + std::string(payload_bytes, 'p') + "\"";
    m.push_back(mutation::PutTask{std::make_shared<const Task>(std::move(t))});
  }
  return m;
}

// Runs one statement on a raw connection to the store's file.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

int UserVersion(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
  int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dray-sqlite-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/data/dray.db";
    static std::atomic<int> n{0};
    auto vfs = FaultVfs::Register("dray-fault-" + std::to_string(n++));
    ASSERT_OK(vfs);
    vfs_ = std::move(*vfs);
  }
  void TearDown() override {
    store_.reset();
    vfs_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Opens (or reopens) the store through the fault VFS.
  void Open(bool synchronous_full = true) {
    store_.reset();
    SqliteOptions o;
    o.path = path_;
    o.vfs = vfs_->name();
    o.synchronous_full = synchronous_full;
    auto s = OpenSqliteStore(o);
    ASSERT_OK(s);
    store_ = std::move(*s);
  }
  // The process dies: unsynced writes are lost, then the store restarts.
  void CrashAndReopen() {
    vfs_->SimulateCrash();
    store_.reset();  // closing cannot write anything any more
    vfs_->Reset();
    Open();
  }

  std::string dir_, path_;
  std::unique_ptr<FaultVfs> vfs_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, OpenCreatesTheParentDirectoryAndTheLatestSchema) {
  Open();
  EXPECT_TRUE(std::filesystem::exists(path_));
  store_.reset();
  EXPECT_EQ(UserVersion(path_), static_cast<int>(SqliteMigrations().size()));
}

TEST_F(SqliteStoreTest, EachCommitSyncsOnce) {
  Open();
  ASSERT_OK(store_->Commit(PutAll({"warm-up"})));
  std::uint64_t before = vfs_->syncs();
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.push_back("t" + std::to_string(i));
  ASSERT_OK(store_->Commit(PutAll(ids)));
  EXPECT_EQ(vfs_->syncs() - before, 1u);  // one transaction, one fsync of the WAL
}

TEST_F(SqliteStoreTest, AFailedSyncBreaksTheStoreForGood) {
  Open();
  ASSERT_OK(store_->Commit(PutAll({"before"})));
  vfs_->FailNextSync();
  Status failed = store_->Commit(PutAll({"lost"}));
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find("disk I/O error"), std::string::npos) << failed.ToString();
  EXPECT_EQ(store_->health(), failed);
  EXPECT_EQ(vfs_->failed_syncs(), 1u);

  // Later commits are refused without touching the disk.
  const std::uint64_t syncs = vfs_->syncs();
  Status later = store_->Commit(PutAll({"after"}));
  EXPECT_EQ(later, failed);  // the first error, still
  EXPECT_EQ(vfs_->syncs(), syncs);
  EXPECT_EQ(vfs_->failed_syncs(), 1u);

  // Reads still work and see exactly what was committed.
  EXPECT_OK(store_->GetTask("default", "before"));
  EXPECT_EQ(store_->GetTask("default", "lost").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTask("default", "after").status().code(), StatusCode::kNotFound);

  // The unsynced batch is gone after a crash; the store works again.
  CrashAndReopen();
  EXPECT_OK(store_->health());
  EXPECT_OK(store_->GetTask("default", "before"));
  EXPECT_EQ(store_->GetTask("default", "lost").status().code(), StatusCode::kNotFound);
  EXPECT_OK(store_->Commit(PutAll({"after"})));
}

TEST_F(SqliteStoreTest, EveryAcknowledgedCommitSurvivesACrash) {
  Open();
  // Enough data to pass the checkpoint threshold, so that the crash also
  // lands after checkpoints have rewritten the database file.
  std::vector<std::string> all;
  for (int batch = 0; batch < 60; ++batch) {
    std::vector<std::string> ids;
    for (int i = 0; i < 50; ++i) ids.push_back("b" + std::to_string(batch) + "-" + std::to_string(i));
    ASSERT_OK(store_->Commit(PutAll(ids, 2000)));
    all.insert(all.end(), ids.begin(), ids.end());
  }
  ASSERT_OK(store_->health());
  CrashAndReopen();
  for (const std::string& id : all) ASSERT_OK(store_->GetTask("default", id)) << id;
  TaskQuery q;
  q.limit = 1000;
  std::size_t total = 0;
  for (;;) {
    auto p = store_->ListTasks(q);
    ASSERT_OK(p);
    total += p->tasks.size();
    if (p->next_cursor.empty()) break;
    q.cursor = p->next_cursor;
  }
  EXPECT_EQ(total, all.size());
}

// The power cut a server under test asks for with DRAY_FAULT_INJECTION:
// at the named sync, nothing of the batch being synced survives.
TEST_F(SqliteStoreTest, ACrashAtANamedSyncKeepsWhatWasSyncedBeforeIt) {
  Open();
  ASSERT_OK(store_->Commit(PutAll({"synced"})));
  int crashed = 0;
  vfs_->CrashAtSync(vfs_->syncs() + vfs_->failed_syncs() + 1, [&] { ++crashed; });
  EXPECT_FALSE(store_->Commit(PutAll({"cut"})).ok());
  EXPECT_EQ(crashed, 1);
  store_.reset();
  vfs_->Reset();
  Open();
  EXPECT_OK(store_->GetTask("default", "synced"));
  EXPECT_EQ(store_->GetTask("default", "cut").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, SyncsFailFromTheNamedOneOn) {
  Open();
  const std::uint64_t done = vfs_->syncs() + vfs_->failed_syncs();
  vfs_->FailSyncsFrom(done + 2);
  ASSERT_OK(store_->Commit(PutAll({"one"})));  // sync done + 1
  EXPECT_EQ(store_->Commit(PutAll({"two"})).code(), StatusCode::kUnavailable);
  EXPECT_EQ(vfs_->failed_syncs(), 1u);
}

// The other side of the test above, which shows that the crash model does
// lose what was not synced.
TEST_F(SqliteStoreTest, WithoutSyncsACrashLosesCommits) {
  Open(/*synchronous_full=*/false);
  const std::uint64_t syncs = vfs_->syncs();  // opening may sync (WAL switch, schema)
  ASSERT_OK(store_->Commit(PutAll({"unsynced"})));
  EXPECT_EQ(vfs_->syncs(), syncs);
  CrashAndReopen();
  EXPECT_EQ(store_->GetTask("default", "unsynced").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, ADatabaseFromANewerDrayIsRefused) {
  Open();
  store_.reset();
  RawExec(path_, "PRAGMA user_version = 999");
  SqliteOptions o;
  o.path = path_;
  auto s = OpenSqliteStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("999"), std::string::npos) << s.status().ToString();
}

// An upgrade: a file written at schema version 1 opens, migrates, and keeps
// its rows.
TEST_F(SqliteStoreTest, AVersionOneDatabaseIsMigrated) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  RawExec(path_, std::string(SqliteMigrations()[0]) +
                     "INSERT INTO tasks VALUES ('default', 'old', 'q', 't', '{}', 0, 0, 3, "
                     "'{\"initial_ms\":1000,\"max_ms\":60000,\"multiplier\":2.0,\"jitter\":0.0}', 0, "
                     "0, '', '{}', 6, 1, '', 'boom', 1, 2, 3, 4, 0, 'w', 0, 9, "
                     "'[{\"number\":1,\"worker\":\"w\",\"started_at\":1,\"ended_at\":2,"
                     "\"outcome\":2,\"error\":\"boom\"}]');"
                     "PRAGMA user_version = 1;");
  Open();
  auto t = store_->GetTask("default", "old");
  ASSERT_OK(t);
  EXPECT_EQ(t->state, TaskState::kFailed);
  ASSERT_EQ(t->history.size(), 1u);
  EXPECT_EQ(t->history[0].outcome, AttemptOutcome::kFailed);
  // Migration 3 took the marks from the rows there were.
  auto marks = store_->LoadMarks();
  ASSERT_OK(marks);
  EXPECT_EQ(marks->max_lease_token, 4u);
  EXPECT_EQ(marks->max_seq, 9u);
  EXPECT_TRUE(store_->FindExpired(10, 10)->size() == 1);
  store_.reset();
  EXPECT_EQ(UserVersion(path_), static_cast<int>(SqliteMigrations().size()));
}

// Migration 8: rows that version 7 wrote in the API's JSON (captured from
// a dray of that version) are read with its reader and written again as the
// store's documents, meaning the same.
TEST_F(SqliteStoreTest, AVersionSevenDatabaseGetsTheStoresOwnDocuments) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  std::string schema;
  for (int v = 0; v < 7; ++v) schema += std::string(SqliteMigrations()[static_cast<std::size_t>(v)]);
  RawExec(path_, schema + R"sql(
INSERT INTO schedules VALUES ('default', 'nightly', '{"id":"nightly","cron":"0 2 * * *","timezone":"Asia/Shanghai","task":{"type":"report","queue":"reports","payload":{"k":[1,2.5]},"priority":3,"backoff":{"initial_ms":500,"max_ms":9000,"multiplier":1.5,"jitter":0.1},"labels":{"a":"b"},"resources":{"cpu":500},"require":[{"key":"zone","op":"in","values":["a","b"]}]},"misfire":"all","overlap":"skip","jitter_ms":3000,"start_at":"2030-01-01T00:00:00.000Z","paused":false,"max_catchup":100,"namespace":"default","created_at":"2026-12-05T18:27:08.996Z","updated_at":"2026-12-05T18:27:08.996Z","last_tick":"2026-12-05T18:27:08.996Z","last_fired_at":null,"last_task":null,"buffered_tick":null,"fired":0,"skipped":0}');
INSERT INTO triggers VALUES ('default', 'ship', '{"id":"ship","namespace":"default","on":{"event":"order.paid","match":{"currency":"EUR","total":5}},"task":{"type":"ship","queue":"shipping","payload":{"carrier":"dhl"}},"paused":false,"created_at":"2026-12-05T18:27:09.037Z","updated_at":"2026-12-05T18:27:09.037Z","fired":0}');
INSERT INTO triggers VALUES ('default', 'onfail', '{"id":"onfail","namespace":"default","on":{"task":{"queue":"q","type":"t","states":["failed","cancelled"]}},"task":{"type":"alert","queue":"default","payload":null},"paused":true,"created_at":"2026-12-05T18:27:09.079Z","updated_at":"2026-12-05T18:27:09.079Z","fired":0}');
INSERT INTO queues VALUES ('default', 'jobs', '{"paused":true,"lease_ms":30000,"max_attempts":3,"backoff":{"initial_ms":1000,"max_ms":3600000,"multiplier":2.0,"jitter":0.2},"concurrency":4,"key_concurrency":1,"rate":2.5,"burst":0,"weight":3,"placement":"spread"}');
INSERT INTO tasks (ns, id, queue, type, payload, priority, run_at, max_attempts, backoff, timeout_ms,
  lease_ms, key, labels, state, attempts, result, error, created_at, updated_at, finished_at,
  lease_token, lease_expires_at, worker, cancel_requested, seq, history, flow, workflow)
VALUES ('default', 'b', 'default', 'y', 'null', 0, 0, 3,
  '{"initial_ms":1000,"max_ms":3600000,"multiplier":2.0,"jitter":0.2}', 0, 0, '', '{}', 2, 0, '',
  '', 1, 1, 0, 0, 0, '', 0, 2, '[]',
  '{"placement":{"resources":{"cpu":250},"prefer":[{"key":"zone","op":"not_in","values":["c"],"weight":5}],"affinity_key":"aff"},"concurrency_key":"k1","node":"b","depends_on":["a"],"on_dep_failure":"continue"}',
  'w');
PRAGMA user_version = 7;
)sql");
  Open();
  auto schedules = store_->LoadSchedules();
  ASSERT_OK(schedules);
  ASSERT_EQ(schedules->size(), 1u);
  const Schedule& s = (*schedules)[0];
  EXPECT_EQ(s.spec.timezone, "Asia/Shanghai");
  EXPECT_EQ(s.spec.misfire, MisfirePolicy::kAll);
  EXPECT_EQ(s.spec.overlap, OverlapPolicy::kSkip);
  EXPECT_EQ(s.spec.start_at, 1'893'456'000'000);
  EXPECT_EQ(s.created_at, 1'796'495'228'996);
  EXPECT_EQ(s.last_tick, 1'796'495'228'996);
  EXPECT_EQ(s.spec.task.payload, R"({"k":[1,2.5]})");
  EXPECT_EQ(s.spec.task.backoff, (Backoff{500, 9000, 1.5, 0.1}));
  EXPECT_EQ(s.spec.task.placement.resources.at("cpu"), 500);
  ASSERT_EQ(s.spec.task.placement.require.size(), 1u);
  EXPECT_EQ(s.spec.task.placement.require[0].op, SelectorOp::kIn);

  auto triggers = store_->LoadTriggers();
  ASSERT_OK(triggers);
  ASSERT_EQ(triggers->size(), 2u);
  const Trigger& onfail = (*triggers)[0];
  EXPECT_TRUE(onfail.spec.on_task);
  EXPECT_TRUE(onfail.spec.paused);
  EXPECT_EQ(onfail.spec.task_states, (std::vector<TaskState>{TaskState::kFailed, TaskState::kCancelled}));
  const Trigger& ship = (*triggers)[1];
  EXPECT_EQ(ship.spec.event, "order.paid");
  EXPECT_EQ(ship.spec.match,
            (std::vector<std::pair<std::string, std::string>>{{"currency", "\"EUR\""}, {"total", "5"}}));
  EXPECT_EQ(ship.created_at, 1'796'495'229'037);

  auto queues = store_->LoadQueues();
  ASSERT_OK(queues);
  ASSERT_EQ(queues->size(), 1u);
  EXPECT_EQ((*queues)[0].settings.placement, PlacementPolicy::kSpread);
  EXPECT_EQ((*queues)[0].settings.rate, 2.5);
  EXPECT_TRUE((*queues)[0].settings.paused);

  auto t = store_->GetTask("default", "b");
  ASSERT_OK(t);
  EXPECT_EQ(t->on_dep_failure, DepFailure::kContinue);
  EXPECT_EQ(t->depends_on, std::vector<std::string>{"a"});
  EXPECT_EQ(t->placement.affinity_key, "aff");
  ASSERT_EQ(t->placement.prefer.size(), 1u);
  EXPECT_EQ(t->placement.prefer[0].selector.op, SelectorOp::kNotIn);
  EXPECT_EQ(t->placement.prefer[0].weight, 5);
  store_.reset();
  EXPECT_EQ(UserVersion(path_), 8);
}

TEST_F(SqliteStoreTest, AnUnreadableRowIsDataLossNotAGuess) {
  Open();
  ASSERT_OK(store_->Commit(PutAll({"x"})));
  store_.reset();
  RawExec(path_, "UPDATE tasks SET labels = 'not json' WHERE id = 'x'");
  Open();
  auto t = store_->GetTask("default", "x");
  EXPECT_EQ(t.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(t.status().message().find("'x'"), std::string::npos) << t.status().ToString();
  EXPECT_EQ(store_->ScanLiveTasks([](Task&&) {}).code(), StatusCode::kDataLoss);
}

TEST_F(SqliteStoreTest, ReadsRunBesideCommits) {
  Open();
  constexpr int kBatches = 50;
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<std::string> ids;
      for (int i = 0; i < 20; ++i) ids.push_back(std::to_string(b) + "-" + std::to_string(i));
      ASSERT_OK(store_->Commit(PutAll(ids)));
    }
  });
  // Every read sees whole batches: a multiple of 20 tasks, never a torn one.
  std::size_t seen = 0;
  while (seen < kBatches * 20) {
    std::size_t live = 0;
    ASSERT_OK(store_->ScanLiveTasks([&](Task&&) { ++live; }));
    ASSERT_EQ(live % 20, 0u);
    ASSERT_GE(live, seen);
    seen = live;
  }
  writer.join();
}

TEST(FaultVfsTest, ANameCanBeRegisteredOnce) {
  auto a = FaultVfs::Register("dray-fault-once");
  ASSERT_OK(a);
  auto b = FaultVfs::Register("dray-fault-once");
  EXPECT_EQ(b.status().code(), StatusCode::kAlreadyExists);
  auto c = FaultVfs::Register("dray-fault-other", "no-such-vfs");
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace dray
