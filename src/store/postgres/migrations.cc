#include "store/postgres/migrations.h"

#include <array>

namespace dray {

namespace {

// Version 1 is SQLite's schema as of its version 8, written for
// PostgreSQL:
// - every text column sorts by bytes (COLLATE "C"), as SQLite's do, so that
//   ids page in the same order on both stores whatever the database's
//   locale;
// - times are bigint milliseconds since the epoch, enums smallint of their
//   numbers in include/dray/types.h, and the JSON columns hold the store's
//   documents (store/documents.h) as text, not jsonb: they are written and
//   read whole, never queried, and text keeps them byte for byte;
// - only the primary key leads with ns: every write finds its row by
//   (ns, id), and an index that leads with ns (one value, usually) but
//   holds id further on looked as good to the planner while the table's
//   statistics were those of a small table, and it walked the whole
//   namespace for each row (0.4 ms per UPDATE, quadratic in a large first
//   batch). Listing filters by queue or state and ns with equality, so the
//   order of those columns costs listing nothing;
// - fillfactor 80 leaves room on each page for the updates of a task's
//   transitions, which then stay on the page (HOT) when they touch no
//   indexed column.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE tasks (
  ns               text COLLATE "C" NOT NULL,
  id               text COLLATE "C" NOT NULL,
  queue            text COLLATE "C" NOT NULL,
  type             text COLLATE "C" NOT NULL,
  payload          text     NOT NULL,
  priority         integer  NOT NULL,
  run_at           bigint   NOT NULL,
  max_attempts     integer  NOT NULL,
  backoff          text     NOT NULL,
  timeout_ms       bigint   NOT NULL,
  lease_ms         bigint   NOT NULL,
  key              text COLLATE "C" NOT NULL,
  labels           text     NOT NULL,
  state            smallint NOT NULL,
  attempts         integer  NOT NULL,
  result           text     NOT NULL,
  error            text     NOT NULL,
  created_at       bigint   NOT NULL,
  updated_at       bigint   NOT NULL,
  finished_at      bigint   NOT NULL,
  lease_token      bigint   NOT NULL,
  lease_expires_at bigint   NOT NULL,
  worker           text     NOT NULL,
  cancel_requested boolean  NOT NULL,
  seq              bigint   NOT NULL,
  history          text     NOT NULL,
  flow             text     NOT NULL,
  workflow         text COLLATE "C" NOT NULL,
  PRIMARY KEY (ns, id)
) WITH (fillfactor = 80);
CREATE INDEX tasks_by_queue ON tasks (queue, ns, id);
CREATE INDEX tasks_by_queue_state ON tasks (queue, state, ns, id);
CREATE INDEX tasks_by_state ON tasks (state, ns, id);
CREATE INDEX tasks_by_key ON tasks (key, ns, created_at) WHERE key <> '';
CREATE INDEX tasks_finished ON tasks (finished_at);
CREATE INDEX tasks_by_workflow ON tasks (workflow, ns, seq) WHERE workflow <> '';
CREATE TABLE marks (
  id              integer PRIMARY KEY CHECK (id = 1),
  max_lease_token bigint NOT NULL,
  max_seq         bigint NOT NULL
);
INSERT INTO marks VALUES (1, 0, 0);
CREATE TABLE queues (
  ns       text COLLATE "C" NOT NULL,
  name     text COLLATE "C" NOT NULL,
  settings text NOT NULL,
  PRIMARY KEY (ns, name)
);
CREATE TABLE workflows (
  ns               text COLLATE "C" NOT NULL,
  id               text COLLATE "C" NOT NULL,
  name             text COLLATE "C" NOT NULL,
  state            smallint NOT NULL,
  on_failure       smallint NOT NULL,
  tasks            integer  NOT NULL,
  cancel_requested boolean  NOT NULL,
  created_at       bigint   NOT NULL,
  updated_at       bigint   NOT NULL,
  finished_at      bigint   NOT NULL,
  PRIMARY KEY (ns, id)
);
CREATE INDEX workflows_by_state ON workflows (ns, state, id);
CREATE INDEX workflows_finished ON workflows (finished_at) WHERE state >= 2;
CREATE TABLE schedules (
  ns   text COLLATE "C" NOT NULL,
  id   text COLLATE "C" NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (ns, id)
);
CREATE TABLE events (
  ns         text COLLATE "C" NOT NULL,
  id         text COLLATE "C" NOT NULL,
  name       text NOT NULL,
  payload    text NOT NULL,
  created_at bigint NOT NULL,
  tasks      text NOT NULL,
  PRIMARY KEY (ns, id)
);
CREATE INDEX events_by_time ON events (created_at);
CREATE TABLE triggers (
  ns   text COLLATE "C" NOT NULL,
  id   text COLLATE "C" NOT NULL,
  body text NOT NULL,
  PRIMARY KEY (ns, id)
);
)sql";

// Append only: migration i (1-based) is kMigrations[i - 1].
constexpr std::array<std::string_view, 1> kMigrations = {kV1};

}  // namespace

std::span<const std::string_view> PostgresMigrations() { return kMigrations; }

}  // namespace dray
