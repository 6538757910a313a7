#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>

#include "store/documents.h"
#include "store/scan_handoff.h"
#include "core/mutex.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/statements.h"


namespace dray {
namespace {


// WAL pages after which a commit runs a passive checkpoint (SQLite's own
// default for wal_autocheckpoint).
constexpr int kCheckpointPages = 1000;

std::string SqliteError(sqlite3* db) {
  return std::string(sqlite3_errmsg(db)) + " (code " + std::to_string(sqlite3_extended_errcode(db)) +
         ")";
}

// A prepared statement, prepared once and reused. Text is bound with
// SQLITE_STATIC: the bound strings must outlive the step.
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
  bool prepared() const { return stmt_ != nullptr; }
  Status Prepare(sqlite3* db, const std::string& sql) {
    Finalize();
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
        SQLITE_OK) {
      return Internal("cannot prepare '" + sql + "': " + SqliteError(db));
    }
    return Status::Ok();
  }
  sqlite3_stmt* get() const { return stmt_; }
  // Ends the statement's read of the database (a statement left stepping
  // holds a snapshot and stops checkpoints) and drops its bindings.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  void Bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void Bind(int i, std::string_view v) {
    // A null data() would bind SQL NULL; an empty string must stay ''.
    sqlite3_bind_text(stmt_, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when the scope ends, whichever way it ends.
class ResetOnExit {
 public:
  explicit ResetOnExit(Stmt* st) : st_(st) {}
  ~ResetOnExit() { st_->Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Stmt* st_;
};

std::string Text(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, col)))
           : std::string();
}

// The JSON columns hold the store's documents (store/documents.h), never
// the API's JSON: a row that does not read back is DataLoss, never a
// silently different task.

// Reads rows selected with kColumns. Keeps the last backoff it decoded:
// a scan meets the same few values over and over, and a JSON parse per row
// was a fifth of recovery.
class TaskReader {
 public:
  StatusOr<Task> Read(sqlite3_stmt* s) {
    Task t;
    t.ns = Text(s, 0);
    t.id = Text(s, 1);
    t.queue = Text(s, 2);
    t.type = Text(s, 3);
    t.payload = Text(s, 4);
    t.priority = sqlite3_column_int(s, 5);
    t.run_at = sqlite3_column_int64(s, 6);
    t.max_attempts = sqlite3_column_int(s, 7);
    Status st = Backoff(s, 8, &t.backoff);
    t.timeout_ms = sqlite3_column_int64(s, 9);
    t.lease_ms = sqlite3_column_int64(s, 10);
    t.key = Text(s, 11);
    if (st.ok() && !IsText(s, 12, "{}")) st = ReadLabelsDocument(Text(s, 12), &t.labels);
    int state = sqlite3_column_int(s, 13);
    if (st.ok() && (state < static_cast<int>(TaskState::kScheduled) ||
                    state > static_cast<int>(TaskState::kCancelled))) {
      st = DataLoss("unknown state " + std::to_string(state));
    }
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
    if (st.ok() && !IsText(s, 25, "[]")) st = ReadHistoryDocument(Text(s, 25), &t.history);
    if (st.ok() && sqlite3_column_bytes(s, 26) > 0) st = ReadFlowDocument(Text(s, 26), &t);
    t.workflow = Text(s, 27);
    if (!st.ok()) return DataLoss("task '" + t.id + "' in namespace '" + t.ns + "': " + st.message());
    return t;
  }

 private:
  static bool IsText(sqlite3_stmt* s, int col, std::string_view want) {
    const unsigned char* p = sqlite3_column_text(s, col);
    return p && static_cast<std::size_t>(sqlite3_column_bytes(s, col)) == want.size() &&
           std::memcmp(p, want.data(), want.size()) == 0;
  }
  Status Backoff(sqlite3_stmt* s, int col, dray::Backoff* out) {
    const unsigned char* p = sqlite3_column_text(s, col);
    std::string_view text(p ? reinterpret_cast<const char*>(p) : "",
                          static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
    if (have_backoff_ && text == backoff_text_) {
      *out = backoff_;
      return Status::Ok();
    }
    DRAY_RETURN_IF_ERROR(ReadBackoffDocument(text, out));
    backoff_text_ = std::string(text);
    backoff_ = *out;
    have_backoff_ = true;
    return Status::Ok();
  }

  bool have_backoff_ = false;
  std::string backoff_text_;
  dray::Backoff backoff_;
};

StatusOr<Task> ReadTask(sqlite3_stmt* s) { return TaskReader().Read(s); }


StatusOr<Workflow> ReadWorkflow(sqlite3_stmt* s) {
  Workflow w;
  w.ns = Text(s, 0);
  w.id = Text(s, 1);
  w.name = Text(s, 2);
  const int state = sqlite3_column_int(s, 3);
  const int policy = sqlite3_column_int(s, 4);
  if (state < 1 || state > 4 || policy < 0 || policy > 1) {
    return DataLoss("workflow '" + w.id + "' has an unknown state or policy");
  }
  w.state = static_cast<WorkflowState>(state);
  w.on_failure = static_cast<DepFailure>(policy);
  w.tasks = sqlite3_column_int(s, 5);
  w.cancel_requested = sqlite3_column_int(s, 6) != 0;
  w.created_at = sqlite3_column_int64(s, 7);
  w.updated_at = sqlite3_column_int64(s, 8);
  w.finished_at = sqlite3_column_int64(s, 9);
  return w;
}

// The JSON columns of one task, kept alive while the INSERT steps.
struct TaskJson {
  std::string backoff, labels, history, flow;
};

void BindTask(Stmt* st, const Task& t, const TaskJson& j) {
  st->Bind(1, t.ns);
  st->Bind(2, t.id);
  st->Bind(3, t.queue);
  st->Bind(4, t.type);
  st->Bind(5, t.payload);
  st->Bind(6, t.priority);
  st->Bind(7, t.run_at);
  st->Bind(8, t.max_attempts);
  st->Bind(9, j.backoff);
  st->Bind(10, t.timeout_ms);
  st->Bind(11, t.lease_ms);
  st->Bind(12, t.key);
  st->Bind(13, j.labels);
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
  st->Bind(26, j.history);
  st->Bind(27, j.flow);
  st->Bind(28, t.workflow);
}

// Binds the parameters of kUpdateTask / kUpdateLiveTask.
void BindUpdate(Stmt* st, const Task& t, const std::string& history) {
  st->Bind(1, t.run_at);
  st->Bind(2, static_cast<std::int64_t>(t.state));
  st->Bind(3, t.attempts);
  st->Bind(4, t.result);
  st->Bind(5, t.error);
  st->Bind(6, t.updated_at);
  st->Bind(7, t.finished_at);
  st->Bind(8, static_cast<std::int64_t>(t.lease_token));
  st->Bind(9, t.lease_expires_at);
  st->Bind(10, t.worker);
  st->Bind(11, t.cancel_requested ? 1 : 0);
  st->Bind(12, history);
  st->Bind(13, t.ns);
  st->Bind(14, t.id);
}

// ListTasks statements differ by which filters are present and the order;
// each of the 32 shapes is prepared once.
constexpr unsigned kByQueue = 1;
constexpr unsigned kByState = 2;
constexpr unsigned kByType = 4;
constexpr unsigned kAfterCursor = 8;
constexpr unsigned kNewestFirst = 16;
constexpr unsigned kListShapes = 32;

// The index each shape walks, named because SQLite without statistics
// guesses that "ns = ?" is selective and would walk the primary key,
// filtering row by row, where one namespace usually holds every task.
const char* ListIndex(unsigned shape) {
  if ((shape & kByQueue) && (shape & kByState)) return " INDEXED BY tasks_by_queue_state";
  if (shape & kByQueue) return " INDEXED BY tasks_by_queue";
  if (shape & kByState) return " INDEXED BY tasks_by_state";
  return "";  // the primary key (ns, id)
}

std::string ListSql(unsigned shape) {
  std::string sql =
      std::string("SELECT ") + kColumns + " FROM tasks" + ListIndex(shape) + " WHERE ns = ?";
  if (shape & kByQueue) sql += " AND queue = ?";
  if (shape & kByState) sql += " AND state = ?";
  if (shape & kByType) sql += " AND type = ?";
  if (shape & kAfterCursor) sql += (shape & kNewestFirst) ? " AND id < ?" : " AND id > ?";
  sql += (shape & kNewestFirst) ? " ORDER BY id DESC" : " ORDER BY id ASC";
  return sql + " LIMIT ?";
}

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override;
  Status Open(const SqliteOptions& o);

