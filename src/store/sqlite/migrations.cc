#include "store/sqlite/migrations.h"

#include <sqlite3.h>

#include <array>
#include <boost/json.hpp>
#include <string>
#include <vector>

#include "core/json_codec.h"
#include "store/documents.h"

namespace dray {

namespace {

namespace json = boost::json;

constexpr std::string_view kV1 = R"sql(
CREATE TABLE tasks (
  ns               TEXT    NOT NULL,
  id               TEXT    NOT NULL,
  queue            TEXT    NOT NULL,
  type             TEXT    NOT NULL,
  payload          TEXT    NOT NULL,
  priority         INTEGER NOT NULL,
  run_at           INTEGER NOT NULL,
  max_attempts     INTEGER NOT NULL,
  backoff          TEXT    NOT NULL,
  timeout_ms       INTEGER NOT NULL,
  lease_ms         INTEGER NOT NULL,
  key              TEXT    NOT NULL,
  labels           TEXT    NOT NULL,
  state            INTEGER NOT NULL,
  attempts         INTEGER NOT NULL,
  result           TEXT    NOT NULL,
  error            TEXT    NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER NOT NULL,
  lease_token      INTEGER NOT NULL,
  lease_expires_at INTEGER NOT NULL,
  worker           TEXT    NOT NULL,
  cancel_requested INTEGER NOT NULL,
  seq              INTEGER NOT NULL,
  history          TEXT    NOT NULL,
  PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE INDEX tasks_live ON tasks (seq) WHERE state < 5;
CREATE INDEX tasks_by_queue ON tasks (ns, queue, id);
CREATE INDEX tasks_by_state ON tasks (ns, state, id);
CREATE INDEX tasks_by_key ON tasks (ns, key, created_at) WHERE key <> '';
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE state >= 5;
CREATE TABLE queues (
  ns       TEXT NOT NULL,
  name     TEXT NOT NULL,
  settings TEXT NOT NULL,
  PRIMARY KEY (ns, name)
) WITHOUT ROWID;
)sql";

// Listing "the failed tasks of queue q" (the dashboard's common filter) walks
// only matching rows, already in id order.
constexpr std::string_view kV2 = R"sql(
CREATE INDEX tasks_by_queue_state ON tasks (ns, queue, state, id);
)sql";

// Fewer index writes per transition. A lease or an ack changes a task's
// state, and SQLite rewrites every index whose columns (or partial-index
// condition) the UPDATE sets. tasks_live and tasks_finished were partial on
// state, so each transition rewrote both; now:
// - tasks_by_state leads with state, so recovery's "state < 5" is a range of
//   it and listing by (ns, state) still an equality prefix;
// - tasks_finished covers every row (live ones at finished_at = 0), and a
//   transition that does not finish a task does not set finished_at, so it
//   leaves this index alone.
// And the high-water marks recovery needs (largest lease token and seq ever
// written) move to a one-row table raised by each commit that passes them,
// where they were a scan of every task at start.
constexpr std::string_view kV3 = R"sql(
DROP INDEX tasks_live;
DROP INDEX tasks_finished;
DROP INDEX tasks_by_state;
CREATE INDEX tasks_by_state ON tasks (state, ns, id);
CREATE INDEX tasks_finished ON tasks (finished_at);
CREATE TABLE marks (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  max_lease_token INTEGER NOT NULL,
  max_seq         INTEGER NOT NULL
);
INSERT INTO marks
  SELECT 1, COALESCE(MAX(lease_token), 0), COALESCE(MAX(seq), 0) FROM tasks;
)sql";

// Flow control: a task's concurrency key and limit (and, as they come, its
// other flow fields) in one JSON column, '' when it has none. Adding a
// column with a constant default rewrites no row.
constexpr std::string_view kV4 = R"sql(
ALTER TABLE tasks ADD COLUMN flow TEXT NOT NULL DEFAULT '';
)sql";

