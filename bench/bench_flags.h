// Flag helpers for the benchmarks that link the engine alone (no Beast).
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

namespace dray::bench {

// "1000,10000" -> {1000, 10000}.
inline std::vector<long> ParseList(const char* s) {
  std::vector<long> out;
  std::string text(s);
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(std::atol(text.substr(at, comma - at).c_str()));
    at = comma + 1;
  }
  return out;
}

}  // namespace dray::bench
