#include "store/postgres/postgres_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "core/mutex.h"
#include "store/columns.h"
#include "store/documents.h"
#include "store/postgres/binary_copy.h"
#include "store/postgres/migrations.h"
#include "store/postgres/task_batches.h"
#include "store/scan_handoff.h"

namespace dray {
namespace {

// Statements sent in pipeline mode before the store stops to read their
// results: it never has more than this many answers unread, so neither side
// can fill its socket buffer while the other waits (libpq's docs, "Pipeline
// Mode", on deadlock).
constexpr std::size_t kPipelineWindow = 512;

// Tasks per multi-row statement (task_batches.h): bounds one statement's
// parameters (a few MB for large payloads) whatever the batch.
constexpr std::size_t kRowsPerStatement = 1000;

// Rows per FETCH when a scan reads through a cursor.
constexpr int kFetchRows = 8192;

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;

struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultCloser>;

// libpq's messages on one line: they end in a newline and some hold
// "\n\t" between sentences, which a log line or a JSON error should not.
std::string Trimmed(const char* text) {
  std::string out;
  for (const char* p = text ? text : ""; *p; ++p) {
    const bool space = *p == '\n' || *p == '\t' || *p == ' ';
    if (!space) {
      out += *p;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string ConnError(PGconn* c) { return Trimmed(PQerrorMessage(c)); }

// libpq's message with the SQLSTATE, which tells a serialization failure
// (40001) from a full disk (53100) from a lost connection (08...).
std::string ResultError(const PGresult* r) {
  std::string msg = Trimmed(PQresultErrorMessage(r));
  if (const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
    msg += std::string(" (SQLSTATE ") + state + ")";
  }
  return msg;
}

// The parameters of one statement, as text (libpq copies them when the
// statement is sent, so they need to live only until then).
class Params {
 public:
  Params& Text(std::string_view v) {
    values_.emplace_back(v);
    return *this;
  }
  Params& Int(std::int64_t v) {
    values_.push_back(std::to_string(v));
    return *this;
  }
  Params& Uint(std::uint64_t v) { return Int(static_cast<std::int64_t>(v)); }
  Params& Bool(bool v) {
    values_.emplace_back(v ? "t" : "f");
    return *this;
  }
  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() {
    pointers_.clear();
    for (const std::string& v : values_) pointers_.push_back(v.c_str());
    return pointers_.data();
  }

 private:
  std::vector<std::string> values_;
  std::vector<const char*> pointers_;
};

// Cell readers. Columns are NOT NULL, so a NULL is never expected.
std::string Cell(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}
std::string_view CellView(const PGresult* r, int row, int col) {
  return std::string_view(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}
std::int64_t IntCell(const PGresult* r, int row, int col, Status* status) {
  std::string_view v = CellView(r, row, col);
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size()) {
    if (status->ok()) {
      *status = DataLoss(std::string("column '") + PQfname(r, col) + "' holds '" + std::string(v) +
                         "', not an integer");
    }
  }
  return out;
}
bool BoolCell(const PGresult* r, int row, int col) { return CellView(r, row, col) == "t"; }

class ResultRow final : public Row {
 public:
  ResultRow(const PGresult* r, int row) : r_(r), row_(row) {}
  std::string_view Text(int col) const override { return CellView(r_, row_, col); }
  std::int64_t Int(int col, Status* status) const override { return IntCell(r_, row_, col, status); }
  bool Bool(int col) const override { return BoolCell(r_, row_, col); }

 private:
  const PGresult* r_;
  int row_;
};

// A task row selected with kColumns (store/columns.h). Keeps the last
// backoff document it decoded, as the SQLite store's reader does: a scan
// meets the same few values over and over.
class TaskReader {
 public:
  StatusOr<Task> Read(const PGresult* r, int row) { return Read(ResultRow(r, row)); }
  StatusOr<Task> Read(const Row& row) {
    Status st;
    Task t;
    t.ns = row.Text(0);
    t.id = row.Text(1);
    t.queue = row.Text(2);
    t.type = row.Text(3);
    t.payload = row.Text(4);
    t.priority = static_cast<int>(row.Int(5, &st));
    t.run_at = row.Int(6, &st);
    t.max_attempts = static_cast<int>(row.Int(7, &st));
    const std::string_view backoff = row.Text(8);
    if (st.ok()) {
      if (have_backoff_ && backoff == backoff_text_) {
        t.backoff = backoff_;
      } else {
        st = ReadBackoffDocument(backoff, &t.backoff);
        backoff_text_ = std::string(backoff);
        backoff_ = t.backoff;
        have_backoff_ = st.ok();
      }
    }
    t.timeout_ms = row.Int(9, &st);
    t.lease_ms = row.Int(10, &st);
    t.key = row.Text(11);
    if (st.ok() && row.Text(12) != "{}") st = ReadLabelsDocument(row.Text(12), &t.labels);
    const std::int64_t state = row.Int(13, &st);
    if (st.ok() && (state < static_cast<int>(TaskState::kScheduled) ||
                    state > static_cast<int>(TaskState::kCancelled))) {
      st = DataLoss("unknown state " + std::to_string(state));
    }
    t.state = static_cast<TaskState>(state);
    t.attempts = static_cast<int>(row.Int(14, &st));
    t.result = row.Text(15);
    t.error = row.Text(16);
    t.created_at = row.Int(17, &st);
    t.updated_at = row.Int(18, &st);
    t.finished_at = row.Int(19, &st);
    t.lease_token = static_cast<std::uint64_t>(row.Int(20, &st));
    t.lease_expires_at = row.Int(21, &st);
    t.worker = row.Text(22);
    t.cancel_requested = row.Bool(23);
    t.seq = static_cast<std::uint64_t>(row.Int(24, &st));
    if (st.ok() && row.Text(25) != "[]") st = ReadHistoryDocument(row.Text(25), &t.history);
    if (st.ok() && !row.Text(26).empty()) st = ReadFlowDocument(row.Text(26), &t);
    t.workflow = row.Text(27);
    if (!st.ok()) return DataLoss("task '" + t.id + "' in namespace '" + t.ns + "': " + st.message());
    return t;
  }

 private:
  bool have_backoff_ = false;
  std::string backoff_text_;
  Backoff backoff_;
};

StatusOr<Workflow> ReadWorkflow(const PGresult* r, int row) {
  Status st;
  Workflow w;
  w.ns = Cell(r, row, 0);
  w.id = Cell(r, row, 1);
  w.name = Cell(r, row, 2);
  const std::int64_t state = IntCell(r, row, 3, &st);
  const std::int64_t policy = IntCell(r, row, 4, &st);
  if (!st.ok() || state < 1 || state > 4 || policy < 0 || policy > 1) {
    return DataLoss("workflow '" + w.id + "' has an unknown state or policy");
  }
  w.state = static_cast<WorkflowState>(state);
  w.on_failure = static_cast<DepFailure>(policy);
  w.tasks = static_cast<int>(IntCell(r, row, 5, &st));
  w.cancel_requested = BoolCell(r, row, 6);
  w.created_at = IntCell(r, row, 7, &st);
  w.updated_at = IntCell(r, row, 8, &st);
  w.finished_at = IntCell(r, row, 9, &st);
  if (!st.ok()) return DataLoss("workflow '" + w.id + "': " + st.message());
  return w;
}

// A statement the store prepares on a session, by name.
struct Prepared {
  const char* name;
  std::string sql;
};

std::string Placeholders(int from, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += (i ? ", $" : "$") + std::to_string(from + i);
  return out;
}

// On a conflict, every column after ns and id takes the new value.
std::string PutTaskConflictSql() {
  std::string set;
  std::string_view cols = kColumns;
  std::size_t pos = 0;
  int index = 0;
  while (pos < cols.size()) {
    std::size_t comma = cols.find(',', pos);
    if (comma == std::string_view::npos) comma = cols.size();
    std::string_view col = cols.substr(pos, comma - pos);
    while (!col.empty() && col.front() == ' ') col.remove_prefix(1);
    if (index++ >= 2) {
      if (!set.empty()) set += ", ";
      set += std::string(col) + " = EXCLUDED." + std::string(col);
    }
    pos = comma + 1;
  }
  return " ON CONFLICT (ns, id) DO UPDATE SET " + set;
}

// The whole row; a row already there (same ns and id) is replaced.
std::string PutTaskSql() {
  return std::string("INSERT INTO tasks (") + kColumns + ") VALUES (" +
         Placeholders(1, kColumnCount) + ")" + PutTaskConflictSql();
}

// PutTaskSql for many tasks at once: one array per column (PutTaskArrays,
// in kColumns' order). Integers travel as bigint and are assigned to the
// integer and smallint columns as the single-row statement's are.
std::string PutTasksSql() {
  static constexpr std::array<const char*, kColumnCount> kTypes = {
      "text",   "text",   "text",   "text",   "text",   "bigint", "bigint", "bigint", "text",   "bigint",
      "bigint", "text",   "text",   "bigint", "bigint", "text",   "text",   "bigint", "bigint", "bigint",
      "bigint", "bigint", "text",   "bool",   "bigint", "text",   "text",   "text"};
  std::string args;
  for (int i = 0; i < kColumnCount; ++i) {
    args += (i ? ", $" : "$") + std::to_string(i + 1) + "::" + kTypes[static_cast<std::size_t>(i)] + "[]";
  }
  return std::string("INSERT INTO tasks (") + kColumns + ") SELECT * FROM unnest(" + args + ")" +
         PutTaskConflictSql();
}

// The columns a transition may change ($1..$12), by ns ($13) and id ($14).
constexpr const char* kUpdateTaskSql =
    "UPDATE tasks SET run_at = $1, state = $2, attempts = $3, result = $4, error = $5, "
    "updated_at = $6, finished_at = $7, lease_token = $8, lease_expires_at = $9, worker = $10, "
    "cancel_requested = $11, history = $12 WHERE ns = $13 AND id = $14";

// kUpdateTaskSql for many tasks at once (UpdateTaskArrays). Each task at
// most once (PlanStatements): an UPDATE ... FROM applies only one source
// row to a target row, so the count of rows updated is the count of tasks
// found.
constexpr const char* kUpdateTasksSql =
    "UPDATE tasks AS t SET run_at = u.run_at, state = u.state, attempts = u.attempts, "
    "result = u.result, error = u.error, updated_at = u.updated_at, finished_at = u.finished_at, "
    "lease_token = u.lease_token, lease_expires_at = u.lease_expires_at, worker = u.worker, "
    "cancel_requested = u.cancel_requested, history = u.history "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], "
    "$7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::bool[], $12::text[], $13::text[], "
    "$14::text[]) AS u(run_at, state, attempts, result, error, updated_at, finished_at, "
    "lease_token, lease_expires_at, worker, cancel_requested, history, ns, id) "
    "WHERE t.ns = u.ns AND t.id = u.id";

void TaskParams(const Task& t, Params* p) {
  p->Text(t.ns).Text(t.id).Text(t.queue).Text(t.type).Text(t.payload).Int(t.priority);
  p->Int(t.run_at).Int(t.max_attempts).Text(BackoffDocument(t.backoff)).Int(t.timeout_ms);
  p->Int(t.lease_ms).Text(t.key).Text(LabelsDocument(t.labels)).Int(static_cast<int>(t.state));
  p->Int(t.attempts).Text(t.result).Text(t.error).Int(t.created_at).Int(t.updated_at);
  p->Int(t.finished_at).Uint(t.lease_token).Int(t.lease_expires_at).Text(t.worker);
  p->Bool(t.cancel_requested).Uint(t.seq).Text(HistoryDocument(t.history)).Text(FlowDocument(t));
  p->Text(t.workflow);
}

void UpdateParams(const Task& t, Params* p) {
  p->Int(t.run_at).Int(static_cast<int>(t.state)).Int(t.attempts).Text(t.result).Text(t.error);
  p->Int(t.updated_at).Int(t.finished_at).Uint(t.lease_token).Int(t.lease_expires_at);
  p->Text(t.worker).Bool(t.cancel_requested).Text(HistoryDocument(t.history)).Text(t.ns).Text(t.id);
}

// The writer's statements, by name.
const std::vector<Prepared>& WriterStatements() {
  static const std::vector<Prepared> kAll = {
      {"put_task", PutTaskSql()},
      {"update_task", kUpdateTaskSql},
      {"put_tasks", PutTasksSql()},
      {"update_tasks", kUpdateTasksSql},
      {"delete_task", "DELETE FROM tasks WHERE ns = $1 AND id = $2"},
      {"put_queue",
       "INSERT INTO queues (ns, name, settings) VALUES ($1, $2, $3) "
       "ON CONFLICT (ns, name) DO UPDATE SET settings = EXCLUDED.settings"},
      {"put_workflow",
       std::string("INSERT INTO workflows (") + kWorkflowColumns + ") VALUES (" +
           Placeholders(1, 10) +
           ") ON CONFLICT (ns, id) DO UPDATE SET name = EXCLUDED.name, state = EXCLUDED.state, "
           "on_failure = EXCLUDED.on_failure, tasks = EXCLUDED.tasks, "
           "cancel_requested = EXCLUDED.cancel_requested, created_at = EXCLUDED.created_at, "
           "updated_at = EXCLUDED.updated_at, finished_at = EXCLUDED.finished_at"},
      {"delete_workflow", "DELETE FROM workflows WHERE ns = $1 AND id = $2"},
      {"put_schedule",
       "INSERT INTO schedules (ns, id, body) VALUES ($1, $2, $3) "
       "ON CONFLICT (ns, id) DO UPDATE SET body = EXCLUDED.body"},
      {"delete_schedule", "DELETE FROM schedules WHERE ns = $1 AND id = $2"},
      {"put_event",
       "INSERT INTO events (ns, id, name, payload, created_at, tasks) VALUES ($1, $2, $3, $4, $5, "
       "$6) ON CONFLICT (ns, id) DO UPDATE SET name = EXCLUDED.name, payload = EXCLUDED.payload, "
       "created_at = EXCLUDED.created_at, tasks = EXCLUDED.tasks"},
      {"delete_events",
       "DELETE FROM events WHERE (ns, id) IN (SELECT ns, id FROM events WHERE created_at < $1 "
       "ORDER BY created_at LIMIT 10000)"},
      {"put_trigger",
       "INSERT INTO triggers (ns, id, body) VALUES ($1, $2, $3) "
       "ON CONFLICT (ns, id) DO UPDATE SET body = EXCLUDED.body"},
      {"delete_trigger", "DELETE FROM triggers WHERE ns = $1 AND id = $2"},
      {"put_marks", "UPDATE marks SET max_lease_token = $1, max_seq = $2 WHERE id = 1"},
  };
  return kAll;
}

// ListTasks statements differ by which filters are present and the order;
// each of the 32 shapes is prepared on first use.
constexpr unsigned kByQueue = 1;
constexpr unsigned kByState = 2;
constexpr unsigned kByType = 4;
constexpr unsigned kAfterCursor = 8;
constexpr unsigned kNewestFirst = 16;
constexpr unsigned kListShapes = 32;

std::string ListSql(unsigned shape) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM tasks WHERE ns = $1";
  int n = 2;
  if (shape & kByQueue) sql += " AND queue = $" + std::to_string(n++);
  if (shape & kByState) sql += " AND state = $" + std::to_string(n++);
  if (shape & kByType) sql += " AND type = $" + std::to_string(n++);
  if (shape & kAfterCursor) {
    sql += ((shape & kNewestFirst) ? " AND id < $" : " AND id > $") + std::to_string(n++);
  }
  sql += (shape & kNewestFirst) ? " ORDER BY id DESC" : " ORDER BY id ASC";
  return sql + " LIMIT $" + std::to_string(n);
}

// One statement of a Commit, as sent: how many rows an update of tasks
// must find, so that an UpdateTask that found no row is known.
struct Sent {
  std::size_t update_rows;  // 0: not an update of tasks
};

class PostgresStore final : public Store {
 public:
  Status Open(const PostgresOptions& o);

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
  std::uint64_t round_trips() const override { return round_trips_.load(std::memory_order_relaxed); }

 private:
  void CountTrip(std::uint64_t n = 1) { round_trips_.fetch_add(n, std::memory_order_relaxed); }
  StatusOr<Conn> Connect(const char* role);
  Status Migrate(PGconn* c);
  Status CommitLocked(std::span<const Mutation> mutations, const StoreMarks& marks,
                      bool* slow_path) DRAY_REQUIRES(wmu_);
  Status ApplyOneLocked(const Mutation& m) DRAY_REQUIRES(wmu_);
  // Sends the statement that applies `m` (in pipeline mode or not: libpq's
  // send call is the same).
  bool SendMutationLocked(const Mutation& m) DRAY_REQUIRES(wmu_);
  bool SendPrepared(PGconn* c, const char* name, Params* p);
  // Sends a prepared statement whose parameters are all in binary format.
  bool SendBinaryPrepared(PGconn* c, const char* name, const std::vector<std::string>& values);
  void Break(const std::string& cause) DRAY_EXCLUDES(hmu_);

  // Runs a prepared reader statement to completion; the result holds every
  // row (for the bounded reads: pages, single rows, small tables).
  StatusOr<Result> Query(const char* what, const std::string& name, const std::string& sql,
                         Params* p) DRAY_REQUIRES(rmu_);
  StatusOr<Result> QueryOnce(const char* what, const std::string& name, const std::string& sql,
                             Params* p) DRAY_REQUIRES(rmu_);
  // Reads a query's rows through a cursor, kFetchRows at a time, calling
  // fn on each batch (the scans of recovery, which may be millions of rows).
  Status Scan(const char* what, const std::string& sql, Params* p,
              const std::function<Status(const PGresult*)>& fn) DRAY_REQUIRES(rmu_);
  Status ScanOnce(const char* what, const std::string& sql, Params* p,
                  const std::function<Status(const PGresult*)>& fn) DRAY_REQUIRES(rmu_);
  Status EnsureReaderLocked() DRAY_REQUIRES(rmu_);
  Status CopyLiveTasks(const std::function<void(Task&&)>& fn) DRAY_REQUIRES(rmu_);

  std::string conninfo_;
  std::string where_;  // host and database, for messages (never the password)

  Mutex wmu_;
  Conn writer_ DRAY_GUARDED_BY(wmu_);
  StoreMarks marks_ DRAY_GUARDED_BY(wmu_);  // as committed

  Mutex rmu_;
  Conn reader_ DRAY_GUARDED_BY(rmu_);
  std::array<bool, kListShapes> list_prepared_ DRAY_GUARDED_BY(rmu_) = {};
  std::vector<std::string> prepared_ DRAY_GUARDED_BY(rmu_);  // names prepared on reader_

  mutable Mutex hmu_;
  Status broken_ DRAY_GUARDED_BY(hmu_);
  std::atomic<std::uint64_t> round_trips_{0};
};

StatusOr<Conn> PostgresStore::Connect(const char* role) {
  Conn c(PQconnectdb(conninfo_.c_str()));
  if (!c) return Unavailable("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    return Unavailable(std::string("cannot connect the ") + role + " session to PostgreSQL: " +
                       ConnError(c.get()));
  }
  // A 2xx must mean committed and flushed, whatever the server's default.
  // Plans: PostgreSQL makes a prepared statement's generic plan once, after
  // its fifth run, from the table's statistics then, and keeps it. Made
  // while the table was small (or its statistics stale, as during a large
  // first load), it scanned a whole index for each row: 10,000 statements
  // took 4.7 s. A plan made for each run sees the table as it is and finds
  // the row by the primary key (migrations.cc says why only that index
  // leads with ns).
  const std::string setup = "SET synchronous_commit = on; SET application_name = 'dray'; "
                            "SET client_min_messages = warning; "
                            "SET plan_cache_mode = force_custom_plan";
  Result r(PQexec(c.get(), setup.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    return Unavailable(std::string("setting up the ") + role + " session: " + ResultError(r.get()));
  }
  return c;
}

Status PostgresStore::Open(const PostgresOptions& o) {
  conninfo_ = o.conninfo;
  {
    MutexLock lock(&wmu_);
    auto w = Connect("writer");
    if (!w.ok()) return w.status();
    writer_ = std::move(*w);
    where_ = std::string("PostgreSQL database '") + PQdb(writer_.get()) + "' at " +
             PQhost(writer_.get()) + ":" + PQport(writer_.get());
    DRAY_RETURN_IF_ERROR(Migrate(writer_.get()));
    for (const Prepared& st : WriterStatements()) {
      Result r(PQprepare(writer_.get(), st.name, st.sql.c_str(), 0, nullptr));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        return Internal(std::string("cannot prepare ") + st.name + ": " + ResultError(r.get()));
      }
    }
    Result m(PQexec(writer_.get(), "SELECT max_lease_token, max_seq FROM marks WHERE id = 1"));
    if (PQresultStatus(m.get()) != PGRES_TUPLES_OK || PQntuples(m.get()) != 1) {
      return Unavailable("cannot read the marks of " + where_ + ": " + ResultError(m.get()));
    }
    Status st;
    marks_.max_lease_token = static_cast<std::uint64_t>(IntCell(m.get(), 0, 0, &st));
    marks_.max_seq = static_cast<std::uint64_t>(IntCell(m.get(), 0, 1, &st));
    DRAY_RETURN_IF_ERROR(st);
  }
  MutexLock lock(&rmu_);
  return EnsureReaderLocked();
}

Status PostgresStore::Migrate(PGconn* c) {
  auto exec = [c](const std::string& sql, ExecStatusType want) -> StatusOr<Result> {
    Result r(PQexec(c, sql.c_str()));
    if (PQresultStatus(r.get()) != want) return Unavailable(ResultError(r.get()));
    return r;
  };
  auto run = [&]() -> Status {
    DRAY_RETURN_IF_ERROR(exec("BEGIN", PGRES_COMMAND_OK).status());
    // Held until COMMIT: a second node opening the same new database
    // waits here, then finds the schema at the version this one wrote.
    DRAY_RETURN_IF_ERROR(
        exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")",
             PGRES_TUPLES_OK)
            .status());
    DRAY_RETURN_IF_ERROR(
        exec("CREATE TABLE IF NOT EXISTS dray_schema (id integer PRIMARY KEY CHECK (id = 1), "
             "version integer NOT NULL)",
             PGRES_COMMAND_OK)
            .status());
    auto v = exec("SELECT version FROM dray_schema WHERE id = 1", PGRES_TUPLES_OK);
    if (!v.ok()) return v.status();
    int version = 0;
    if (PQntuples(v->get()) == 1) {
      Status st;
      version = static_cast<int>(IntCell(v->get(), 0, 0, &st));
      DRAY_RETURN_IF_ERROR(st);
    }
    auto migrations = PostgresMigrations();
    const int known = static_cast<int>(migrations.size());
    if (version > known) {
      return FailedPrecondition(where_ + " is at schema version " + std::to_string(version) +
                                " but this dray knows versions up to " + std::to_string(known) +
                                "; it was written by a newer dray");
    }
    for (int i = version; i < known; ++i) {
      auto r = exec(std::string(migrations[static_cast<std::size_t>(i)]), PGRES_COMMAND_OK);
      if (!r.ok()) {
        return Unavailable("migration " + std::to_string(i + 1) + " failed: " +
                           r.status().message());
      }
    }
    if (version != known) {
      DRAY_RETURN_IF_ERROR(exec("INSERT INTO dray_schema VALUES (1, " + std::to_string(known) +
                                    ") ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
                                PGRES_COMMAND_OK)
                               .status());
    }
    return exec("COMMIT", PGRES_COMMAND_OK).status();
  };
  Status s = run();
  if (!s.ok()) {
    PQclear(PQexec(c, "ROLLBACK"));
    if (s.code() == StatusCode::kFailedPrecondition) return s;
    return Unavailable("migrating " + where_ + ": " + s.message());
  }
  return Status::Ok();
}

Status PostgresStore::health() const {
  MutexLock h(&hmu_);
  return broken_;
}

void PostgresStore::Break(const std::string& cause) {
  MutexLock h(&hmu_);
  if (broken_.ok()) {
    broken_ = Unavailable("the store at " + where_ + " refuses writes until restart: " + cause);
  }
}

bool PostgresStore::SendPrepared(PGconn* c, const char* name, Params* p) {
  return PQsendQueryPrepared(c, name, p->size(), p->values(), nullptr, nullptr, 0) == 1;
}

bool PostgresStore::SendBinaryPrepared(PGconn* c, const char* name,
                                       const std::vector<std::string>& values) {
  std::vector<const char*> pointers;
  std::vector<int> lengths;
  for (const std::string& v : values) {
    pointers.push_back(v.data());
    lengths.push_back(static_cast<int>(v.size()));
  }
  const std::vector<int> formats(values.size(), 1);
  return PQsendQueryPrepared(c, name, static_cast<int>(values.size()), pointers.data(),
                             lengths.data(), formats.data(), 0) == 1;
}

bool PostgresStore::SendMutationLocked(const Mutation& m) {
  PGconn* c = writer_.get();
  Params p;
  return std::visit(
      Overloaded{
          [&](const mutation::PutTask& x) {
            TaskParams(*x.task, &p);
            return SendPrepared(c, "put_task", &p);
          },
          [&](const mutation::UpdateTask& x) {
            UpdateParams(*x.task, &p);
            return SendPrepared(c, "update_task", &p);
          },
          [&](const mutation::DeleteTask& x) {
            p.Text(x.ns).Text(x.id);
            return SendPrepared(c, "delete_task", &p);
          },
          [&](const mutation::PutQueue& x) {
            p.Text(x.queue.ns).Text(x.queue.name).Text(QueueSettingsDocument(x.queue.settings));
            return SendPrepared(c, "put_queue", &p);
          },
          [&](const mutation::PutWorkflow& x) {
            const Workflow& w = *x.workflow;
            p.Text(w.ns).Text(w.id).Text(w.name).Int(static_cast<int>(w.state));
            p.Int(static_cast<int>(w.on_failure)).Int(w.tasks).Bool(w.cancel_requested);
            p.Int(w.created_at).Int(w.updated_at).Int(w.finished_at);
            return SendPrepared(c, "put_workflow", &p);
          },
          [&](const mutation::DeleteWorkflow& x) {
            p.Text(x.ns).Text(x.id);
            return SendPrepared(c, "delete_workflow", &p);
          },
          [&](const mutation::PutSchedule& x) {
            p.Text(x.schedule->spec.ns).Text(x.schedule->spec.id).Text(ScheduleDocument(*x.schedule));
            return SendPrepared(c, "put_schedule", &p);
          },
          [&](const mutation::DeleteSchedule& x) {
            p.Text(x.ns).Text(x.id);
            return SendPrepared(c, "delete_schedule", &p);
          },
          [&](const mutation::PutEvent& x) {
            const Event& e = *x.event;
            p.Text(e.ns).Text(e.id).Text(e.name).Text(e.payload).Int(e.created_at);
            p.Text(StringListDocument(e.tasks));
            return SendPrepared(c, "put_event", &p);
          },
          [&](const mutation::DeleteEventsBefore& x) {
            p.Int(x.cutoff);
            return SendPrepared(c, "delete_events", &p);
          },
          [&](const mutation::PutTrigger& x) {
            p.Text(x.trigger->spec.ns).Text(x.trigger->spec.id).Text(TriggerDocument(*x.trigger));
            return SendPrepared(c, "put_trigger", &p);
          },
          [&](const mutation::DeleteTrigger& x) {
            p.Text(x.ns).Text(x.id);
            return SendPrepared(c, "delete_trigger", &p);
          },
      },
      m);
}

// Checks a mutation's record before anything is sent: a batch with a bad
// one is refused whole, as the SQLite store refuses it.
Status CheckRecord(const Mutation& m) {
  return std::visit(Overloaded{
                        [](const mutation::PutTask& x) {
                          return x.task ? Status::Ok() : InvalidArgument("a PutTask mutation without a task");
                        },
                        [](const mutation::UpdateTask& x) {
                          return x.task ? Status::Ok()
                                        : InvalidArgument("an UpdateTask mutation without a task");
                        },
                        [](const mutation::PutWorkflow& x) {
                          return x.workflow ? Status::Ok()
                                            : InvalidArgument("a PutWorkflow mutation without a workflow");
                        },
                        [](const mutation::PutSchedule& x) {
                          return x.schedule ? Status::Ok()
                                            : InvalidArgument("a PutSchedule mutation without a schedule");
                        },
                        [](const mutation::PutEvent& x) {
                          return x.event ? Status::Ok() : InvalidArgument("a PutEvent mutation without an event");
                        },
                        [](const mutation::PutTrigger& x) {
                          return x.trigger ? Status::Ok()
                                           : InvalidArgument("a PutTrigger mutation without a trigger");
                        },
                        [](const auto&) { return Status::Ok(); },
                    },
                    m);
}

// A batch is one transaction: BEGIN, the statements PlanStatements makes of
// its mutations (task writes many rows each, the rest one each) and the
// marks when they rise, sent in pipeline mode so that the whole batch costs
// one round trip (two with the COMMIT) up to 512 statements.
Status PostgresStore::Commit(std::span<const Mutation> mutations) {
  MutexLock lock(&wmu_);
  DRAY_RETURN_IF_ERROR(health());
  if (mutations.empty()) return Status::Ok();
  StoreMarks marks = marks_;
  for (const Mutation& m : mutations) {
    Status check = CheckRecord(m);
    if (!check.ok()) {
      Break("a commit of " + std::to_string(mutations.size()) + " mutations failed: " +
            check.message());
      return health();
    }
    if (const auto& t = TaskOf(m)) {
      marks.max_lease_token = std::max(marks.max_lease_token, t->lease_token);
      marks.max_seq = std::max(marks.max_seq, t->seq);
    }
  }
  bool slow_path = false;
  Status s = CommitLocked(mutations, marks, &slow_path);
  if (s.ok() && slow_path) {
    // An UpdateTask found no row: the batch is rolled back and applied again
    // one statement at a time, so that such a task is written whole at its
    // place in the batch, as the contract says.
    s = Status::Ok();
    PGconn* const writer = writer_.get();  // the lambda runs under wmu_, held here
    auto exec = [this, writer](const char* sql) -> Status {
      CountTrip();
      Result r(PQexec(writer, sql));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return Unavailable(ResultError(r.get()));
      return Status::Ok();
    };
    s = exec("BEGIN");
    for (std::size_t i = 0; s.ok() && i < mutations.size(); ++i) s = ApplyOneLocked(mutations[i]);
    if (s.ok()) {
      Params p;
      p.Uint(marks.max_lease_token).Uint(marks.max_seq);
      CountTrip();
      Result r(PQexecPrepared(writer_.get(), "put_marks", p.size(), p.values(), nullptr, nullptr, 0));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) s = Unavailable(ResultError(r.get()));
    }
    if (s.ok()) {
      CountTrip();
      Result r(PQexec(writer_.get(), "COMMIT"));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK ||
          std::strcmp(PQcmdStatus(r.get()), "COMMIT") != 0) {
        s = Unavailable("COMMIT failed: " + ResultError(r.get()));
      }
    } else if (PQtransactionStatus(writer_.get()) != PQTRANS_IDLE) {
      PQclear(PQexec(writer_.get(), "ROLLBACK"));
    }
  }
  if (!s.ok()) {
    Break("a commit of " + std::to_string(mutations.size()) + " mutations failed: " + s.message());
    return health();
  }
  marks_ = marks;
  return Status::Ok();
}