// Workflows: a row per workflow, and its tasks found by an index on the
// task's workflow id (partial: plain tasks are not in it, and a transition,
// which never sets the column, does not touch it).
constexpr std::string_view kV5 = R"sql(
ALTER TABLE tasks ADD COLUMN workflow TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_by_workflow ON tasks (ns, workflow, seq) WHERE workflow <> '';
CREATE TABLE workflows (
  ns               TEXT    NOT NULL,
  id               TEXT    NOT NULL,
  name             TEXT    NOT NULL,
  state            INTEGER NOT NULL,
  on_failure       INTEGER NOT NULL,
  tasks            INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER NOT NULL,
  PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE INDEX workflows_by_state ON workflows (ns, state, id);
CREATE INDEX workflows_finished ON workflows (finished_at) WHERE state >= 2;
)sql";

// Schedules (issue 6): the engine holds them all and reads them only at
// recovery, so a row is the schedule's JSON (EncodeSchedule), rewritten as
// each tick is handled, in the transaction of the task the tick creates.
constexpr std::string_view kV6 = R"sql(
CREATE TABLE schedules (
  ns    TEXT NOT NULL,
  id    TEXT NOT NULL,
  body  TEXT NOT NULL,
  PRIMARY KEY (ns, id)
) WITHOUT ROWID;
)sql";

// Events and triggers (issue 6). An event is written once, in the
// transaction of the tasks its triggers submit; `tasks` is their ids as a
// JSON array. Triggers, like schedules, are read only at recovery.
constexpr std::string_view kV7 = R"sql(
CREATE TABLE events (
  ns          TEXT    NOT NULL,
  id          TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  payload     TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  tasks       TEXT    NOT NULL,
  PRIMARY KEY (ns, id)
) WITHOUT ROWID;
CREATE INDEX events_by_time ON events (created_at);
CREATE TABLE triggers (
  ns    TEXT NOT NULL,
  id    TEXT NOT NULL,
  body  TEXT NOT NULL,
  PRIMARY KEY (ns, id)
) WITHOUT ROWID;
)sql";

// The store's own documents (store/documents.h) in place of the API's JSON:
// schedules, triggers and queue settings had been written by the API's
// encoders (RFC 3339 times, enum names), and a task's flow column held the
// API's placement and on_dep_failure's name. No schema change: RewriteRows
// reads each such row with the reader of version 7 and writes it again.
// (Backoff, labels, history and an event's task ids were already written in
// the form the documents keep.)
constexpr std::string_view kV8 = "";

// Append only: migration i (1-based) is kMigrations[i - 1].
constexpr std::array<std::string_view, 8> kMigrations = {kV1, kV2, kV3, kV4, kV5, kV6, kV7, kV8};

// --- Version 7's readers, kept as they were: the API's decoders of this
// release read what its encoders wrote. (When the API's JSON changes, the
// readers below must keep reading version 7's rows: copy them here then.)
// Issue 16 moved the API's decoders onto core/json_fields.h without a copy
// here: the rules only widened what they accept (null as absent where a
// null was refused; whole numbers up to 2^53 written as doubles, where 9e15
// was the bound), so every row version 7 wrote, which its decoders had
// accepted, reads to the same value as before.

Status V7Parse(const std::string& text, const char* what, json::value* out) {
  boost::system::error_code ec;
  *out = json::parse(text, ec);
  if (ec) return DataLoss(std::string("unreadable ") + what + ": " + text.substr(0, 100));
  return Status::Ok();
}

StatusOr<std::string> V7Schedule(const std::string& text) {
  json::value v;
  DRAY_RETURN_IF_ERROR(V7Parse(text, "schedule", &v));
  auto s = DecodeSchedule(v);
  if (!s.ok()) return DataLoss("unreadable schedule: " + s.status().message());
  return ScheduleDocument(*s);
}

StatusOr<std::string> V7Trigger(const std::string& text) {
  json::value v;
  DRAY_RETURN_IF_ERROR(V7Parse(text, "trigger", &v));
  auto t = DecodeTrigger(v);
  if (!t.ok()) return DataLoss("unreadable trigger: " + t.status().message());
  return TriggerDocument(*t);
}

StatusOr<std::string> V7QueueSettings(const std::string& text) {
  json::value v;
  DRAY_RETURN_IF_ERROR(V7Parse(text, "queue settings", &v));
  QueueSettings s;
  Status st = ApplyQueuePatch(v, &s);
  if (!st.ok()) return DataLoss("unreadable queue settings: " + st.message());
  return QueueSettingsDocument(s);
}