  Status Commit(std::span<const Mutation> mutations) override;
  Status health() const override;
  StatusOr<Task> GetTask(const std::string& ns, const std::string& id) override;
  StatusOr<TaskPage> ListTasks(const TaskQuery& q) override;
  Status ScanLiveTasks(const std::function<void(Task&&)>& fn) override;
  Status ScanKeys(TimeMs since,
                  const std::function<void(const std::string&, const std::string&,
                                           const std::string&, TimeMs)>& fn) override;
  StatusOr<std::vector<QueueRecord>> LoadQueues() override;
  StatusOr<StoreMarks> LoadMarks() override;
  StatusOr<std::vector<StateCount>> CountTerminal() override;
  StatusOr<std::vector<ExpiredTask>> FindExpired(TimeMs cutoff, std::size_t limit) override;
  StatusOr<Workflow> GetWorkflow(const std::string& ns, const std::string& id) override;
  StatusOr<WorkflowPage> ListWorkflows(const WorkflowQuery& q) override;
  StatusOr<std::vector<Task>> WorkflowTasks(const std::string& ns, const std::string& id) override;
  StatusOr<std::vector<RunningWorkflow>> LoadRunningWorkflows() override;
  StatusOr<std::vector<std::pair<std::string, std::string>>> FindExpiredWorkflows(
      TimeMs cutoff, std::size_t limit) override;
  StatusOr<std::vector<Schedule>> LoadSchedules() override;
  StatusOr<Event> GetEvent(const std::string& ns, const std::string& id) override;
  Status ScanEventIds(TimeMs since,
                      const std::function<void(const std::string&, const std::string&, TimeMs)>&
                          fn) override;
  StatusOr<bool> HasEventsBefore(TimeMs cutoff) override;
  StatusOr<std::vector<Trigger>> LoadTriggers() override;