Status PostgresStore::ApplyOneLocked(const Mutation& m) {
  CountTrip();
  if (!SendMutationLocked(m)) return Unavailable(ConnError(writer_.get()));
  Status s;
  bool no_row = false;
  while (PGresult* raw = PQgetResult(writer_.get())) {
    Result r(raw);
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      if (s.ok()) s = Unavailable(ResultError(r.get()));
    } else if (std::holds_alternative<mutation::UpdateTask>(m) &&
               std::strcmp(PQcmdTuples(r.get()), "0") == 0) {
      no_row = true;
    }
  }
  if (!s.ok() || !no_row) return s;
  return ApplyOneLocked(mutation::PutTask{std::get<mutation::UpdateTask>(m).task});
}

Status PostgresStore::CommitLocked(std::span<const Mutation> mutations, const StoreMarks& marks,
                                   bool* slow_path) {
  PGconn* c = writer_.get();
  if (PQstatus(c) != CONNECTION_OK) {
    return Unavailable("the writer session to " + where_ + " is lost: " + ConnError(c));
  }
  if (PQenterPipelineMode(c) != 1) return Unavailable("cannot enter pipeline mode: " + ConnError(c));
  std::vector<Sent> sent;
  sent.reserve(mutations.size() + 2);
  std::size_t unread = 0;  // sent, result not read yet
  std::size_t next_result = 0;
  Status first_error;
  bool lost = false;

  // Reads the results of every statement sent so far.
  auto read_results = [&]() {
    while (unread > 0 && !lost) {
      PGresult* raw = PQgetResult(c);
      if (!raw) {
        lost = true;
        if (first_error.ok()) first_error = Unavailable("the connection was lost: " + ConnError(c));
        break;
      }
      Result r(raw);
      // Each statement's results end with a null.
      while (PGresult* extra = PQgetResult(c)) PQclear(extra);
      const Sent& what = sent[next_result++];
      --unread;
      const ExecStatusType st = PQresultStatus(r.get());
      if (st == PGRES_COMMAND_OK) {
        if (what.update_rows > 0) {
          const std::string_view n = PQcmdTuples(r.get());
          std::size_t found = 0;
          std::from_chars(n.data(), n.data() + n.size(), found);
          if (found < what.update_rows) *slow_path = true;
        }
      } else if (st != PGRES_PIPELINE_ABORTED && first_error.ok()) {
        first_error = Unavailable(ResultError(r.get()));
      }
    }
  };
  auto send = [&](bool ok, Sent what) {
    if (!ok) {
      lost = true;
      if (first_error.ok()) first_error = Unavailable("sending a statement failed: " + ConnError(c));
      return;
    }
    sent.push_back(what);
    if (++unread >= kPipelineWindow) {
      CountTrip();
      if (PQsendFlushRequest(c) != 1 || PQflush(c) != 0) {
        lost = true;
        if (first_error.ok()) first_error = Unavailable("flushing failed: " + ConnError(c));
        return;
      }
      read_results();
    }
  };

  send(PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1, {0});
  for (const PlannedStatement& st : PlanStatements(mutations, kRowsPerStatement)) {
    if (lost) break;
    switch (st.kind) {
      case PlannedStatement::Kind::kSingle: {
        const Mutation& m = mutations[st.mutations.front()];
        send(SendMutationLocked(m), {std::holds_alternative<mutation::UpdateTask>(m) ? 1u : 0u});
        break;
      }
      case PlannedStatement::Kind::kPutTasks:
        send(SendBinaryPrepared(c, "put_tasks", PutTaskArrays(mutations, st.mutations)), {0});
        break;
      case PlannedStatement::Kind::kUpdateTasks:
        send(SendBinaryPrepared(c, "update_tasks", UpdateTaskArrays(mutations, st.mutations)),
             {st.mutations.size()});
        break;
    }
  }
  if (!lost && (marks.max_lease_token != marks_.max_lease_token || marks.max_seq != marks_.max_seq)) {
    Params p;
    p.Uint(marks.max_lease_token).Uint(marks.max_seq);
    send(SendPrepared(c, "put_marks", &p), {0});
  }
  if (!lost) {
    CountTrip();
    if (PQpipelineSync(c) != 1) {
      lost = true;
      first_error = Unavailable("sync failed: " + ConnError(c));
    }
  }
  read_results();
  if (!lost) {
    PGresult* sync = PQgetResult(c);
    if (!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
      lost = true;
      if (first_error.ok()) first_error = Unavailable("no end of pipeline: " + ConnError(c));
    }
    PQclear(sync);
  }
  if (lost) return first_error;  // the session is unusable; the store breaks
  if (PQexitPipelineMode(c) != 1) return Unavailable("cannot leave pipeline mode: " + ConnError(c));
  if (!first_error.ok() || *slow_path) {
    CountTrip();
    PQclear(PQexec(c, "ROLLBACK"));
    return first_error;
  }
  // Until this answers, whether the batch is durable is unknown; a lost
  // connection here breaks the store (as a failed fsync does on SQLite),
  // and the state is read back from the database at the next start.
  CountTrip();
  Result r(PQexec(c, "COMMIT"));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK || std::strcmp(PQcmdStatus(r.get()), "COMMIT") != 0) {
    return Unavailable("COMMIT failed, the batch may or may not be durable: " +
                       (r ? ResultError(r.get()) : ConnError(c)));
  }
  return Status::Ok();
}

