// Numbered schema migrations. Migration i (1-based) takes a database at
// user_version i-1 to i. Released migrations are never edited; enum values
// written to disk are never renumbered (docs/storage.md).
#pragma once

#include <span>
#include <string_view>

namespace dray {

std::span<const std::string_view> SqliteMigrations();

}  // namespace dray