 private:
  static Status Exec(sqlite3* db, const std::string& sql);
  static int OnWalCommit(void* self, sqlite3*, const char*, int pages);
  Status OpenWriter(const SqliteOptions& o);
  Status OpenReader(const SqliteOptions& o);
  Status Migrate() DRAY_REQUIRES(wmu_);
  Status MigrateLocked(int* version) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const Mutation& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::PutTask& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::UpdateTask& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::DeleteTask& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::PutQueue& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::PutWorkflow& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::DeleteWorkflow& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::PutSchedule& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::DeleteSchedule& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::PutEvent& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::DeleteEventsBefore& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::PutTrigger& m) DRAY_REQUIRES(wmu_);
  Status ApplyLocked(const mutation::DeleteTrigger& m) DRAY_REQUIRES(wmu_);
  Status StepWriteLocked(Stmt* st, const char* what) DRAY_REQUIRES(wmu_);
  void CheckpointLocked() DRAY_REQUIRES(wmu_);
  void Break(const std::string& cause) DRAY_EXCLUDES(hmu_);
  // Steps `st` (prepared on the reader, bound by the caller) to the end,
  // calling fn on each row, then resets it.
  Status ReadAll(Stmt* st, const char* what, const std::function<Status(sqlite3_stmt*)>& fn)
      DRAY_REQUIRES(rmu_);
  Status PrepareReader(Stmt* st, const std::string& sql) DRAY_REQUIRES(rmu_);

  std::string path_;
  // The writer: Commit(), migrations and checkpoints.
  Mutex wmu_;
  sqlite3* writer_ DRAY_GUARDED_BY(wmu_) = nullptr;
  Stmt put_task_ DRAY_GUARDED_BY(wmu_);
  Stmt update_task_ DRAY_GUARDED_BY(wmu_);
  Stmt update_live_task_ DRAY_GUARDED_BY(wmu_);
  Stmt put_marks_ DRAY_GUARDED_BY(wmu_);
  StoreMarks marks_ DRAY_GUARDED_BY(wmu_);  // as committed
  Stmt delete_task_ DRAY_GUARDED_BY(wmu_);
  Stmt put_queue_ DRAY_GUARDED_BY(wmu_);
  Stmt put_workflow_ DRAY_GUARDED_BY(wmu_);
  Stmt delete_workflow_ DRAY_GUARDED_BY(wmu_);
  Stmt put_schedule_ DRAY_GUARDED_BY(wmu_);
  Stmt delete_schedule_ DRAY_GUARDED_BY(wmu_);
  Stmt put_event_ DRAY_GUARDED_BY(wmu_);
  Stmt delete_events_ DRAY_GUARDED_BY(wmu_);
  Stmt put_trigger_ DRAY_GUARDED_BY(wmu_);
  Stmt delete_trigger_ DRAY_GUARDED_BY(wmu_);
  // WAL size in pages, set by OnWalCommit inside COMMIT, so under wmu_ (not
  // annotated: the analysis cannot follow SQLite's callback).
  int wal_pages_ = 0;
  // The reader: every read, beside a running commit (WAL snapshots).
  Mutex rmu_;
  sqlite3* reader_ DRAY_GUARDED_BY(rmu_) = nullptr;
  Stmt get_task_ DRAY_GUARDED_BY(rmu_);
  std::array<Stmt, kListShapes> list_ DRAY_GUARDED_BY(rmu_);  // prepared on first use
  Stmt scan_live_ DRAY_GUARDED_BY(rmu_);
  Stmt scan_keys_ DRAY_GUARDED_BY(rmu_);
  Stmt load_queues_ DRAY_GUARDED_BY(rmu_);
  Stmt load_marks_ DRAY_GUARDED_BY(rmu_);
  Stmt count_terminal_ DRAY_GUARDED_BY(rmu_);
  Stmt find_expired_ DRAY_GUARDED_BY(rmu_);
  Stmt get_workflow_ DRAY_GUARDED_BY(rmu_);
  Stmt workflow_tasks_ DRAY_GUARDED_BY(rmu_);
  Stmt running_workflows_ DRAY_GUARDED_BY(rmu_);
  Stmt find_expired_workflows_ DRAY_GUARDED_BY(rmu_);
  // The first error that broke the store; OK while it accepts writes.
  mutable Mutex hmu_;
  Status broken_ DRAY_GUARDED_BY(hmu_);
};

SqliteStore::~SqliteStore() {
  {
    MutexLock lock(&wmu_);
    put_task_.Finalize();
    update_task_.Finalize();
    update_live_task_.Finalize();
    put_marks_.Finalize();
    delete_task_.Finalize();
    put_queue_.Finalize();
    put_workflow_.Finalize();
    delete_workflow_.Finalize();
    sqlite3_close_v2(writer_);
  }
  MutexLock lock(&rmu_);
  for (Stmt* st : {&get_task_, &scan_live_, &scan_keys_, &load_queues_, &load_marks_,
                   &count_terminal_, &find_expired_, &get_workflow_, &workflow_tasks_,
                   &running_workflows_, &find_expired_workflows_}) {
    st->Finalize();
  }
  for (Stmt& st : list_) st.Finalize();
  sqlite3_close_v2(reader_);
}

Status SqliteStore::Open(const SqliteOptions& o) {
  path_ = o.path;
  auto dir = std::filesystem::path(o.path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Unavailable("cannot create " + dir.string() + ": " + ec.message());
  }
  DRAY_RETURN_IF_ERROR(OpenWriter(o));
  return OpenReader(o);
}