Status PostgresStore::EnsureReaderLocked() {
  if (reader_ && PQstatus(reader_.get()) == CONNECTION_OK) return Status::Ok();
  auto r = Connect("reader");
  if (!r.ok()) return r.status();
  reader_ = std::move(*r);
  list_prepared_ = {};
  prepared_.clear();
  return Status::Ok();
}

StatusOr<Result> PostgresStore::QueryOnce(const char* what, const std::string& name,
                                          const std::string& sql, Params* p) {
  DRAY_RETURN_IF_ERROR(EnsureReaderLocked());
  PGconn* c = reader_.get();
  if (std::find(prepared_.begin(), prepared_.end(), name) == prepared_.end()) {
    Result r(PQprepare(c, name.c_str(), sql.c_str(), 0, nullptr));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      return Unavailable(std::string(what) + ": cannot prepare: " + ResultError(r.get()));
    }
    prepared_.push_back(name);
  }
  CountTrip();
  Result r(PQexecPrepared(c, name.c_str(), p->size(), p->values(), nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return Unavailable(std::string(what) + " failed: " + ResultError(r.get()));
  }
  return r;
}

StatusOr<Result> PostgresStore::Query(const char* what, const std::string& name,
                                      const std::string& sql, Params* p) {
  auto r = QueryOnce(what, name, sql, p);
  // A session lost since the last read (a PostgreSQL restart, a failover)
  // shows only when used: a read is safe to run again, on a new session.
  if (!r.ok() && reader_ && PQstatus(reader_.get()) == CONNECTION_BAD) {
    r = QueryOnce(what, name, sql, p);
  }
  return r;
}

