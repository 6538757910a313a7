// The embedded store: one SQLite file in WAL mode with synchronous=FULL, so
// that a committed transaction is on stable storage when Commit() returns.
// Layout, columns and migrations: docs/storage.md.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace dray {

struct SqliteOptions {
  std::string path;            // the database file; its directory is created
  std::string vfs;             // SQLite VFS name; empty = the default (tests inject faults)
  int busy_timeout_ms = 5000;
  bool synchronous_full = true;  // false only for benchmarks of the floor
};

// Opens (creating the parent directory, the file and the schema, and
// migrating an older schema, as needed) the store at options.path.
// Errors: FailedPrecondition if the file was written by a newer Dray
// (docs/storage.md, "Schema version"); Unavailable if it cannot be opened,
// switched to WAL or migrated, naming the step and SQLite's message.
// The store is thread-safe (see store.h): one writer connection and one
// reader connection, each behind its own mutex.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options);

}  // namespace dray
