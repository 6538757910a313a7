#include "store/sqlite/migrations.h"

#include <array>

namespace dray {

namespace {

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

// Append only: migration i (1-based) is kMigrations[i - 1].
constexpr std::array<std::string_view, 7> kMigrations = {kV1, kV2, kV3, kV4, kV5, kV6, kV7};

}  // namespace

std::span<const std::string_view> SqliteMigrations() { return kMigrations; }

}  // namespace dray