Status PostgresStore::ScanOnce(const char* what, const std::string& sql, Params* p,
                               const std::function<Status(const PGresult*)>& fn) {
  DRAY_RETURN_IF_ERROR(EnsureReaderLocked());
  PGconn* c = reader_.get();
  auto command = [&](const char* text, Params* params) -> StatusOr<Result> {
    CountTrip();
    Result r(params ? PQexecParams(c, text, params->size(), nullptr, params->values(), nullptr,
                                   nullptr, 0)
                    : PQexec(c, text));
    const ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return Unavailable(std::string(what) + " failed: " + ResultError(r.get()));
    }
    return r;
  };
  auto run = [&]() -> Status {
    // One snapshot for the whole scan, as SQLite's read transaction gives.
    DRAY_RETURN_IF_ERROR(command("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", nullptr).status());
    const std::string declare = "DECLARE dray_scan NO SCROLL CURSOR FOR " + sql;
    DRAY_RETURN_IF_ERROR(command(declare.c_str(), p).status());
    const std::string fetch = "FETCH FORWARD " + std::to_string(kFetchRows) + " FROM dray_scan";
    for (;;) {
      auto r = command(fetch.c_str(), nullptr);
      if (!r.ok()) return r.status();
      if (PQntuples(r->get()) == 0) break;
      DRAY_RETURN_IF_ERROR(fn(r->get()));
    }
    return command("COMMIT", nullptr).status();
  };
  Status s = run();
  if (!s.ok() && PQtransactionStatus(c) != PQTRANS_IDLE) PQclear(PQexec(c, "ROLLBACK"));
  return s;
}

