#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <boost/json.hpp>
#include <filesystem>
#include <mutex>

#include "core/json_codec.h"
#include "store/sqlite/migrations.h"

namespace json = boost::json;

namespace dray {
namespace {

constexpr const char* kColumns =
    "ns, id, queue, type, payload, priority, run_at, max_attempts, backoff, timeout_ms, "
    "lease_ms, key, labels, state, attempts, result, error, created_at, updated_at, "
    "finished_at, lease_token, lease_expires_at, worker, cancel_requested, seq, history";

// A prepared statement, reset when the holder is done with it.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { Finalize(); }
  void Finalize() {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
  }

  Status Prepare(sqlite3* db, const std::string& sql) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
        SQLITE_OK) {
      return Internal("cannot prepare '" + sql + "': " + sqlite3_errmsg(db));
    }
    return Status::Ok();
  }
  sqlite3_stmt* get() const { return stmt_; }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  void Bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

std::string Text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, col)))
           : std::string();
}

std::string EncodeHistory(const std::vector<Attempt>& history) {
  json::array a;
  a.reserve(history.size());
  for (const Attempt& h : history) {
    a.push_back(json::object{{"number", h.number},
                             {"worker", h.worker},
                             {"started_at", h.started_at},
                             {"ended_at", h.ended_at},
                             {"outcome", static_cast<int>(h.outcome)},
                             {"error", h.error}});
  }
  return json::serialize(a);
}

Status DecodeHistory(const std::string& text, std::vector<Attempt>* out) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_array()) return DataLoss("unreadable attempt history: " + text.substr(0, 100));
  for (const json::value& x : v.get_array()) {
    if (!x.is_object()) return DataLoss("unreadable attempt in history");
    const json::object& o = x.get_object();
    Attempt a;
    a.number = static_cast<std::int32_t>(JsonInt(o, "number"));
    a.worker = JsonString(o, "worker");
    a.started_at = JsonInt(o, "started_at");
    a.ended_at = JsonInt(o, "ended_at");
    a.outcome = static_cast<AttemptOutcome>(JsonInt(o, "outcome"));
    a.error = JsonString(o, "error");
    out->push_back(std::move(a));
  }
  return Status::Ok();
}

std::string EncodeLabels(const std::map<std::string, std::string>& labels) {
  json::object o;
  for (const auto& [k, v] : labels) o[k] = v;
  return json::serialize(o);
}

std::string EncodeBackoffText(const Backoff& b) { return json::serialize(EncodeBackoff(b)); }

Backoff DecodeBackoffText(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  auto b = ec ? StatusOr<Backoff>(DataLoss("unreadable backoff")) : DecodeBackoff(v, "backoff");
  return b.ok() ? *b : Backoff{};
}

std::string EncodeSettings(const QueueSettings& s) { return json::serialize(EncodeQueueSettings(s)); }

QueueSettings DecodeSettings(const std::string& text) {
  QueueSettings s;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (!ec) ApplyQueuePatch(v, &s).IgnoreError();
  return s;
}

