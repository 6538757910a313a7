// Numbered schema migrations of the PostgreSQL store, its own list (not
// SQLite's: the two schemas start from different histories). Migration i
// (1-based) takes a database at version i-1 to i; PostgresMigrations()[i-1]
// is its SQL, which may hold several statements. The store applies every
// pending one in one transaction, holding an advisory lock, and records the
// version in dray_schema. Released migrations are never edited or
// reordered; enum values written to disk are never renumbered
// (docs/storage.md).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace dray {

std::span<const std::string_view> PostgresMigrations();

// The key of the transaction-scoped advisory lock that migrations hold
// ("dray" in ASCII), so that nodes starting together migrate one at a time.
inline constexpr std::int64_t kMigrationLockKey = 0x64726179;

}  // namespace dray