Status PostgresStore::Scan(const char* what, const std::string& sql, Params* p,
                           const std::function<Status(const PGresult*)>& fn) {
  bool called = false;
  auto counting = [&](const PGresult* r) {
    called = true;
    return fn(r);
  };
  Status s = ScanOnce(what, sql, p, counting);
  // Run again on a new session only if the lost one had handed nothing over.
  if (!s.ok() && !called && reader_ && PQstatus(reader_.get()) == CONNECTION_BAD) {
    s = ScanOnce(what, sql, p, counting);
  }
  return s;
}

StatusOr<Task> PostgresStore::GetTask(const std::string& ns, const std::string& id) {
  MutexLock lock(&rmu_);
  Params p;
  p.Text(ns).Text(id);
  auto r = Query("reading a task", "get_task",
                 std::string("SELECT ") + kColumns + " FROM tasks WHERE ns = $1 AND id = $2", &p);
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return NotFound("no task '" + id + "' in namespace '" + ns + "'");
  return TaskReader().Read(r->get(), 0);
}

StatusOr<TaskPage> PostgresStore::ListTasks(const TaskQuery& q) {
  const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 1000);
  const unsigned shape = (q.queue.empty() ? 0u : kByQueue) | (q.state ? kByState : 0u) |
                         (q.type.empty() ? 0u : kByType) | (q.cursor.empty() ? 0u : kAfterCursor) |
                         (q.newest_first ? kNewestFirst : 0u);
  Params p;
  p.Text(q.ns);
  if (!q.queue.empty()) p.Text(q.queue);
  if (q.state) p.Int(static_cast<int>(*q.state));
  if (!q.type.empty()) p.Text(q.type);
  if (!q.cursor.empty()) p.Text(q.cursor);
  p.Uint(limit + 1);  // one more: is there a next page?
  MutexLock lock(&rmu_);
  auto r = Query("listing tasks", "list_" + std::to_string(shape), ListSql(shape), &p);
  if (!r.ok()) return r.status();
  TaskPage page;
  std::size_t bytes = 0;
  TaskReader reader;
  const int rows = PQntuples(r->get());
  for (int i = 0; i < rows; ++i) {
    if (page.tasks.size() == limit || (q.max_bytes && bytes >= q.max_bytes)) {
      page.next_cursor = page.tasks.back().id;
      break;
    }
    auto t = reader.Read(r->get(), i);
    if (!t.ok()) return t.status();
    bytes += t->payload.size() + t->result.size() + t->error.size();
    page.tasks.push_back(std::move(*t));
  }
  return page;
}

