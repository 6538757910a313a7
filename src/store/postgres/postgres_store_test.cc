// What the PostgreSQL store does beyond the conformance suite that every
// store passes (store_conformance_test.cc): its schema's versions, several
// nodes opening one database, sessions lost under it, big batches.
#include "store/postgres/postgres_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/migrations.h"
#include "support/test_postgres.h"
#include "support/status_assert.h"

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
    EXPECT_OK(s);
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Runs SQL on the test's database; "" or the error.
  std::string Exec(const std::string& sql) { return testing_pg::Exec(conninfo_, sql); }

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

// Appends the submit of task "t<i>" and its lease (token i + 1) to
// `batch`; returns the leased task.
std::shared_ptr<const Task> AddSubmitAndLease(int i, std::vector<Mutation>* batch) {
  auto t = NewTask("t" + std::to_string(i), static_cast<std::uint64_t>(i + 1));
  batch->push_back(mutation::PutTask{t});
  auto leased = std::make_shared<Task>(*t);
  leased->state = TaskState::kRunning;
  leased->lease_token = static_cast<std::uint64_t>(i + 1);
  batch->push_back(mutation::UpdateTask{leased});
  return leased;
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
  for (const Status& s : results) EXPECT_OK(s);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> m = {mutation::PutTask{NewTask("a", 1)}};
  EXPECT_OK(store->Commit(m));
}

TEST_F(PostgresStoreTest, ABatchLargerThanThePipelineWindowCommitsWhole) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> batch;
  for (int i = 0; i < 5000; ++i) {
    AddSubmitAndLease(i, &batch);
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
  ASSERT_OK(marks);
  EXPECT_EQ(marks->max_lease_token, 5000u);
  EXPECT_EQ(marks->max_seq, 5000u);
}

// Writes of tasks go many rows per statement (task_batches.h): a batch of
// thousands of them is a few statements, one pipeline and the COMMIT, and
// several writes of one task in it need no fallback. Were each a statement
// of its own, the 512-answer window would cost a round trip per 512.
TEST_F(PostgresStoreTest, ManyWritesOfManyTasksCostTwoRoundTrips) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> batch;
  for (int i = 0; i < 3000; ++i) {
    auto leased = AddSubmitAndLease(i, &batch);
    auto done = std::make_shared<Task>(*leased);
    done->state = TaskState::kSucceeded;
    done->result = "{\"i\":" + std::to_string(i) + "}";
    batch.push_back(mutation::UpdateTask{done});
  }
  const std::uint64_t before = store->round_trips();
  ASSERT_OK(store->Commit(batch));
  EXPECT_EQ(store->round_trips() - before, 2u);
  auto t = store->GetTask("default", "t2999");
  ASSERT_OK(t);
  EXPECT_EQ(t->state, TaskState::kSucceeded);
  EXPECT_EQ(t->result, "{\"i\":2999}");
  EXPECT_EQ(t->lease_token, 3000u);

  // An update of a task not stored takes the fallback, which costs a
  // round trip per statement, and writes it whole.
  std::vector<Mutation> missing = {mutation::UpdateTask{NewTask("t1", 1)},
                                   mutation::UpdateTask{NewTask("new", 9000)},
                                   mutation::UpdateTask{NewTask("t2", 2)}};
  const std::uint64_t before_missing = store->round_trips();
  ASSERT_OK(store->Commit(missing));
  EXPECT_GT(store->round_trips() - before_missing, 2u + missing.size());
  EXPECT_EQ(store->GetTask("default", "new")->seq, 9000u);
  EXPECT_EQ(store->GetTask("default", "t1")->state, TaskState::kReady);
}

TEST_F(PostgresStoreTest, AFailingRowInAManyRowUpdateLeavesNothing) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> setup;
  for (int i = 0; i < 10; ++i) setup.push_back(mutation::PutTask{NewTask("t" + std::to_string(i), i + 1u)});
  ASSERT_OK(store->Commit(setup));
  ASSERT_EQ(Exec("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.id = 't7' THEN "
                 "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                 "CREATE TRIGGER refuse BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION refuse()"),
            "");
  std::vector<Mutation> batch = {mutation::PutTask{NewTask("fresh", 100)}};
  for (int i = 0; i < 10; ++i) {
    auto t = std::make_shared<Task>(*NewTask("t" + std::to_string(i), i + 1u));
    t->state = TaskState::kRunning;
    batch.push_back(mutation::UpdateTask{t});
  }
  Status s = store->Commit(batch);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("refused by the test"), std::string::npos) << s.ToString();
  EXPECT_EQ(store->health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->GetTask("default", "fresh").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetTask("default", "t0")->state, TaskState::kReady);
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
  ASSERT_OK(marks);
  EXPECT_EQ(marks->max_seq, 0u);
}

