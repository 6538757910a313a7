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

// Append only: migration i (1-based) is kMigrations[i - 1].
constexpr std::array<std::string_view, 2> kMigrations = {kV1, kV2};

}  // namespace

std::span<const std::string_view> SqliteMigrations() { return kMigrations; }

}  // namespace dray
