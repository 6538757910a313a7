// Task ids: UUIDv7 (RFC 9562) strings, 36 characters, lower-case hex.
// Ids made by one generator sort strictly by creation order, as strings too:
// the 48-bit millisecond timestamp leads, and a 12-bit counter in rand_a keeps
// order within one millisecond (the timestamp is borrowed forward when the
// counter runs out, so ids never go backwards even if the clock does).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/mutex.h"
#include "dray/types.h"

namespace dray {

// Thread-safe.
class IdGenerator {
 public:
  IdGenerator();
  std::string Next(TimeMs now);

 private:
  Mutex mu_;
  TimeMs last_ms_ DRAY_GUARDED_BY(mu_) = 0;
  std::uint32_t counter_ DRAY_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ DRAY_GUARDED_BY(mu_);
};

// An id's 16 bytes, for compact keys in memory.
using IdBytes = std::array<std::uint8_t, 16>;

// The bytes of a well-formed id (see IsValidId); nullopt otherwise.
std::optional<IdBytes> ParseId(std::string_view id);
// The canonical text of an id: FormatId(*ParseId(s)) == s for a valid s.
std::string FormatId(const IdBytes& b);

// True for a well-formed UUID string (any version), as accepted in URLs.
bool IsValidId(std::string_view id);

// The millisecond timestamp in a UUIDv7 (0 if it is not one).
TimeMs IdTimestamp(std::string_view id);

}  // namespace dray