TEST_F(PostgresStoreTest, ALostSessionBreaksWritesWhileReadsReconnect) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<Mutation> first = {mutation::PutTask{NewTask("a", 1)}};
  ASSERT_OK(store->Commit(first));
  // What a PostgreSQL restart or failover does to open sessions (this
  // database's only: other tests run beside this one on the same server).
  ASSERT_EQ(Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'dray' AND datname = current_database() "
                 "AND pid <> pg_backend_pid()"),
            "");
  std::vector<Mutation> second = {mutation::PutTask{NewTask("b", 2)}};
  Status s = store->Commit(second);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->health().code(), StatusCode::kUnavailable);
  // The engine may believe "b" was written: nothing more is accepted, and
  // the next start reads back what the database holds.
  EXPECT_EQ(store->Commit(first).code(), StatusCode::kUnavailable);
  auto a = store->GetTask("default", "a");
  EXPECT_OK(a);
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_OK(store->health());
  EXPECT_TRUE(store->GetTask("default", "a").ok());
  EXPECT_EQ(store->GetTask("default", "b").status().code(), StatusCode::kNotFound);
}

TEST_F(PostgresStoreTest, TextAndOrderAreBytesWhateverTheLocale) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // In most locales "B" sorts after "a"; in bytes it sorts before.
  std::vector<Mutation> m = {mutation::PutTask{NewTask("a", 1)}, mutation::PutTask{NewTask("B", 2)},
                             mutation::PutTask{NewTask("é", 3)}};
  ASSERT_OK(store->Commit(m));
  TaskQuery q;
  q.newest_first = false;
  auto page = store->ListTasks(q);
  ASSERT_OK(page);
  ASSERT_EQ(page->tasks.size(), 3u);
  EXPECT_EQ(page->tasks[0].id, "B");
  EXPECT_EQ(page->tasks[1].id, "a");
  EXPECT_EQ(page->tasks[2].id, "é");
}

// A TCP proxy between the store and PostgreSQL that can cut every
// connection at the moment the store sends COMMIT: before passing it on
// (the batch is then certainly not committed) or right after (it then is,
// though the store never hears so). Either way the store cannot know, and
// must break rather than guess.
class CommitCutProxy {
 public:
  enum class Cut { kNone, kBeforeCommit, kAfterCommit };

  explicit CommitCutProxy(int upstream_port) : upstream_port_(upstream_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~CommitCutProxy() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    for (std::thread& t : pipes_) t.join();
  }
  int port() const { return port_; }
  void set_cut(Cut c) { cut_ = c; }
  bool cut_happened() const { return cut_happened_; }

 private:
  void Accept() {
    for (;;) {
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      pipes_.emplace_back([this, client, server] { Pipe(client, server); });
    }
  }
  void Pipe(int client, int server) {
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buf[65536];
    while (!stop_) {
      if (::poll(fds, 2, 100) <= 0) continue;
      if (fds[0].revents) {
        ssize_t n = ::read(client, buf, sizeof buf);
        if (n <= 0) break;
        const std::string_view data(buf, static_cast<std::size_t>(n));
        const bool commit = data.find(std::string_view("COMMIT\0", 7)) != std::string_view::npos;
        const Cut cut = cut_;
        if (commit && cut == Cut::kBeforeCommit) {
          cut_happened_ = true;
          break;
        }
        if (!WriteAll(server, buf, n)) break;
        if (commit && cut == Cut::kAfterCommit) {
          cut_happened_ = true;
          break;
        }
      }
      if (fds[1].revents) {
        ssize_t n = ::read(server, buf, sizeof buf);
        if (n <= 0 || !WriteAll(client, buf, n)) break;
      }
    }
    ::close(client);
    ::close(server);
  }
  static bool WriteAll(int fd, const char* p, ssize_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd, p, static_cast<std::size_t>(n));
      if (w <= 0) return false;
      p += w;
      n -= w;
    }
    return true;
  }

  int upstream_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Cut> cut_{Cut::kNone};
  std::atomic<bool> cut_happened_{false};
  std::thread acceptor_;
  std::vector<std::thread> pipes_;  // touched by the acceptor thread only until joined
};

