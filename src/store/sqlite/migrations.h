// Numbered schema migrations. Migration i (1-based) takes a database at
// user_version i-1 to i; SqliteMigrations()[i - 1] is its SQL, which may hold
// several statements, and RewriteRows(i, db) what SQL cannot do (rewriting
// stored documents), run right after that SQL. The store applies every
// pending one in one transaction and then sets user_version to the size of
// this list.
// Released migrations are never edited or reordered; enum values written to
// disk are never renumbered (docs/storage.md).
#pragma once

#include <span>
#include <string_view>

#include "dray/status.h"

struct sqlite3;

namespace dray {

std::span<const std::string_view> SqliteMigrations();

// Migration `version`'s row rewrites on the open transaction of `db`; OK at
// once for a migration that has none.
Status RewriteRows(int version, sqlite3* db);

}  // namespace dray