// The writer opens first: it creates the file, turns on WAL (a property of
// the file, so the reader inherits it) and migrates the schema.
Status SqliteStore::OpenWriter(const SqliteOptions& o) {
  MutexLock lock(&wmu_);
  const char* vfs = o.vfs.empty() ? nullptr : o.vfs.c_str();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(o.path.c_str(), &writer_, flags, vfs) != SQLITE_OK) {
    return Unavailable("cannot open " + o.path + ": " +
                       (writer_ ? SqliteError(writer_) : std::string("out of memory")));
  }
  sqlite3_extended_result_codes(writer_, 1);
  sqlite3_busy_timeout(writer_, o.busy_timeout_ms);
  {
    sqlite3_stmt* s = nullptr;
    std::string mode;
    if (sqlite3_prepare_v2(writer_, "PRAGMA journal_mode=WAL", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      mode = Text(s, 0);
    }
    sqlite3_finalize(s);
    if (mode != "wal") {
      return Unavailable("cannot switch " + o.path + " to WAL mode (mode is '" + mode +
                         "'): " + SqliteError(writer_));
    }
  }
  DRAY_RETURN_IF_ERROR(
      Exec(writer_, o.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF"));
  // Checkpoints run after a commit, not inside it (see CheckpointLocked).
  sqlite3_wal_hook(writer_, &SqliteStore::OnWalCommit, this);
  DRAY_RETURN_IF_ERROR(Migrate());
  DRAY_RETURN_IF_ERROR(put_task_.Prepare(writer_, PutTaskSql()));
  DRAY_RETURN_IF_ERROR(update_task_.Prepare(writer_, kUpdateTask));
  DRAY_RETURN_IF_ERROR(update_live_task_.Prepare(writer_, kUpdateLiveTask));
  DRAY_RETURN_IF_ERROR(
      put_marks_.Prepare(writer_, "UPDATE marks SET max_lease_token = ?, max_seq = ? WHERE id = 1"));
  {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(writer_, "SELECT max_lease_token, max_seq FROM marks WHERE id = 1", -1,
                           &q, nullptr) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
      sqlite3_finalize(q);
      return Unavailable("cannot read the marks of " + o.path + ": " + SqliteError(writer_));
    }
    marks_.max_lease_token = static_cast<std::uint64_t>(sqlite3_column_int64(q, 0));
    marks_.max_seq = static_cast<std::uint64_t>(sqlite3_column_int64(q, 1));
    sqlite3_finalize(q);
  }
  DRAY_RETURN_IF_ERROR(delete_task_.Prepare(writer_, "DELETE FROM tasks WHERE ns = ? AND id = ?"));
  DRAY_RETURN_IF_ERROR(put_workflow_.Prepare(
      writer_, std::string("INSERT OR REPLACE INTO workflows (") + kWorkflowColumns +
                   ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  DRAY_RETURN_IF_ERROR(
      delete_workflow_.Prepare(writer_, "DELETE FROM workflows WHERE ns = ? AND id = ?"));
  DRAY_RETURN_IF_ERROR(put_schedule_.Prepare(
      writer_, "INSERT OR REPLACE INTO schedules (ns, id, body) VALUES (?, ?, ?)"));
  DRAY_RETURN_IF_ERROR(
      delete_schedule_.Prepare(writer_, "DELETE FROM schedules WHERE ns = ? AND id = ?"));
  DRAY_RETURN_IF_ERROR(put_event_.Prepare(
      writer_,
      "INSERT OR REPLACE INTO events (ns, id, name, payload, created_at, tasks) "
      "VALUES (?, ?, ?, ?, ?, ?)"));
  DRAY_RETURN_IF_ERROR(delete_events_.Prepare(
      writer_,
      "DELETE FROM events WHERE (ns, id) IN (SELECT ns, id FROM events INDEXED BY "
      "events_by_time WHERE created_at < ? ORDER BY created_at LIMIT 10000)"));
  DRAY_RETURN_IF_ERROR(put_trigger_.Prepare(
      writer_, "INSERT OR REPLACE INTO triggers (ns, id, body) VALUES (?, ?, ?)"));
  DRAY_RETURN_IF_ERROR(
      delete_trigger_.Prepare(writer_, "DELETE FROM triggers WHERE ns = ? AND id = ?"));
  return put_queue_.Prepare(writer_,
                            "INSERT OR REPLACE INTO queues (ns, name, settings) VALUES (?, ?, ?)");
}

Status SqliteStore::OpenReader(const SqliteOptions& o) {
  MutexLock lock(&rmu_);
  const char* vfs = o.vfs.empty() ? nullptr : o.vfs.c_str();
  if (sqlite3_open_v2(o.path.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, vfs) !=
      SQLITE_OK) {
    return Unavailable("cannot open " + o.path + " for reading: " +
                       (reader_ ? SqliteError(reader_) : std::string("out of memory")));
  }
  sqlite3_extended_result_codes(reader_, 1);
  sqlite3_busy_timeout(reader_, o.busy_timeout_ms);
  const std::string select = std::string("SELECT ") + kColumns + " FROM tasks";
  DRAY_RETURN_IF_ERROR(PrepareReader(&get_task_, select + " WHERE ns = ? AND id = ?"));
  DRAY_RETURN_IF_ERROR(
      PrepareReader(&scan_live_, select + " INDEXED BY tasks_by_state WHERE state < 5"));
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &scan_keys_,
      "SELECT ns, key, id, created_at FROM tasks WHERE key <> '' AND created_at >= ? "
      "ORDER BY created_at"));
  DRAY_RETURN_IF_ERROR(
      PrepareReader(&load_queues_, "SELECT ns, name, settings FROM queues ORDER BY ns, name"));
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &load_marks_, "SELECT max_lease_token, max_seq FROM marks WHERE id = 1"));
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &count_terminal_,
      "SELECT ns, queue, state, COUNT(*) FROM tasks WHERE state >= 5 GROUP BY ns, queue, state"));
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &find_expired_,
      "SELECT ns, id, queue, state FROM tasks WHERE finished_at > 0 AND finished_at < ? "
      "AND state >= 5 AND workflow = '' ORDER BY finished_at, ns, id LIMIT ?"));
  const std::string wf = std::string("SELECT ") + kWorkflowColumns + " FROM workflows";
  DRAY_RETURN_IF_ERROR(PrepareReader(&get_workflow_, wf + " WHERE ns = ? AND id = ?"));
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &workflow_tasks_,
      select + " INDEXED BY tasks_by_workflow WHERE ns = ? AND workflow = ? AND workflow <> '' "
               "ORDER BY seq"));
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &running_workflows_,
      "SELECT " + std::string(kWorkflowColumns) +
          ", (SELECT COUNT(*) FROM tasks t WHERE t.ns = w.ns AND t.workflow = w.id AND "
          "t.workflow <> '' AND t.state IN (6, 7)) FROM workflows w WHERE state = 1"));
  return PrepareReader(&find_expired_workflows_,
                       "SELECT ns, id FROM workflows WHERE state >= 2 AND finished_at < ? "
                       "ORDER BY finished_at LIMIT ?");
}

Status SqliteStore::PrepareReader(Stmt* st, const std::string& sql) { return st->Prepare(reader_, sql); }

Status SqliteStore::Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = (err ? std::string(err) : std::string(sqlite3_errmsg(db))) + " (code " +
                      std::to_string(sqlite3_extended_errcode(db)) + ")";
    sqlite3_free(err);
    return Unavailable("'" + sql.substr(0, 60) + "' failed: " + msg);
  }
  return Status::Ok();
}

Status SqliteStore::Migrate() {
  int version = 0;
  // Reading the version inside the write transaction keeps two processes
  // opening one new file from both running migration 1.
  DRAY_RETURN_IF_ERROR(Exec(writer_, "BEGIN IMMEDIATE"));
  Status s = MigrateLocked(&version);
  if (s.ok()) s = Exec(writer_, "COMMIT");
  if (!s.ok()) {
    if (!sqlite3_get_autocommit(writer_)) Exec(writer_, "ROLLBACK").IgnoreError();
    return s;
  }
  return Status::Ok();
}

Status SqliteStore::MigrateLocked(int* version) {
  {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(writer_, "PRAGMA user_version", -1, &s, nullptr) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
      sqlite3_finalize(s);
      return Unavailable("reading the schema version of " + path_ + ": " + SqliteError(writer_));
    }
    *version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
  }
  auto migrations = SqliteMigrations();
  const int known = static_cast<int>(migrations.size());
  if (*version > known) {
    return FailedPrecondition(path_ + " is at schema version " + std::to_string(*version) +
                              " but this dray knows versions up to " + std::to_string(known) +
                              "; it was written by a newer dray");
  }
  for (int v = *version; v < known; ++v) {
    Status s = Exec(writer_, std::string(migrations[static_cast<std::size_t>(v)]));
    if (s.ok()) s = RewriteRows(v + 1, writer_);
    if (!s.ok()) return Unavailable("migration " + std::to_string(v + 1) + " failed: " + s.message());
  }
  if (*version == known) return Status::Ok();
  return Exec(writer_, "PRAGMA user_version = " + std::to_string(known));
}