StatusOr<std::string> V7Flow(const std::string& text) {
  json::value v;
  DRAY_RETURN_IF_ERROR(V7Parse(text, "flow", &v));
  if (!v.is_object()) return DataLoss("unreadable flow: " + text.substr(0, 100));
  const json::object& o = v.get_object();
  Task t;
  t.concurrency_key = JsonString(o, "concurrency_key");
  t.concurrency_limit = static_cast<std::int32_t>(JsonInt(o, "concurrency_limit"));
  t.node = JsonString(o, "node");
  if (const json::value* p = o.if_contains("placement"); p && p->is_object()) {
    t.placement = DecodePlacement(p->get_object());
  }
  if (const json::value* deps = o.if_contains("depends_on")) {
    if (!deps->is_array()) return DataLoss("unreadable flow: depends_on");
    for (const json::value& d : deps->get_array()) {
      if (!d.is_string()) return DataLoss("unreadable flow: depends_on");
      t.depends_on.emplace_back(d.get_string());
    }
  }
  if (o.contains("on_dep_failure")) {
    auto p = ParseDepFailure(JsonString(o, "on_dep_failure"));
    if (!p) return DataLoss("unreadable flow: on_dep_failure");
    t.on_dep_failure = *p;
  }
  return FlowDocument(t);
}

// Rewrites column `column` of every row of `table` matching `where` with
// `rewrite`, keyed by (ns, `key`).
Status RewriteColumn(sqlite3* db, const std::string& table, const std::string& key,
                     const std::string& column, const std::string& where,
                     StatusOr<std::string> (*rewrite)(const std::string&)) {
  auto error = [&](const std::string& doing) {
    return Unavailable(doing + " " + table + "." + column + ": " + sqlite3_errmsg(db));
  };
  std::vector<std::array<std::string, 3>> rows;  // (ns, key, new document)
  sqlite3_stmt* s = nullptr;
  const std::string select = "SELECT ns, " + key + ", " + column + " FROM " + table + where;
  if (sqlite3_prepare_v2(db, select.c_str(), -1, &s, nullptr) != SQLITE_OK) return error("reading");
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    auto text = [&](int col) {
      const unsigned char* p = sqlite3_column_text(s, col);
      return std::string(p ? reinterpret_cast<const char*>(p) : "",
                         static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
    };
    auto doc = rewrite(text(2));
    if (!doc.ok()) {
      sqlite3_finalize(s);
      return DataLoss(table + " row '" + text(1) + "' in namespace '" + text(0) +
                      "': " + doc.status().message());
    }
    rows.push_back({text(0), text(1), std::move(*doc)});
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return error("reading");
  const std::string update =
      "UPDATE " + table + " SET " + column + " = ?1 WHERE ns = ?2 AND " + key + " = ?3";
  if (sqlite3_prepare_v2(db, update.c_str(), -1, &s, nullptr) != SQLITE_OK) return error("writing");
  for (const auto& row : rows) {
    sqlite3_bind_text(s, 1, row[2].data(), static_cast<int>(row[2].size()), SQLITE_STATIC);
    sqlite3_bind_text(s, 2, row[0].data(), static_cast<int>(row[0].size()), SQLITE_STATIC);
    sqlite3_bind_text(s, 3, row[1].data(), static_cast<int>(row[1].size()), SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
      sqlite3_finalize(s);
      return error("writing");
    }
  }
  sqlite3_finalize(s);
  return Status::Ok();
}

}  // namespace

std::span<const std::string_view> SqliteMigrations() { return kMigrations; }

Status RewriteRows(int version, sqlite3* db) {
  if (version != 8) return Status::Ok();
  DRAY_RETURN_IF_ERROR(RewriteColumn(db, "schedules", "id", "body", "", V7Schedule));
  DRAY_RETURN_IF_ERROR(RewriteColumn(db, "triggers", "id", "body", "", V7Trigger));
  DRAY_RETURN_IF_ERROR(RewriteColumn(db, "queues", "name", "settings", "", V7QueueSettings));
  return RewriteColumn(db, "tasks", "id", "flow", " WHERE flow <> ''", V7Flow);
}

}  // namespace dray
