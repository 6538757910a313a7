// What the PostgreSQL store does beyond the conformance suite that every
// store passes (store_conformance_test.cc): its schema's versions, several
// nodes opening one database, sessions lost under it, big batches.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/migrations.h"
#include "store/postgres/test_database_test_util.h"

namespace dray {
namespace {

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing_pg::ServerConninfo().empty()) {
      GTEST_SKIP() << "no test PostgreSQL server (ctest starts one: scripts/test-postgres.sh)";
    }
    // Short: PostgreSQL cuts names at 63 bytes.
    key_ = "pgstore_" + std::to_string(::getpid()) + "_" +
           std::to_string(std::hash<std::string>()(
                              ::testing::UnitTest::GetInstance()->current_test_info()->name()) %
                          1000000);
    std::string error;
    conninfo_ = testing_pg::CreateDatabase(key_, &error);
    ASSERT_TRUE(error.empty()) << error;
  }
  void TearDown() override {
    if (!key_.empty()) testing_pg::DropDatabase(key_);
  }

  std::unique_ptr<Store> Open() {
    auto s = OpenPostgresStore(PostgresOptions{conninfo_});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Runs one statement on the test's database; "" or the error.
  std::string Exec(const std::string& sql) {
    PGconn* c = PQconnectdb(conninfo_.c_str());
    std::string error;
    PGresult* r = PQexec(c, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) error = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    return error;
  }

  std::string key_;
  std::string conninfo_;
};

std::shared_ptr<const Task> NewTask(const std::string& id, std::uint64_t seq) {
  auto t = std::make_shared<Task>();
  t->ns = "default";
  t->id = id;
  t->queue = "q";
  t->type = "t";
  t->payload = R"({"n":1})";
  t->state = TaskState::kReady;
  t->seq = seq;
  t->created_at = t->updated_at = 1000;
  return t;
}

TEST_F(PostgresStoreTest, ADatabaseWrittenByANewerDrayIsRefused) {
  ASSERT_NE(Open(), nullptr);  // creates the schema at this binary's version
  const int newer = static_cast<int>(PostgresMigrations().size()) + 1;
  ASSERT_EQ(Exec("UPDATE dray_schema SET version = " + std::to_string(newer)), "");
  auto s = OpenPostgresStore(PostgresOptions{conninfo_});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("newer dray"), std::string::npos) << s.status().ToString();
}

TEST_F(PostgresStoreTest, NodesOpeningOneNewDatabaseTogetherMigrateItOnce) {
  constexpr int kNodes = 6;
  std::vector<std::thread> nodes;
  std::vector<Status> results(kNodes);
  for (int i = 0; i < kNodes; ++i) {
    nodes.emplace_back([&, i] { results[i] = OpenPostgresStore(PostgresOptions{conninfo_}).status(); });
  }
  for (std::thread& t : nodes) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> m = {mutation::PutTask{NewTask("a", 1)}};
  EXPECT_TRUE(store->Commit(m).ok());
}

TEST_F(PostgresStoreTest, ABatchLargerThanThePipelineWindowCommitsWhole) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> batch;
  for (int i = 0; i < 5000; ++i) {
    auto t = NewTask("t" + std::to_string(i), static_cast<std::uint64_t>(i + 1));
    batch.push_back(mutation::PutTask{t});
    auto leased = std::make_shared<Task>(*t);
    leased->state = TaskState::kRunning;
    leased->lease_token = static_cast<std::uint64_t>(i + 1);
    batch.push_back(mutation::UpdateTask{leased});
  }
  ASSERT_TRUE(store->Commit(batch).ok()) << store->health().ToString();
  std::size_t live = 0;
  ASSERT_TRUE(store->ScanLiveTasks([&](Task&& t) {
                     EXPECT_EQ(t.state, TaskState::kRunning);
                     ++live;
                   })
                  .ok());
  EXPECT_EQ(live, 5000u);
  auto marks = store->LoadMarks();
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->max_lease_token, 5000u);
  EXPECT_EQ(marks->max_seq, 5000u);
}

TEST_F(PostgresStoreTest, AFailingStatementInABigBatchLeavesNothing) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // A trigger that refuses one row, deep in the batch: the statements
  // after it are skipped by the server, and the batch rolls back whole.
  ASSERT_EQ(Exec("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.id = 't3000' THEN "
                 "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                 "CREATE TRIGGER refuse BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION refuse()"),
            "");
  std::vector<Mutation> batch;
  for (int i = 0; i < 4000; ++i) {
    batch.push_back(mutation::PutTask{NewTask("t" + std::to_string(i), static_cast<std::uint64_t>(i + 1))});
  }
  Status s = store->Commit(batch);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("refused by the test"), std::string::npos) << s.ToString();
  EXPECT_EQ(store->GetTask("default", "t0").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetTask("default", "t3999").status().code(), StatusCode::kNotFound);
  auto marks = store->LoadMarks();
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->max_seq, 0u);
}

TEST_F(PostgresStoreTest, ALostSessionBreaksWritesWhileReadsReconnect) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> first = {mutation::PutTask{NewTask("a", 1)}};
  ASSERT_TRUE(store->Commit(first).ok());
  // What a PostgreSQL restart or failover does to open sessions.
  ASSERT_EQ(Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'dray' AND pid <> pg_backend_pid()"),
            "");
  std::vector<Mutation> second = {mutation::PutTask{NewTask("b", 2)}};
  Status s = store->Commit(second);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->health().code(), StatusCode::kUnavailable);
  // The engine may believe "b" was written: nothing more is accepted, and
  // the next start reads back what the database holds.
  EXPECT_EQ(store->Commit(first).code(), StatusCode::kUnavailable);
  auto a = store->GetTask("default", "a");
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->health().ok());
  EXPECT_TRUE(store->GetTask("default", "a").ok());
  EXPECT_EQ(store->GetTask("default", "b").status().code(), StatusCode::kNotFound);
}

TEST_F(PostgresStoreTest, TextAndOrderAreBytesWhateverTheLocale) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // In most locales "B" sorts after "a"; in bytes it sorts before.
  std::vector<Mutation> m = {mutation::PutTask{NewTask("a", 1)}, mutation::PutTask{NewTask("B", 2)},
                             mutation::PutTask{NewTask("é", 3)}};
  ASSERT_TRUE(store->Commit(m).ok());
  TaskQuery q;
  q.newest_first = false;
  auto page = store->ListTasks(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->tasks.size(), 3u);
  EXPECT_EQ(page->tasks[0].id, "B");
  EXPECT_EQ(page->tasks[1].id, "a");
  EXPECT_EQ(page->tasks[2].id, "é");
}

TEST(PostgresLocationTest, DescriptionNamesHostAndDatabaseButNeverThePassword) {
  const std::string d =
      DescribePostgresLocation("postgresql://dray:s3cret@db1,db2:5433/jobs?target_session_attrs=read-write");
  EXPECT_NE(d.find("jobs"), std::string::npos) << d;
  EXPECT_NE(d.find("db1,db2"), std::string::npos) << d;
  EXPECT_EQ(d.find("s3cret"), std::string::npos) << d;
  EXPECT_TRUE(IsPostgresLocation("postgres://h/db"));
  EXPECT_TRUE(IsPostgresLocation("postgresql://h/db"));
  EXPECT_FALSE(IsPostgresLocation("/var/lib/dray"));
}

}  // namespace
}  // namespace dray
