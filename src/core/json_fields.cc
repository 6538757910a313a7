#include "core/json_fields.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>

namespace json = boost::json;

namespace dray {
namespace {

// Doubles with no fraction are exact integers up to 2^53; beyond that a
// whole-valued double may not be the integer the client wrote.
constexpr double kMaxExactDouble = 9007199254740992.0;

std::string Range(std::int64_t lo, std::int64_t hi) {
  return std::to_string(lo) + " and " + std::to_string(hi);
}

std::string Num(double d) {
  if (d == std::trunc(d) && std::abs(d) < kMaxExactDouble) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, ec == std::errc() ? p : buf);
}

}  // namespace

std::string FieldPath(std::string_view where, std::string_view name) {
  std::string f(where);
  if (!f.empty()) f += ".";
  f += name;
  return f;
}

std::string IndexPath(std::string_view where, std::size_t i) {
  return std::string(where) + "[" + std::to_string(i) + "]";
}

Status FieldError(std::string_view path, std::string_view problem) {
  return InvalidArgument("field '" + std::string(path) + "' " + std::string(problem));
}

const json::value* FindField(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v && !v->is_null() ? v : nullptr;
}

Status RefuseUnknown(const json::object& o, std::initializer_list<std::string_view> known,
                     std::string_view where) {
  for (const auto& kv : o) {
    if (std::find(known.begin(), known.end(), kv.key()) == known.end()) {
      return FieldError(FieldPath(where, kv.key()), "is unknown");
    }
  }
  return Status::Ok();
}

StatusOr<std::int64_t> ReadInt(const json::value& v, std::string_view path, std::int64_t lo,
                               std::int64_t hi) {
  std::int64_t x;
  if (v.is_int64()) {
    x = v.get_int64();
  } else if (v.is_uint64()) {
    // Above int64's range, so above any `hi`.
    return FieldError(path, "must be between " + Range(lo, hi));
  } else if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d != std::trunc(d)) return FieldError(path, "must be an integer");
    if (std::abs(d) >= kMaxExactDouble) return FieldError(path, "must be between " + Range(lo, hi));
    x = static_cast<std::int64_t>(d);
  } else {
    return FieldError(path, "must be an integer");
  }
  if (x < lo || x > hi) return FieldError(path, "must be between " + Range(lo, hi));
  return x;
}

StatusOr<double> ReadNumber(const json::value& v, std::string_view path, double lo, double hi) {
  double d;
  if (v.is_double()) {
    d = v.get_double();
  } else if (v.is_int64()) {
    d = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    d = static_cast<double>(v.get_uint64());
  } else {
    return FieldError(path, "must be a number");
  }
  if (!(d >= lo && d <= hi)) return FieldError(path, "must be between " + Num(lo) + " and " + Num(hi));
  return d;
}

StatusOr<std::string> ReadString(const json::value& v, std::string_view path,
                                 std::size_t max_bytes, Empty empty) {
  if (!v.is_string()) return FieldError(path, "must be a string");
  const json::string& s = v.get_string();
  if (s.empty() && empty == Empty::kRefused) return FieldError(path, "must not be empty");
  if (s.size() > max_bytes) {
    return FieldError(path, "is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return std::string(s);
}

StatusOr<bool> ReadBool(const json::value& v, std::string_view path) {
  if (!v.is_bool()) return FieldError(path, "must be true or false");
  return v.get_bool();
}

StatusOr<std::int64_t> ReadIntText(std::string_view text, std::string_view what,
                                   std::int64_t lo, std::int64_t hi) {
  auto refuse = [&] {
    return InvalidArgument(std::string(what) + " must be an integer between " + Range(lo, hi));
  };
  const char* end = text.data() + text.size();
  std::int64_t x = 0;
  auto [p, ec] = std::from_chars(text.data(), end, x);
  if (ec != std::errc() || p != end) {
    // Not an integer's text: perhaps a whole number written as a double.
    double d = 0;
    auto [q, dec] = std::from_chars(text.data(), end, d);
    if (text.empty() || dec != std::errc() || q != end || !std::isfinite(d) ||
        d != std::trunc(d) || std::abs(d) >= kMaxExactDouble) {
      return refuse();
    }
    x = static_cast<std::int64_t>(d);
  }
  if (x < lo || x > hi) return refuse();
  return x;
}

}  // namespace dray