// A binary COPY of the live rows, one statement (so one snapshot), decoded
// on a second thread while this one hands tasks to the engine
// (store/scan_handoff.h). Rows arrive as PostgreSQL makes them: text
// through a cursor was three times slower, most of it the server's output
// functions and libpq's result sets.
Status PostgresStore::ScanLiveTasks(const std::function<void(Task&&)>& fn) {
  MutexLock lock(&rmu_);
  bool called = false;
  auto counting = [&](Task&& t) {
    called = true;
    fn(std::move(t));
  };
  Status s = CopyLiveTasks(counting);
  // Again on a new session only if the lost one had handed nothing over.
  if (!s.ok() && !called && reader_ && PQstatus(reader_.get()) == CONNECTION_BAD) {
    s = CopyLiveTasks(counting);
  }
  return s;
}

Status PostgresStore::CopyLiveTasks(const std::function<void(Task&&)>& fn) {
  DRAY_RETURN_IF_ERROR(EnsureReaderLocked());
  PGconn* c = reader_.get();
  CountTrip();
  const std::string sql = std::string("COPY (SELECT ") + kColumns +
                          " FROM tasks WHERE state < 5) TO STDOUT (FORMAT binary)";
  Result started(PQexec(c, sql.c_str()));
  if (PQresultStatus(started.get()) != PGRES_COPY_OUT) {
    return Unavailable("scanning live tasks failed: " + ResultError(started.get()));
  }
  return ScanOnTwoThreads(
      [c](TaskBatchSink& sink) -> Status {
        TaskReader reader;
        BinaryCopyParser parser;
        Status st;
        auto on_row = [&](const Row& row) -> Status {
          auto t = reader.Read(row);
          if (!t.ok()) return t.status();
          sink.Add(std::move(*t));
          return Status::Ok();
        };
        for (;;) {
          char* chunk = nullptr;
          const int n = PQgetCopyData(c, &chunk, 0);
          if (n == -1) break;  // the COPY is over
          if (n < 0) {
            if (st.ok()) st = Unavailable("scanning live tasks failed: " + ConnError(c));
            break;
          }
          // After an error, read on to the end, so the session stays usable.
          if (st.ok()) st = parser.Feed(std::string_view(chunk, static_cast<std::size_t>(n)), on_row);
          PQfreemem(chunk);
        }
        while (PGresult* end = PQgetResult(c)) {
          if (PQresultStatus(end) != PGRES_COMMAND_OK && st.ok()) {
            st = Unavailable("scanning live tasks failed: " + ResultError(end));
          }
          PQclear(end);
        }
        if (st.ok() && !parser.finished()) st = DataLoss("the COPY of live tasks ended early");
        return st;
      },
      fn);
}