int SqliteStore::OnWalCommit(void* self, sqlite3*, const char*, int pages) {
  // Called by SQLite inside COMMIT on the writer, so wmu_ is held.
  static_cast<SqliteStore*>(self)->wal_pages_ = pages;
  return SQLITE_OK;
}

Status SqliteStore::health() const {
  MutexLock h(&hmu_);
  return broken_;
}

void SqliteStore::Break(const std::string& cause) {
  MutexLock h(&hmu_);
  if (broken_.ok()) {
    broken_ = Unavailable("the store at " + path_ + " refuses writes until restart: " + cause);
  }
}

Status SqliteStore::Commit(std::span<const Mutation> mutations) {
  MutexLock lock(&wmu_);
  DRAY_RETURN_IF_ERROR(health());
  if (mutations.empty()) return Status::Ok();
  Status s = Exec(writer_, "BEGIN IMMEDIATE");
  StoreMarks marks = marks_;
  for (std::size_t i = 0; s.ok() && i < mutations.size(); ++i) {
    const Mutation& m = mutations[i];
    if (const auto& t = TaskOf(m)) {
      marks.max_lease_token = std::max(marks.max_lease_token, t->lease_token);
      marks.max_seq = std::max(marks.max_seq, t->seq);
    }
    s = ApplyLocked(m);
  }
  if (s.ok() && (marks.max_lease_token != marks_.max_lease_token ||
                 marks.max_seq != marks_.max_seq)) {
    put_marks_.Reset();
    put_marks_.Bind(1, static_cast<std::int64_t>(marks.max_lease_token));
    put_marks_.Bind(2, static_cast<std::int64_t>(marks.max_seq));
    s = StepWriteLocked(&put_marks_, "raising the marks");
  }
  // With synchronous=FULL, COMMIT returns once the WAL is fsynced.
  if (s.ok()) s = Exec(writer_, "COMMIT");
  if (!s.ok()) {
    if (!sqlite3_get_autocommit(writer_)) Exec(writer_, "ROLLBACK").IgnoreError();
    Break("a commit of " + std::to_string(mutations.size()) + " mutations failed: " + s.message());
    return health();
  }
  marks_ = marks;
  CheckpointLocked();
  return Status::Ok();
}

// Copies the WAL back into the database now and then so that it does not
// grow without bound. It runs after COMMIT returned rather than inside it (as
// SQLite's auto-checkpoint would), so a checkpoint error cannot be taken for
// a failed commit of a batch that is in fact durable. It still breaks the
// store: a failed sync leaves the file's state unknown.
void SqliteStore::CheckpointLocked() {
  if (wal_pages_ < kCheckpointPages) return;
  wal_pages_ = 0;
  if (sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) !=
      SQLITE_OK) {
    Break("a checkpoint failed: " + SqliteError(writer_));
  }
}

Status SqliteStore::ApplyLocked(const Mutation& m) {
  return std::visit(
      [this](const auto& record) {
        wmu_.AssertHeld();  // this call's own
        return ApplyLocked(record);
      },
      m);
}

Status SqliteStore::ApplyLocked(const mutation::PutTask& m) {
  if (!m.task) return InvalidArgument("a PutTask mutation without a task");
  const Task& t = *m.task;
  TaskJson j{BackoffDocument(t.backoff), LabelsDocument(t.labels), HistoryDocument(t.history),
             FlowDocument(t)};
  put_task_.Reset();
  BindTask(&put_task_, t, j);
  return StepWriteLocked(&put_task_, "writing a task");
}

Status SqliteStore::ApplyLocked(const mutation::UpdateTask& m) {
  if (!m.task) return InvalidArgument("an UpdateTask mutation without a task");
  const std::string history = HistoryDocument(m.task->history);
  if (m.task->finished_at == 0) {
    // Matches only a row whose finished_at is 0 already; a task that
    // was finished (a retry) takes the full statement below.
    update_live_task_.Reset();
    BindUpdate(&update_live_task_, *m.task, history);
    DRAY_RETURN_IF_ERROR(StepWriteLocked(&update_live_task_, "updating a task"));
    if (sqlite3_changes(writer_) == 1) return Status::Ok();
  }
  update_task_.Reset();
  BindUpdate(&update_task_, *m.task, history);
  DRAY_RETURN_IF_ERROR(StepWriteLocked(&update_task_, "updating a task"));
  if (sqlite3_changes(writer_) == 1) return Status::Ok();
  return ApplyLocked(mutation::PutTask{m.task});  // not stored yet: write it whole
}

Status SqliteStore::ApplyLocked(const mutation::DeleteTask& m) {
  delete_task_.Reset();
  delete_task_.Bind(1, m.ns);
  delete_task_.Bind(2, m.id);
  return StepWriteLocked(&delete_task_, "deleting a task");
}

Status SqliteStore::ApplyLocked(const mutation::PutWorkflow& m) {
  if (!m.workflow) return InvalidArgument("a PutWorkflow mutation without a workflow");
  const Workflow& w = *m.workflow;
  put_workflow_.Reset();
  put_workflow_.Bind(1, w.ns);
  put_workflow_.Bind(2, w.id);
  put_workflow_.Bind(3, w.name);
  put_workflow_.Bind(4, static_cast<std::int64_t>(w.state));
  put_workflow_.Bind(5, static_cast<std::int64_t>(w.on_failure));
  put_workflow_.Bind(6, w.tasks);
  put_workflow_.Bind(7, w.cancel_requested ? 1 : 0);
  put_workflow_.Bind(8, w.created_at);
  put_workflow_.Bind(9, w.updated_at);
  put_workflow_.Bind(10, w.finished_at);
  return StepWriteLocked(&put_workflow_, "writing a workflow");
}

