#include "core/ids.h"

#include <array>

namespace dray {

IdGenerator::IdGenerator() : rng_(std::random_device{}()) {}

std::string IdGenerator::Next(TimeMs now) {
  std::uint64_t ms;
  std::uint32_t counter;
  std::uint64_t rand_b;
  {
    MutexLock lock(&mu_);
    if (now > last_ms_) {
      last_ms_ = now;
      // Start each millisecond's counter low but random, leaving room to count.
      counter_ = static_cast<std::uint32_t>(rng_() & 0x1FF);
    } else if (++counter_ > 0xFFF) {
      ++last_ms_;
      counter_ = 0;
    }
    ms = static_cast<std::uint64_t>(last_ms_);
    counter = counter_;
    rand_b = rng_();
  }
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x70 | ((counter >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(counter & 0xFF);
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(rand_b >> (56 - 8 * i));
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));
  return FormatId(b);
}

std::string FormatId(const IdBytes& b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t o = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++o;
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 0xF];
  }
  return out;
}

std::optional<IdBytes> ParseId(std::string_view id) {
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') {
    return std::nullopt;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  IdBytes b{};
  std::size_t o = 0;
  for (std::size_t i = 0; i < id.size(); i += 2) {
    if (i == 8 || i == 13 || i == 18 || i == 23) ++i;
    int hi = nibble(id[i]), lo = nibble(id[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    b[o++] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return b;
}

bool IsValidId(std::string_view id) {
  if (id.size() != 36) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

TimeMs IdTimestamp(std::string_view id) {
  if (!IsValidId(id) || id[14] != '7') return 0;
  TimeMs ms = 0;
  for (std::size_t i = 0; i < 13; ++i) {
    if (id[i] == '-') continue;
    char c = id[i];
    ms = ms * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return ms;
}

}  // namespace dray