Status PostgresStore::ScanKeys(TimeMs since,
                               const std::function<void(const std::string&, const std::string&,
                                                        const std::string&, TimeMs)>& fn) {
  MutexLock lock(&rmu_);
  Params p;
  p.Int(since);
  return Scan("scanning idempotency keys",
              "SELECT ns, key, id, created_at FROM tasks WHERE key <> '' AND created_at >= $1 "
              "ORDER BY created_at",
              &p, [&](const PGresult* r) -> Status {
                Status st;
                for (int i = 0; i < PQntuples(r); ++i) {
                  const TimeMs at = IntCell(r, i, 3, &st);
                  DRAY_RETURN_IF_ERROR(st);
                  fn(Cell(r, i, 0), Cell(r, i, 1), Cell(r, i, 2), at);
                }
                return Status::Ok();
              });
}

StatusOr<std::vector<QueueRecord>> PostgresStore::LoadQueues() {
  MutexLock lock(&rmu_);
  Params p;
  auto r = Query("loading queues", "load_queues",
                 "SELECT ns, name, settings FROM queues ORDER BY ns, name", &p);
  if (!r.ok()) return r.status();
  std::vector<QueueRecord> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    QueueRecord q{Cell(r->get(), i, 0), Cell(r->get(), i, 1), QueueSettings{}};
    Status st = ReadQueueSettingsDocument(CellView(r->get(), i, 2), &q.settings);
    if (!st.ok()) return DataLoss("queue '" + q.name + "' in namespace '" + q.ns + "': " + st.message());
    out.push_back(std::move(q));
  }
  return out;
}

StatusOr<StoreMarks> PostgresStore::LoadMarks() {
  MutexLock lock(&rmu_);
  Params p;
  auto r = Query("loading marks", "load_marks",
                 "SELECT max_lease_token, max_seq FROM marks WHERE id = 1", &p);
  if (!r.ok()) return r.status();
  StoreMarks m;
  Status st;
  if (PQntuples(r->get()) == 1) {
    m.max_lease_token = static_cast<std::uint64_t>(IntCell(r->get(), 0, 0, &st));
    m.max_seq = static_cast<std::uint64_t>(IntCell(r->get(), 0, 1, &st));
  }
  DRAY_RETURN_IF_ERROR(st);
  return m;
}

StatusOr<std::vector<StateCount>> PostgresStore::CountTerminal() {
  MutexLock lock(&rmu_);
  Params p;
  auto r = Query("counting finished tasks", "count_terminal",
                 "SELECT ns, queue, state, COUNT(*) FROM tasks WHERE state >= 5 "
                 "GROUP BY ns, queue, state",
                 &p);
  if (!r.ok()) return r.status();
  std::vector<StateCount> out;
  Status st;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    const auto state = static_cast<TaskState>(IntCell(r->get(), i, 2, &st));
    out.push_back(StateCount{Cell(r->get(), i, 0), Cell(r->get(), i, 1), state,
                             IntCell(r->get(), i, 3, &st)});
  }
  DRAY_RETURN_IF_ERROR(st);
  return out;
}

StatusOr<std::vector<ExpiredTask>> PostgresStore::FindExpired(TimeMs cutoff, std::size_t limit) {
  std::vector<ExpiredTask> out;
  if (limit == 0) return out;
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  MutexLock lock(&rmu_);
  Params p;
  p.Int(cutoff).Uint(std::min(limit, kMax));
  auto r = Query("finding expired tasks", "find_expired",
                 "SELECT ns, id, queue, state FROM tasks WHERE finished_at > 0 AND finished_at < $1 "
                 "AND state >= 5 AND workflow = '' ORDER BY finished_at, ns, id LIMIT $2",
                 &p);
  if (!r.ok()) return r.status();
  Status st;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    const std::int64_t state = IntCell(r->get(), i, 3, &st);
    if (!st.ok() || state < 5 || state > 7) {
      return DataLoss("task " + Cell(r->get(), i, 1) + " has unknown state");
    }
    out.push_back(ExpiredTask{Cell(r->get(), i, 0), Cell(r->get(), i, 1), Cell(r->get(), i, 2),
                              static_cast<TaskState>(state)});
  }
  return out;
}

StatusOr<Workflow> PostgresStore::GetWorkflow(const std::string& ns, const std::string& id) {
  MutexLock lock(&rmu_);
  Params p;
  p.Text(ns).Text(id);
  auto r = Query("reading a workflow", "get_workflow",
                 std::string("SELECT ") + kWorkflowColumns + " FROM workflows WHERE ns = $1 AND id = $2",
                 &p);
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return NotFound("no workflow '" + id + "' in namespace '" + ns + "'");
  return ReadWorkflow(r->get(), 0);
}

StatusOr<WorkflowPage> PostgresStore::ListWorkflows(const WorkflowQuery& q) {
  const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 1000);
  std::string sql = std::string("SELECT ") + kWorkflowColumns + " FROM workflows WHERE ns = $1";
  Params p;
  p.Text(q.ns);
  int n = 2;
  unsigned shape = 0;
  if (q.state) {
    sql += " AND state = $" + std::to_string(n++);
    p.Int(static_cast<int>(*q.state));
    shape |= 1;
  }
  if (!q.name.empty()) {
    sql += " AND name = $" + std::to_string(n++);
    p.Text(q.name);
    shape |= 2;
  }
  if (!q.cursor.empty()) {
    sql += " AND id < $" + std::to_string(n++);
    p.Text(q.cursor);
    shape |= 4;
  }
  sql += " ORDER BY id DESC LIMIT $" + std::to_string(n);
  p.Uint(limit + 1);
  MutexLock lock(&rmu_);
  auto r = Query("listing workflows", "list_workflows_" + std::to_string(shape), sql, &p);
  if (!r.ok()) return r.status();
  WorkflowPage page;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    if (page.workflows.size() == limit) {
      page.next_cursor = page.workflows.back().id;
      break;
    }
    auto w = ReadWorkflow(r->get(), i);
    if (!w.ok()) return w.status();
    page.workflows.push_back(std::move(*w));
  }
  return page;
}