Status SqliteStore::ApplyLocked(const mutation::DeleteWorkflow& m) {
  delete_workflow_.Reset();
  delete_workflow_.Bind(1, m.ns);
  delete_workflow_.Bind(2, m.id);
  return StepWriteLocked(&delete_workflow_, "deleting a workflow");
}

Status SqliteStore::ApplyLocked(const mutation::PutSchedule& m) {
  if (!m.schedule) return InvalidArgument("a PutSchedule mutation without a schedule");
  const std::string body = ScheduleDocument(*m.schedule);
  put_schedule_.Reset();
  put_schedule_.Bind(1, m.schedule->spec.ns);
  put_schedule_.Bind(2, m.schedule->spec.id);
  put_schedule_.Bind(3, body);
  return StepWriteLocked(&put_schedule_, "writing a schedule");
}

Status SqliteStore::ApplyLocked(const mutation::DeleteSchedule& m) {
  delete_schedule_.Reset();
  delete_schedule_.Bind(1, m.ns);
  delete_schedule_.Bind(2, m.id);
  return StepWriteLocked(&delete_schedule_, "deleting a schedule");
}

Status SqliteStore::ApplyLocked(const mutation::PutEvent& m) {
  if (!m.event) return InvalidArgument("a PutEvent mutation without an event");
  const Event& e = *m.event;
  const std::string task_ids = StringListDocument(e.tasks);
  put_event_.Reset();
  put_event_.Bind(1, e.ns);
  put_event_.Bind(2, e.id);
  put_event_.Bind(3, e.name);
  put_event_.Bind(4, e.payload);
  put_event_.Bind(5, e.created_at);
  put_event_.Bind(6, task_ids);
  return StepWriteLocked(&put_event_, "writing an event");
}

Status SqliteStore::ApplyLocked(const mutation::DeleteEventsBefore& m) {
  delete_events_.Reset();
  delete_events_.Bind(1, m.cutoff);
  return StepWriteLocked(&delete_events_, "deleting old events");
}

Status SqliteStore::ApplyLocked(const mutation::PutTrigger& m) {
  if (!m.trigger) return InvalidArgument("a PutTrigger mutation without a trigger");
  const std::string body = TriggerDocument(*m.trigger);
  put_trigger_.Reset();
  put_trigger_.Bind(1, m.trigger->spec.ns);
  put_trigger_.Bind(2, m.trigger->spec.id);
  put_trigger_.Bind(3, body);
  return StepWriteLocked(&put_trigger_, "writing a trigger");
}

Status SqliteStore::ApplyLocked(const mutation::DeleteTrigger& m) {
  delete_trigger_.Reset();
  delete_trigger_.Bind(1, m.ns);
  delete_trigger_.Bind(2, m.id);
  return StepWriteLocked(&delete_trigger_, "deleting a trigger");
}

Status SqliteStore::ApplyLocked(const mutation::PutQueue& m) {
  const std::string settings = QueueSettingsDocument(m.queue.settings);
  put_queue_.Reset();
  put_queue_.Bind(1, m.queue.ns);
  put_queue_.Bind(2, m.queue.name);
  put_queue_.Bind(3, settings);
  return StepWriteLocked(&put_queue_, "writing a queue");
}

Status SqliteStore::StepWriteLocked(Stmt* st, const char* what) {
  ResetOnExit reset(st);
  if (sqlite3_step(st->get()) == SQLITE_DONE) return Status::Ok();
  return Unavailable(std::string(what) + " ('" + sqlite3_sql(st->get()) + "') failed: " +
                     SqliteError(writer_));
}

Status SqliteStore::ReadAll(Stmt* st, const char* what,
                            const std::function<Status(sqlite3_stmt*)>& fn) {
  ResetOnExit reset(st);
  int rc;
  while ((rc = sqlite3_step(st->get())) == SQLITE_ROW) DRAY_RETURN_IF_ERROR(fn(st->get()));
  if (rc == SQLITE_DONE) return Status::Ok();
  return Unavailable(std::string(what) + " failed: " + SqliteError(reader_));
}

StatusOr<Task> SqliteStore::GetTask(const std::string& ns, const std::string& id) {
  MutexLock lock(&rmu_);
  ResetOnExit reset(&get_task_);
  get_task_.Bind(1, ns);
  get_task_.Bind(2, id);
  int rc = sqlite3_step(get_task_.get());
  if (rc == SQLITE_ROW) return ReadTask(get_task_.get());
  if (rc == SQLITE_DONE) return NotFound("no task '" + id + "' in namespace '" + ns + "'");
  return Unavailable("reading task '" + id + "': " + SqliteError(reader_));
}

StatusOr<TaskPage> SqliteStore::ListTasks(const TaskQuery& q) {
  const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 1000);
  unsigned shape = (q.queue.empty() ? 0u : kByQueue) | (q.state ? kByState : 0u) |
                   (q.type.empty() ? 0u : kByType) | (q.cursor.empty() ? 0u : kAfterCursor) |
                   (q.newest_first ? kNewestFirst : 0u);
  MutexLock lock(&rmu_);
  Stmt* st = &list_[shape];
  if (!st->prepared()) DRAY_RETURN_IF_ERROR(PrepareReader(st, ListSql(shape)));
  int i = 1;
  st->Bind(i++, q.ns);
  if (!q.queue.empty()) st->Bind(i++, q.queue);
  if (q.state) st->Bind(i++, static_cast<std::int64_t>(*q.state));
  if (!q.type.empty()) st->Bind(i++, q.type);
  if (!q.cursor.empty()) st->Bind(i++, q.cursor);
  st->Bind(i, static_cast<std::int64_t>(limit + 1));  // one more: is there a next page?
  TaskPage page;
  std::size_t bytes = 0;
  DRAY_RETURN_IF_ERROR(ReadAll(st, "listing tasks", [&](sqlite3_stmt* s) -> Status {
    if (!page.next_cursor.empty()) return Status::Ok();  // page full; drain the last row
    if (page.tasks.size() == limit || (q.max_bytes && bytes >= q.max_bytes)) {
      page.next_cursor = page.tasks.back().id;
      return Status::Ok();
    }
    auto t = ReadTask(s);
    if (!t.ok()) return t.status();
    bytes += t->payload.size() + t->result.size() + t->error.size();
    page.tasks.push_back(std::move(*t));
    return Status::Ok();
  }));
  return page;
}

