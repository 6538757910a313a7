// Status and StatusOr: the error currency of every Dray API.
//
// A Status is either OK or carries a canonical code and a human-readable
// message that names the offending field and the reason. Functions that can
// fail return Status or StatusOr<T>; both are [[nodiscard]]. Exceptions never
// cross a Dray API boundary except where a header says otherwise.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dray {

// Canonical codes (after Abseil). Values are stable: they are never renumbered.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 3,     // the request is well-formed but a field is wrong
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kResourceExhausted = 8,   // a rate or queue bound: retry later
  kFailedPrecondition = 9,  // the object is not in a state that allows this
  kAborted = 10,            // a conflict such as a stale lease token
  kOutOfRange = 11,         // a size bound (body, payload, result, batch)
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,        // the store refuses writes, or the server stops
  kDataLoss = 15,
  kMalformed = 100,         // not canonical: the input could not be parsed at all
  kOutOfSpace = 101,        // not canonical: the disk holding the data is (nearly) full
};

// Stable snake_case name of a code, used as "code" in JSON errors.
std::string_view StatusCodeName(StatusCode code);

// The HTTP status a code maps to. This is the one place that mapping lives.
int HttpStatusFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Malformed(std::string m) { return {StatusCode::kMalformed, std::move(m)}; }
inline Status OutOfSpace(std::string m) { return {StatusCode::kOutOfSpace, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "StatusOr built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dray

#define DRAY_RETURN_IF_ERROR(expr)              \
  do {                                          \
    ::dray::Status dray_status_ = (expr);       \
    if (!dray_status_.ok()) return dray_status_; \
  } while (0)
