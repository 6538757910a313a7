// The shared store: PostgreSQL over libpq, for when several Dray nodes (or
// a standby after a failover) must reach the same tasks. The same contract
// as every store (store/store.h): a Commit() that returns OK is a committed
// transaction, with synchronous_commit=on set on the store's own sessions,
// so it is on the primary's disk (and, with a synchronous standby
// configured, on the standby's as well). Layout, migrations and failure
// behaviour: docs/storage.md, "PostgreSQL".
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace dray {

struct PostgresOptions {
  // A libpq connection string or URI: "postgresql://dray@db1,db2/dray?
  // target_session_attrs=read-write" or "host=... dbname=...". Several
  // hosts with target_session_attrs=read-write find the primary after a
  // PostgreSQL failover.
  std::string conninfo;
};

// Whether `location` (the --store flag) names a PostgreSQL database rather
// than a SQLite file: a postgres:// or postgresql:// URI.
bool IsPostgresLocation(const std::string& location);

// "PostgreSQL database 'dray' at db1,db2:5432" for logs and messages: the
// hosts, port and database of `conninfo`, never its password.
std::string DescribePostgresLocation(const std::string& conninfo);

// Whether a writable PostgreSQL answers at `conninfo` now: OK, or why not.
// (A broken store is not repaired in place: the server starts again, which
// reads back what the database holds; this tells it when to.)
Status ProbePostgres(const std::string& conninfo);

// Connects (a writer and a reader session), creates or migrates the schema
// in one transaction under an advisory lock (so that nodes starting
// together migrate once), and prepares the statements.
// Errors: FailedPrecondition if the database was written by a newer Dray;
// Unavailable if it cannot be reached or migrated, with libpq's message
// (the password, if any, is never in it).
StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& options);

}  // namespace dray