// Rows are decoded on a second thread (store/scan_handoff.h).
Status SqliteStore::ScanLiveTasks(const std::function<void(Task&&)>& fn) {
  MutexLock lock(&rmu_);
  sqlite3_stmt* st = scan_live_.get();
  sqlite3* db = reader_;
  Status s = ScanOnTwoThreads(
      [st, db](TaskBatchSink& sink) -> Status {
        TaskReader reader;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
          auto t = reader.Read(st);
          if (!t.ok()) return t.status();
          sink.Add(std::move(*t));
        }
        if (rc != SQLITE_DONE) return Unavailable("scanning live tasks failed: " + SqliteError(db));
        return Status::Ok();
      },
      fn);
  sqlite3_reset(st);
  return s;
}

Status SqliteStore::ScanKeys(TimeMs since,
                             const std::function<void(const std::string&, const std::string&,
                                                      const std::string&, TimeMs)>& fn) {
  MutexLock lock(&rmu_);
  scan_keys_.Bind(1, since);
  return ReadAll(&scan_keys_, "scanning idempotency keys", [&](sqlite3_stmt* s) {
    fn(Text(s, 0), Text(s, 1), Text(s, 2), sqlite3_column_int64(s, 3));
    return Status::Ok();
  });
}

StatusOr<std::vector<QueueRecord>> SqliteStore::LoadQueues() {
  std::vector<QueueRecord> out;
  MutexLock lock(&rmu_);
  DRAY_RETURN_IF_ERROR(ReadAll(&load_queues_, "loading queues", [&](sqlite3_stmt* s) -> Status {
    QueueRecord q{Text(s, 0), Text(s, 1), QueueSettings{}};
    Status st = ReadQueueSettingsDocument(Text(s, 2), &q.settings);
    if (!st.ok()) return DataLoss("queue '" + q.name + "' in namespace '" + q.ns + "': " + st.message());
    out.push_back(std::move(q));
    return Status::Ok();
  }));
  return out;
}

StatusOr<StoreMarks> SqliteStore::LoadMarks() {
  StoreMarks m;
  MutexLock lock(&rmu_);
  DRAY_RETURN_IF_ERROR(ReadAll(&load_marks_, "loading marks", [&](sqlite3_stmt* s) {
    m.max_lease_token = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    m.max_seq = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1));
    return Status::Ok();
  }));
  return m;
}

StatusOr<std::vector<StateCount>> SqliteStore::CountTerminal() {
  std::vector<StateCount> out;
  MutexLock lock(&rmu_);
  DRAY_RETURN_IF_ERROR(ReadAll(&count_terminal_, "counting finished tasks", [&](sqlite3_stmt* s) {
    out.push_back(StateCount{Text(s, 0), Text(s, 1), static_cast<TaskState>(sqlite3_column_int(s, 2)),
                             sqlite3_column_int64(s, 3)});
    return Status::Ok();
  }));
  return out;
}

StatusOr<std::vector<ExpiredTask>> SqliteStore::FindExpired(TimeMs cutoff, std::size_t limit) {
  std::vector<ExpiredTask> out;
  if (limit == 0) return out;
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  MutexLock lock(&rmu_);
  find_expired_.Bind(1, cutoff);
  find_expired_.Bind(2, static_cast<std::int64_t>(std::min(limit, kMax)));
  DRAY_RETURN_IF_ERROR(ReadAll(&find_expired_, "finding expired tasks", [&](sqlite3_stmt* s) {
    int state = sqlite3_column_int(s, 3);
    if (state < 5 || state > 7) return DataLoss("task " + Text(s, 1) + " has unknown state");
    out.push_back(ExpiredTask{Text(s, 0), Text(s, 1), Text(s, 2), static_cast<TaskState>(state)});
    return Status::Ok();
  }));
  return out;
}

StatusOr<Workflow> SqliteStore::GetWorkflow(const std::string& ns, const std::string& id) {
  MutexLock lock(&rmu_);
  ResetOnExit reset(&get_workflow_);
  get_workflow_.Bind(1, ns);
  get_workflow_.Bind(2, id);
  int rc = sqlite3_step(get_workflow_.get());
  if (rc == SQLITE_ROW) return ReadWorkflow(get_workflow_.get());
  if (rc == SQLITE_DONE) return NotFound("no workflow '" + id + "' in namespace '" + ns + "'");
  return Unavailable("reading workflow '" + id + "': " + SqliteError(reader_));
}

StatusOr<WorkflowPage> SqliteStore::ListWorkflows(const WorkflowQuery& q) {
  const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 1000);
  std::string sql = std::string("SELECT ") + kWorkflowColumns + " FROM workflows" +
                    (q.state ? " INDEXED BY workflows_by_state" : "") + " WHERE ns = ?";
  if (q.state) sql += " AND state = ?";
  if (!q.name.empty()) sql += " AND name = ?";
  if (!q.cursor.empty()) sql += " AND id < ?";
  sql += " ORDER BY id DESC LIMIT ?";
  MutexLock lock(&rmu_);
  Stmt st;
  DRAY_RETURN_IF_ERROR(PrepareReader(&st, sql));
  int i = 1;
  st.Bind(i++, q.ns);
  if (q.state) st.Bind(i++, static_cast<std::int64_t>(*q.state));
  if (!q.name.empty()) st.Bind(i++, q.name);
  if (!q.cursor.empty()) st.Bind(i++, q.cursor);
  st.Bind(i, static_cast<std::int64_t>(limit + 1));
  WorkflowPage page;
  DRAY_RETURN_IF_ERROR(ReadAll(&st, "listing workflows", [&](sqlite3_stmt* s) -> Status {
    if (page.workflows.size() == limit) {
      page.next_cursor = page.workflows.back().id;
      return Status::Ok();
    }
    auto w = ReadWorkflow(s);
    if (!w.ok()) return w.status();
    page.workflows.push_back(std::move(*w));
    return Status::Ok();
  }));
  return page;
}

