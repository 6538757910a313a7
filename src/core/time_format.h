// RFC 3339 times on the wire. Dray writes UTC with milliseconds
// ("2026-11-24T09:14:02.123Z") and reads any RFC 3339 offset.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "dray/types.h"

namespace dray {

std::string FormatRfc3339(TimeMs t);
std::optional<TimeMs> ParseRfc3339(std::string_view s);

}  // namespace dray