// The port of a libpq connection string's server.
int PortOf(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  const int port = PQstatus(c) == CONNECTION_OK ? std::atoi(PQport(c)) : 0;
  PQfinish(c);
  return port;
}

// Whether `ids` are all stored, or none of them; fails the test if some are.
enum class Found { kAll, kNone };
Found AllOrNone(Store* store, int count) {
  int found = 0;
  for (int i = 0; i < count; ++i) {
    if (store->GetTask("default", "c" + std::to_string(i)).ok()) ++found;
  }
  EXPECT_TRUE(found == 0 || found == count) << found << " of " << count << " tasks of one batch";
  return found == count ? Found::kAll : Found::kNone;
}

void CutDuringCommit(const std::string& conninfo, CommitCutProxy::Cut cut, Found expected) {
  const int port = PortOf(conninfo);
  ASSERT_NE(port, 0);
  CommitCutProxy proxy(port);
  const std::string via = conninfo + " host=127.0.0.1 port=" + std::to_string(proxy.port());
  auto opened = OpenPostgresStore(PostgresOptions{via});
  ASSERT_OK(opened);
  std::unique_ptr<Store> store = std::move(*opened);
  proxy.set_cut(cut);
  std::vector<Mutation> batch;
  constexpr int kTasks = 50;
  for (int i = 0; i < kTasks; ++i) {
    batch.push_back(mutation::PutTask{NewTask("c" + std::to_string(i), static_cast<std::uint64_t>(i + 1))});
  }
  Status s = store->Commit(batch);
  EXPECT_TRUE(proxy.cut_happened());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_EQ(store->health().code(), StatusCode::kUnavailable);
  store.reset();
  // What a restart reads: the batch whole, or nothing of it. The cut
  // session's backend may still be finishing its COMMIT: wait for it.
  auto fresh = OpenPostgresStore(PostgresOptions{conninfo});
  ASSERT_OK(fresh);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Found found = AllOrNone(fresh->get(), kTasks);
  while (found != expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    found = AllOrNone(fresh->get(), kTasks);
  }
  EXPECT_EQ(found, expected);
}

TEST_F(PostgresStoreTest, AConnectionCutBeforeCommitBreaksTheStoreAndCommitsNothing) {
  CutDuringCommit(conninfo_, CommitCutProxy::Cut::kBeforeCommit, Found::kNone);
}

TEST_F(PostgresStoreTest, AConnectionCutAfterCommitWasSentBreaksTheStoreAndTheBatchIsWhole) {
  CutDuringCommit(conninfo_, CommitCutProxy::Cut::kAfterCommit, Found::kAll);
}

TEST_F(PostgresStoreTest, AStatementTimeoutBreaksTheStoreAndCommitsNothing) {
  // Another session holds a lock that lets reads through but not the
  // batch's write of the marks; the store's session has
  // a 200 ms statement timeout (from its connection string).
  PGconn* holder = PQconnectdb(conninfo_.c_str());
  ASSERT_NE(Open(), nullptr);  // the schema
  auto opened = OpenPostgresStore(PostgresOptions{conninfo_ + " options='-c statement_timeout=200'"});
  ASSERT_OK(opened);
  PQclear(PQexec(holder, "BEGIN; LOCK TABLE marks IN EXCLUSIVE MODE"));
  std::vector<Mutation> batch = {mutation::PutTask{NewTask("x", 1)}};
  Status s = (*opened)->Commit(batch);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("57014"), std::string::npos) << s.ToString();  // query_canceled
  PQclear(PQexec(holder, "ROLLBACK"));
  PQfinish(holder);
  EXPECT_EQ((*opened)->GetTask("default", "x").status().code(), StatusCode::kNotFound);
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