// Reads a row selected with kColumns.
StatusOr<Task> ReadTask(sqlite3_stmt* s) {
  Task t;
  t.ns = Text(s, 0);
  t.id = Text(s, 1);
  t.queue = Text(s, 2);
  t.type = Text(s, 3);
  t.payload = Text(s, 4);
  t.priority = sqlite3_column_int(s, 5);
  t.run_at = sqlite3_column_int64(s, 6);
  t.max_attempts = sqlite3_column_int(s, 7);
  t.backoff = DecodeBackoffText(Text(s, 8));
  t.timeout_ms = sqlite3_column_int64(s, 9);
  t.lease_ms = sqlite3_column_int64(s, 10);
  t.key = Text(s, 11);
  {
    boost::system::error_code ec;
    json::value labels = json::parse(Text(s, 12), ec);
    if (!ec && labels.is_object()) {
      for (const auto& [k, v] : labels.get_object()) {
        if (v.is_string()) t.labels.emplace(std::string(k), std::string(v.get_string()));
      }
    }
  }
  int state = sqlite3_column_int(s, 13);
  if (state < 1 || state > 7) return DataLoss("task " + t.id + " has unknown state " + std::to_string(state));
  t.state = static_cast<TaskState>(state);
  t.attempts = sqlite3_column_int(s, 14);
  t.result = Text(s, 15);
  t.error = Text(s, 16);
  t.created_at = sqlite3_column_int64(s, 17);
  t.updated_at = sqlite3_column_int64(s, 18);
  t.finished_at = sqlite3_column_int64(s, 19);
  t.lease_token = static_cast<std::uint64_t>(sqlite3_column_int64(s, 20));
  t.lease_expires_at = sqlite3_column_int64(s, 21);
  t.worker = Text(s, 22);
  t.cancel_requested = sqlite3_column_int(s, 23) != 0;
  t.seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 24));
  DRAY_RETURN_IF_ERROR(DecodeHistory(Text(s, 25), &t.history));
  return t;
}

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override {
    {
      std::lock_guard<std::mutex> lock(wmu_);
      put_task_.Finalize();
      delete_task_.Finalize();
      put_queue_.Finalize();
    }
    {
      std::lock_guard<std::mutex> lock(rmu_);
      get_task_.Finalize();
    }
    sqlite3_close_v2(writer_);
    sqlite3_close_v2(reader_);
  }

  Status Open(const SqliteOptions& o) {
    std::error_code ec;
    auto dir = std::filesystem::path(o.path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    const char* vfs = o.vfs.empty() ? nullptr : o.vfs.c_str();
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(o.path.c_str(), &writer_, flags, vfs) != SQLITE_OK) {
      return Unavailable("cannot open " + o.path + ": " +
                         (writer_ ? sqlite3_errmsg(writer_) : "out of memory"));
    }
    sqlite3_busy_timeout(writer_, o.busy_timeout_ms);
    DRAY_RETURN_IF_ERROR(Exec(writer_, "PRAGMA journal_mode=WAL"));
    DRAY_RETURN_IF_ERROR(Exec(writer_, o.synchronous_full ? "PRAGMA synchronous=FULL"
                                                           : "PRAGMA synchronous=OFF"));
    DRAY_RETURN_IF_ERROR(Migrate());
    if (sqlite3_open_v2(o.path.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        vfs) != SQLITE_OK) {
      return Unavailable("cannot open " + o.path + " for reading: " + sqlite3_errmsg(reader_));
    }
    sqlite3_busy_timeout(reader_, o.busy_timeout_ms);
    std::string placeholders;
    for (int i = 0; i < 26; ++i) placeholders += i ? ",?" : "?";
    DRAY_RETURN_IF_ERROR(put_task_.Prepare(
        writer_, std::string("INSERT OR REPLACE INTO tasks (") + kColumns + ") VALUES (" +
                     placeholders + ")"));
    DRAY_RETURN_IF_ERROR(delete_task_.Prepare(writer_, "DELETE FROM tasks WHERE ns = ? AND id = ?"));
    DRAY_RETURN_IF_ERROR(put_queue_.Prepare(
        writer_, "INSERT OR REPLACE INTO queues (ns, name, settings) VALUES (?, ?, ?)"));
    DRAY_RETURN_IF_ERROR(get_task_.Prepare(
        reader_, std::string("SELECT ") + kColumns + " FROM tasks WHERE ns = ? AND id = ?"));
    return Status::Ok();
  }

  Status Commit(std::span<const Mutation> mutations) override {
    std::lock_guard<std::mutex> lock(wmu_);
    {
      std::lock_guard<std::mutex> h(hmu_);
      if (!broken_.ok()) return broken_;
    }
    Status s = Exec(writer_, "BEGIN IMMEDIATE");
    for (std::size_t i = 0; s.ok() && i < mutations.size(); ++i) s = ApplyLocked(mutations[i]);
    if (s.ok()) s = Exec(writer_, "COMMIT");
    if (!s.ok()) {
      if (!sqlite3_get_autocommit(writer_)) Exec(writer_, "ROLLBACK").IgnoreError();
      std::lock_guard<std::mutex> h(hmu_);
      broken_ = Unavailable("a commit failed; the store refuses writes until restart: " + s.message());
      return broken_;
    }
    return Status::Ok();
  }

  Status health() const override {
    std::lock_guard<std::mutex> h(hmu_);
    return broken_;
  }

  StatusOr<Task> GetTask(const std::string& ns, const std::string& id) override {
    std::lock_guard<std::mutex> lock(rmu_);
    get_task_.Reset();
    get_task_.Bind(1, ns);
    get_task_.Bind(2, id);
    int rc = sqlite3_step(get_task_.get());
    if (rc == SQLITE_DONE) {
      get_task_.Reset();
      return NotFound("no task '" + id + "' in namespace '" + ns + "'");
    }
    if (rc != SQLITE_ROW) {
      get_task_.Reset();
      return Unavailable(std::string("reading a task: ") + sqlite3_errmsg(reader_));
    }
    auto t = ReadTask(get_task_.get());
    get_task_.Reset();
    return t;
  }

  StatusOr<TaskPage> ListTasks(const TaskQuery& q) override {
    const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 1000);
    std::string sql = std::string("SELECT ") + kColumns + " FROM tasks WHERE ns = ?";
    if (!q.queue.empty()) sql += " AND queue = ?";
    if (q.state) sql += " AND state = ?";
    if (!q.type.empty()) sql += " AND type = ?";
    if (!q.cursor.empty()) sql += q.newest_first ? " AND id < ?" : " AND id > ?";
    sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id ASC";
    sql += " LIMIT ?";
    std::lock_guard<std::mutex> lock(rmu_);
    Stmt st;
    DRAY_RETURN_IF_ERROR(st.Prepare(reader_, sql));
    int i = 1;
    st.Bind(i++, q.ns);
    if (!q.queue.empty()) st.Bind(i++, q.queue);
    if (q.state) st.Bind(i++, static_cast<std::int64_t>(*q.state));
    if (!q.type.empty()) st.Bind(i++, q.type);
    if (!q.cursor.empty()) st.Bind(i++, q.cursor);
    st.Bind(i++, static_cast<std::int64_t>(limit + 1));
    TaskPage page;
    std::size_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      if (page.tasks.size() == limit || (q.max_bytes && bytes >= q.max_bytes)) {
        page.next_cursor = page.tasks.back().id;
        break;
      }
      auto t = ReadTask(st.get());
      if (!t.ok()) return t.status();
      bytes += t->payload.size() + t->result.size() + t->error.size();
      page.tasks.push_back(std::move(*t));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return Unavailable(std::string("listing tasks: ") + sqlite3_errmsg(reader_));
    }
    return page;
  }

  Status ScanLiveTasks(const std::function<void(Task&&)>& fn) override {
    return Scan(std::string("SELECT ") + kColumns + " FROM tasks WHERE state < 5 ORDER BY seq",
                [&](sqlite3_stmt* s) -> Status {
                  auto t = ReadTask(s);
                  if (!t.ok()) return t.status();
                  fn(std::move(*t));
                  return Status::Ok();
                });
  }

  Status ScanKeys(TimeMs since,
                  const std::function<void(const std::string&, const std::string&,
                                           const std::string&, TimeMs)>& fn) override {
    return Scan("SELECT ns, key, id, created_at FROM tasks WHERE key <> '' AND created_at >= " +
                    std::to_string(since) + " ORDER BY created_at",
                [&](sqlite3_stmt* s) {
                  fn(Text(s, 0), Text(s, 1), Text(s, 2), sqlite3_column_int64(s, 3));
                  return Status::Ok();
                });
  }

  StatusOr<std::vector<QueueRecord>> LoadQueues() override {
    std::vector<QueueRecord> out;
    DRAY_RETURN_IF_ERROR(Scan("SELECT ns, name, settings FROM queues ORDER BY ns, name",
                              [&](sqlite3_stmt* s) {
                                out.push_back(QueueRecord{Text(s, 0), Text(s, 1),
                                                          DecodeSettings(Text(s, 2))});
                                return Status::Ok();
                              }));
    return out;
  }

  StatusOr<StoreMarks> LoadMarks() override {
    StoreMarks m;
    DRAY_RETURN_IF_ERROR(Scan("SELECT COALESCE(MAX(lease_token), 0), COALESCE(MAX(seq), 0) FROM tasks",
                              [&](sqlite3_stmt* s) {
                                m.max_lease_token = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
                                m.max_seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
                                return Status::Ok();
                              }));
    return m;
  }

  StatusOr<std::vector<StateCount>> CountTerminal() override {
    std::vector<StateCount> out;
    DRAY_RETURN_IF_ERROR(Scan(
        "SELECT ns, queue, state, COUNT(*) FROM tasks WHERE state >= 5 GROUP BY ns, queue, state",
        [&](sqlite3_stmt* s) {
          out.push_back(StateCount{Text(s, 0), Text(s, 1),
                                   static_cast<TaskState>(sqlite3_column_int(s, 2)),
                                   sqlite3_column_int64(s, 3)});
          return Status::Ok();
        }));
    return out;
  }

  StatusOr<std::vector<std::pair<std::string, std::string>>> FindExpired(TimeMs cutoff,
                                                                       std::size_t limit) override {
    std::vector<std::pair<std::string, std::string>> out;
    DRAY_RETURN_IF_ERROR(Scan("SELECT ns, id FROM tasks WHERE state >= 5 AND finished_at < " +
                                  std::to_string(cutoff) + " ORDER BY finished_at LIMIT " +
                                  std::to_string(limit),
                              [&](sqlite3_stmt* s) {
                                out.emplace_back(Text(s, 0), Text(s, 1));
                                return Status::Ok();
                              }));
    return out;
  }

 private:
  static Status Exec(sqlite3* db, const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      return Unavailable("'" + sql.substr(0, 60) + "' failed: " + msg);
    }
    return Status::Ok();
  }

  Status Migrate() {
    int version = 0;
    {
      sqlite3_stmt* s = nullptr;
      sqlite3_prepare_v2(writer_, "PRAGMA user_version", -1, &s, nullptr);
      if (s && sqlite3_step(s) == SQLITE_ROW) version = sqlite3_column_int(s, 0);
      sqlite3_finalize(s);
    }
    auto migrations = SqliteMigrations();
    if (version > static_cast<int>(migrations.size())) {
      return FailedPrecondition("the database is at schema version " + std::to_string(version) +
                                "; this dray knows up to " + std::to_string(migrations.size()));
    }
    for (int v = version; v < static_cast<int>(migrations.size()); ++v) {
      DRAY_RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
      Status s = Exec(writer_, std::string(migrations[static_cast<std::size_t>(v)]));
      if (s.ok()) s = Exec(writer_, "PRAGMA user_version = " + std::to_string(v + 1));
      if (s.ok()) s = Exec(writer_, "COMMIT");
      if (!s.ok()) {
        Exec(writer_, "ROLLBACK").IgnoreError();
        return Unavailable("migration " + std::to_string(v + 1) + " failed: " + s.message());
      }
    }
    return Status::Ok();
  }

  Status ApplyLocked(const Mutation& m) {
    Stmt* st = nullptr;
    switch (m.kind) {
      case Mutation::Kind::kPutTask: {
        if (!m.task) return Internal("a task write without a task");
        const Task& t = *m.task;
        st = &put_task_;
        st->Reset();
        std::string backoff = EncodeBackoffText(t.backoff);
        std::string labels = EncodeLabels(t.labels);
        std::string history = EncodeHistory(t.history);
        st->Bind(1, t.ns);
        st->Bind(2, t.id);
        st->Bind(3, t.queue);
        st->Bind(4, t.type);
        st->Bind(5, t.payload);
        st->Bind(6, t.priority);
        st->Bind(7, t.run_at);
        st->Bind(8, t.max_attempts);
        st->Bind(9, backoff);
        st->Bind(10, t.timeout_ms);
        st->Bind(11, t.lease_ms);
        st->Bind(12, t.key);
        st->Bind(13, labels);
        st->Bind(14, static_cast<std::int64_t>(t.state));
        st->Bind(15, t.attempts);
        st->Bind(16, t.result);
        st->Bind(17, t.error);
        st->Bind(18, t.created_at);
        st->Bind(19, t.updated_at);
        st->Bind(20, t.finished_at);
        st->Bind(21, static_cast<std::int64_t>(t.lease_token));
        st->Bind(22, t.lease_expires_at);
        st->Bind(23, t.worker);
        st->Bind(24, t.cancel_requested ? 1 : 0);
        st->Bind(25, static_cast<std::int64_t>(t.seq));
        st->Bind(26, history);
        return StepLocked(st);  // binds are SQLITE_STATIC: step before the strings die
      }
      case Mutation::Kind::kDeleteTask:
        st = &delete_task_;
        st->Reset();
        st->Bind(1, m.ns);
        st->Bind(2, m.id);
        return StepLocked(st);
      case Mutation::Kind::kPutQueue: {
        st = &put_queue_;
        st->Reset();
        std::string settings = EncodeSettings(m.queue.settings);
        st->Bind(1, m.queue.ns);
        st->Bind(2, m.queue.name);
        st->Bind(3, settings);
        return StepLocked(st);
      }
    }
    return Internal("unknown mutation kind");
  }

  Status StepLocked(Stmt* st) {
    int rc = sqlite3_step(st->get());
    Status s = rc == SQLITE_DONE ? Status::Ok()
                                 : Unavailable(std::string("write failed: ") + sqlite3_errmsg(writer_));
    st->Reset();
    return s;
  }

  Status Scan(const std::string& sql, const std::function<Status(sqlite3_stmt*)>& fn) {
    std::lock_guard<std::mutex> lock(rmu_);
    Stmt st;
    DRAY_RETURN_IF_ERROR(st.Prepare(reader_, sql));
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) DRAY_RETURN_IF_ERROR(fn(st.get()));
    if (rc != SQLITE_DONE) return Unavailable("'" + sql.substr(0, 60) + "': " + sqlite3_errmsg(reader_));
    return Status::Ok();
  }

  sqlite3* writer_ = nullptr;  // guarded by wmu_ after Open
  sqlite3* reader_ = nullptr;  // guarded by rmu_ after Open
  std::mutex wmu_;
  std::mutex rmu_;
  mutable std::mutex hmu_;
  Status broken_;  // guarded by hmu_
  Stmt put_task_, delete_task_, put_queue_;  // guarded by wmu_
  Stmt get_task_;                            // guarded by rmu_
};

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  auto store = std::make_unique<SqliteStore>();
  DRAY_RETURN_IF_ERROR(store->Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace dray