StatusOr<std::vector<Task>> PostgresStore::WorkflowTasks(const std::string& ns,
                                                         const std::string& id) {
  MutexLock lock(&rmu_);
  Params p;
  p.Text(ns).Text(id);
  auto r = Query("reading a workflow's tasks", "workflow_tasks",
                 std::string("SELECT ") + kColumns +
                     " FROM tasks WHERE ns = $1 AND workflow = $2 AND workflow <> '' ORDER BY seq",
                 &p);
  if (!r.ok()) return r.status();
  std::vector<Task> out;
  TaskReader reader;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    auto t = reader.Read(r->get(), i);
    if (!t.ok()) return t.status();
    out.push_back(std::move(*t));
  }
  return out;
}

StatusOr<std::vector<Store::RunningWorkflow>> PostgresStore::LoadRunningWorkflows() {
  MutexLock lock(&rmu_);
  Params p;
  auto r = Query("loading running workflows", "running_workflows",
                 "SELECT " + std::string(kWorkflowColumns) +
                     ", (SELECT COUNT(*) FROM tasks t WHERE t.ns = w.ns AND t.workflow = w.id AND "
                     "t.workflow <> '' AND t.state IN (6, 7)) FROM workflows w WHERE state = 1",
                 &p);
  if (!r.ok()) return r.status();
  std::vector<RunningWorkflow> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    auto w = ReadWorkflow(r->get(), i);
    if (!w.ok()) return w.status();
    Status st;
    const std::int64_t failed = IntCell(r->get(), i, 10, &st);
    DRAY_RETURN_IF_ERROR(st);
    out.push_back(RunningWorkflow{std::move(*w), failed});
  }
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> PostgresStore::FindExpiredWorkflows(
    TimeMs cutoff, std::size_t limit) {
  std::vector<std::pair<std::string, std::string>> out;
  if (limit == 0) return out;
  MutexLock lock(&rmu_);
  Params p;
  p.Int(cutoff).Uint(std::min<std::size_t>(limit, 1 << 30));
  auto r = Query("finding expired workflows", "find_expired_workflows",
                 "SELECT ns, id FROM workflows WHERE state >= 2 AND finished_at < $1 "
                 "ORDER BY finished_at LIMIT $2",
                 &p);
  if (!r.ok()) return r.status();
  for (int i = 0; i < PQntuples(r->get()); ++i) out.emplace_back(Cell(r->get(), i, 0), Cell(r->get(), i, 1));
  return out;
}

StatusOr<std::vector<Schedule>> PostgresStore::LoadSchedules() {
  MutexLock lock(&rmu_);
  Params p;
  auto r = Query("loading schedules", "load_schedules",
                 "SELECT ns, id, body FROM schedules ORDER BY ns, id", &p);
  if (!r.ok()) return r.status();
  std::vector<Schedule> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    auto schedule = ReadScheduleDocument(CellView(r->get(), i, 2));
    if (!schedule.ok()) {
      return DataLoss("schedule '" + Cell(r->get(), i, 1) + "' is unreadable: " +
                      schedule.status().message());
    }
    schedule->spec.ns = Cell(r->get(), i, 0);
    schedule->spec.task.ns = schedule->spec.ns;
    schedule->spec.id = Cell(r->get(), i, 1);
    out.push_back(std::move(*schedule));
  }
  return out;
}

StatusOr<Event> PostgresStore::GetEvent(const std::string& ns, const std::string& id) {
  MutexLock lock(&rmu_);
  Params p;
  p.Text(ns).Text(id);
  auto r = Query("reading an event", "get_event",
                 "SELECT name, payload, created_at, tasks FROM events WHERE ns = $1 AND id = $2", &p);
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return NotFound("no event '" + id + "' in namespace '" + ns + "'");
  Event e;
  e.ns = ns;
  e.id = id;
  e.name = Cell(r->get(), 0, 0);
  e.payload = Cell(r->get(), 0, 1);
  Status st;
  e.created_at = IntCell(r->get(), 0, 2, &st);
  if (st.ok()) st = ReadStringListDocument(CellView(r->get(), 0, 3), &e.tasks);
  if (!st.ok()) return DataLoss("event '" + id + "' is unreadable: " + st.message());
  return e;
}

Status PostgresStore::ScanEventIds(
    TimeMs since, const std::function<void(const std::string&, const std::string&, TimeMs)>& fn) {
  MutexLock lock(&rmu_);
  Params p;
  p.Int(since);
  return Scan("scanning event ids",
              "SELECT ns, id, created_at FROM events WHERE created_at >= $1 ORDER BY created_at", &p,
              [&](const PGresult* r) -> Status {
                Status st;
                for (int i = 0; i < PQntuples(r); ++i) {
                  const TimeMs at = IntCell(r, i, 2, &st);
                  DRAY_RETURN_IF_ERROR(st);
                  fn(Cell(r, i, 0), Cell(r, i, 1), at);
                }
                return Status::Ok();
              });
}

StatusOr<bool> PostgresStore::HasEventsBefore(TimeMs cutoff) {
  MutexLock lock(&rmu_);
  Params p;
  p.Int(cutoff);
  auto r = Query("looking for old events", "has_events_before",
                 "SELECT 1 FROM events WHERE created_at < $1 LIMIT 1", &p);
  if (!r.ok()) return r.status();
  return PQntuples(r->get()) > 0;
}

StatusOr<std::vector<Trigger>> PostgresStore::LoadTriggers() {
  MutexLock lock(&rmu_);
  Params p;
  auto r = Query("loading triggers", "load_triggers",
                 "SELECT ns, id, body FROM triggers ORDER BY ns, id", &p);
  if (!r.ok()) return r.status();
  std::vector<Trigger> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    auto trigger = ReadTriggerDocument(CellView(r->get(), i, 2));
    if (!trigger.ok()) {
      return DataLoss("trigger '" + Cell(r->get(), i, 1) + "' is unreadable: " +
                      trigger.status().message());
    }
    trigger->spec.ns = Cell(r->get(), i, 0);
    trigger->spec.task.ns = trigger->spec.ns;
    trigger->spec.id = Cell(r->get(), i, 1);
    out.push_back(std::move(*trigger));
  }
  return out;
}

}  // namespace

bool IsPostgresLocation(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}

std::string DescribePostgresLocation(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (!options) {
    PQfreemem(error);
    return "PostgreSQL (an unreadable connection string)";
  }
  std::string host, port, db;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    if (std::strcmp(o->keyword, "host") == 0 || (host.empty() && std::strcmp(o->keyword, "hostaddr") == 0)) host = o->val;
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
    if (std::strcmp(o->keyword, "dbname") == 0) db = o->val;
  }
  PQconninfoFree(options);
  std::string out = "PostgreSQL database '" + (db.empty() ? std::string("(default)") : db) + "' at " +
                    (host.empty() ? std::string("the default host") : host);
  if (!port.empty()) out += ":" + port;
  return out;
}

Status ProbePostgres(const std::string& conninfo) {
  Conn c(PQconnectdb(conninfo.c_str()));
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    return Unavailable("cannot connect: " + (c ? ConnError(c.get()) : std::string("out of memory")));
  }
  Result r(PQexec(c.get(), "SELECT pg_is_in_recovery()"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    return Unavailable("cannot query: " + ResultError(r.get()));
  }
  if (CellView(r.get(), 0, 0) == "t") return Unavailable("the server is a standby (read-only)");
  return Status::Ok();
}

StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& options) {
  auto store = std::make_unique<PostgresStore>();
  DRAY_RETURN_IF_ERROR(store->Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace dray
