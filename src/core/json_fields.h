// The one reader of fields in JSON that clients send: every decoder of a
// request body (core/json_codec.cc) and every handler that reads a body or
// a numeric query parameter itself (server/api_util.cc, server/api.cc)
// reads through these functions, so that every route judges the same field
// the same way. docs/http-api.md "How fields are read" states the rules for
// clients; in short:
//
//  - absent: a field that is missing or null is absent (FindField). Only a
//    value that may itself be null (a payload, a result, a value in a
//    trigger's match) is read without FindField.
//  - integers: an integer, or a number with no fraction (5.0, 5e3), within
//    the field's range; 5.5, "5" and out-of-range numbers are refused.
//  - numbers: any finite number within the field's range.
//  - strings: a string of at most max_bytes bytes; "" is refused unless the
//    caller passes Empty::kAllowed (label values, selector values, a fail's
//    error message), where empty means something.
//  - booleans: true or false only.
//  - unknown fields are refused (RefuseUnknown).
//
// Every refusal is InvalidArgument (422) with the message
// "field '<path>' <problem>", where <path> is dotted and indexed
// ("tasks[2].backoff.max_ms"). Nothing here allocates beyond the message
// and the returned string. Pure functions; any thread may call them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "dray/status.h"

namespace dray {

// `where` + "." + `name`, or `name` alone when `where` is "".
std::string FieldPath(std::string_view where, std::string_view name);
// `where` + "[" + i + "]".
std::string IndexPath(std::string_view where, std::size_t i);

// InvalidArgument("field '<path>' <problem>").
Status FieldError(std::string_view path, std::string_view problem);

// The field `name` of `o`, or nullptr when it is missing or null.
const boost::json::value* FindField(const boost::json::object& o, std::string_view name);

// InvalidArgument naming the first field of `o` (as FieldPath(where, k))
// whose key is not in `known`.
Status RefuseUnknown(const boost::json::object& o, std::initializer_list<std::string_view> known,
                     std::string_view where = "");

// An integer in [lo, hi]: a JSON integer, or a double with no fraction.
StatusOr<std::int64_t> ReadInt(const boost::json::value& v, std::string_view path,
                               std::int64_t lo, std::int64_t hi);

// A finite number in [lo, hi].
StatusOr<double> ReadNumber(const boost::json::value& v, std::string_view path, double lo,
                            double hi);

enum class Empty { kRefused, kAllowed };
// A string of at most `max_bytes` bytes; "" only with Empty::kAllowed.
StatusOr<std::string> ReadString(const boost::json::value& v, std::string_view path,
                                 std::size_t max_bytes, Empty empty = Empty::kRefused);

StatusOr<bool> ReadBool(const boost::json::value& v, std::string_view path);

// A number given as text (a query parameter), by the same rule as ReadInt:
// "5" and "5.0" read as 5; "5.5", "five" and out-of-range values are refused
// with InvalidArgument("<what> must be an integer between lo and hi"), where
// `what` names it, e.g. "query parameter 'limit'".
StatusOr<std::int64_t> ReadIntText(std::string_view text, std::string_view what,
                                   std::int64_t lo, std::int64_t hi);

}  // namespace dray
