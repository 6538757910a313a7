// Small JSON helpers for tests that read the API's answers.
#pragma once

#include <boost/json.hpp>
#include <string>

namespace dray::testing {

// The string `v` holds, copied. Throws (and so fails the test that called it)
// if `v` is not a string: tests use it on fields the API promises are strings.
inline std::string Str(const boost::json::value& v) { return std::string(v.as_string()); }

}  // namespace dray::testing