StatusOr<std::vector<Task>> SqliteStore::WorkflowTasks(const std::string& ns,
                                                       const std::string& id) {
  std::vector<Task> out;
  MutexLock lock(&rmu_);
  workflow_tasks_.Bind(1, ns);
  workflow_tasks_.Bind(2, id);
  TaskReader reader;
  DRAY_RETURN_IF_ERROR(ReadAll(&workflow_tasks_, "reading a workflow's tasks",
                               [&](sqlite3_stmt* s) -> Status {
                                 auto t = reader.Read(s);
                                 if (!t.ok()) return t.status();
                                 out.push_back(std::move(*t));
                                 return Status::Ok();
                               }));
  return out;
}

StatusOr<std::vector<Store::RunningWorkflow>> SqliteStore::LoadRunningWorkflows() {
  std::vector<RunningWorkflow> out;
  MutexLock lock(&rmu_);
  DRAY_RETURN_IF_ERROR(ReadAll(&running_workflows_, "loading running workflows",
                               [&](sqlite3_stmt* s) -> Status {
                                 auto w = ReadWorkflow(s);
                                 if (!w.ok()) return w.status();
                                 out.push_back(RunningWorkflow{std::move(*w),
                                                               sqlite3_column_int64(s, 10)});
                                 return Status::Ok();
                               }));
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> SqliteStore::FindExpiredWorkflows(
    TimeMs cutoff, std::size_t limit) {
  std::vector<std::pair<std::string, std::string>> out;
  if (limit == 0) return out;
  MutexLock lock(&rmu_);
  find_expired_workflows_.Bind(1, cutoff);
  find_expired_workflows_.Bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1 << 30)));
  DRAY_RETURN_IF_ERROR(ReadAll(&find_expired_workflows_, "finding expired workflows",
                               [&](sqlite3_stmt* s) {
                                 out.emplace_back(Text(s, 0), Text(s, 1));
                                 return Status::Ok();
                               }));
  return out;
}

StatusOr<std::vector<Schedule>> SqliteStore::LoadSchedules() {
  std::vector<Schedule> out;
  MutexLock lock(&rmu_);
  Stmt st;
  DRAY_RETURN_IF_ERROR(PrepareReader(&st, "SELECT ns, id, body FROM schedules ORDER BY ns, id"));
  DRAY_RETURN_IF_ERROR(ReadAll(&st, "loading schedules", [&](sqlite3_stmt* s) -> Status {
    auto schedule = ReadScheduleDocument(Text(s, 2));
    if (!schedule.ok()) {
      return DataLoss("schedule '" + Text(s, 1) + "' is unreadable: " +
                      schedule.status().message());
    }
    schedule->spec.ns = Text(s, 0);
    schedule->spec.task.ns = schedule->spec.ns;
    schedule->spec.id = Text(s, 1);
    out.push_back(std::move(*schedule));
    return Status::Ok();
  }));
  return out;
}

StatusOr<Event> SqliteStore::GetEvent(const std::string& ns, const std::string& id) {
  MutexLock lock(&rmu_);
  Stmt st;
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &st, "SELECT name, payload, created_at, tasks FROM events WHERE ns = ? AND id = ?"));
  st.Bind(1, ns);
  st.Bind(2, id);
  std::optional<Event> found;
  DRAY_RETURN_IF_ERROR(ReadAll(&st, "reading an event", [&](sqlite3_stmt* s) -> Status {
    Event e;
    e.ns = ns;
    e.id = id;
    e.name = Text(s, 0);
    e.payload = Text(s, 1);
    e.created_at = sqlite3_column_int64(s, 2);
    Status tasks = ReadStringListDocument(Text(s, 3), &e.tasks);
    if (!tasks.ok()) return DataLoss("event '" + id + "' has unreadable tasks: " + tasks.message());
    found = std::move(e);
    return Status::Ok();
  }));
  if (!found) return NotFound("no event '" + id + "' in namespace '" + ns + "'");
  return std::move(*found);
}

Status SqliteStore::ScanEventIds(
    TimeMs since, const std::function<void(const std::string&, const std::string&, TimeMs)>& fn) {
  MutexLock lock(&rmu_);
  Stmt st;
  DRAY_RETURN_IF_ERROR(PrepareReader(
      &st, "SELECT ns, id, created_at FROM events WHERE created_at >= ? ORDER BY created_at"));
  st.Bind(1, since);
  return ReadAll(&st, "scanning event ids", [&](sqlite3_stmt* s) {
    fn(Text(s, 0), Text(s, 1), sqlite3_column_int64(s, 2));
    return Status::Ok();
  });
}

StatusOr<bool> SqliteStore::HasEventsBefore(TimeMs cutoff) {
  MutexLock lock(&rmu_);
  Stmt st;
  DRAY_RETURN_IF_ERROR(
      PrepareReader(&st, "SELECT 1 FROM events WHERE created_at < ? LIMIT 1"));
  st.Bind(1, cutoff);
  bool any = false;
  DRAY_RETURN_IF_ERROR(ReadAll(&st, "looking for old events", [&](sqlite3_stmt*) {
    any = true;
    return Status::Ok();
  }));
  return any;
}

StatusOr<std::vector<Trigger>> SqliteStore::LoadTriggers() {
  std::vector<Trigger> out;
  MutexLock lock(&rmu_);
  Stmt st;
  DRAY_RETURN_IF_ERROR(PrepareReader(&st, "SELECT ns, id, body FROM triggers ORDER BY ns, id"));
  DRAY_RETURN_IF_ERROR(ReadAll(&st, "loading triggers", [&](sqlite3_stmt* s) -> Status {
    auto trigger = ReadTriggerDocument(Text(s, 2));
    if (!trigger.ok()) {
      return DataLoss("trigger '" + Text(s, 1) + "' is unreadable: " + trigger.status().message());
    }
    trigger->spec.ns = Text(s, 0);
    trigger->spec.task.ns = trigger->spec.ns;
    trigger->spec.id = Text(s, 1);
    out.push_back(std::move(*trigger));
    return Status::Ok();
  }));
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  auto store = std::make_unique<SqliteStore>();
  DRAY_RETURN_IF_ERROR(store->Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace dray
