// ASSERT_OK / EXPECT_OK: gtest assertions that a Status or StatusOr<T> is OK,
// and that print the status (code and message) when it is not.
//
//   ASSERT_OK(store->Commit(batch));
//   EXPECT_OK(engine.Submit(spec, now, &out)) << "task " << i;
//
// The expression is evaluated exactly once and bound by const reference, so
// a StatusOr of a move-only type can be checked and then used. Like every
// gtest assertion, extra context can be streamed after it. On failure the
// message reads, for example:
//   Value of: engine.Submit(spec, now, &out)
//   Expected: OK
//   Actual:   invalid_argument: "type" is required
#pragma once

#include <gtest/gtest.h>

#include "dray/status.h"

namespace dray::testing::internal {

inline ::testing::AssertionResult IsOk(const char* expr, const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "Value of: " << expr << "\n  Expected: OK\n  Actual:   "
                                       << s.ToString();
}

template <typename T>
::testing::AssertionResult IsOk(const char* expr, const StatusOr<T>& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return IsOk(expr, s.status());
}

}  // namespace dray::testing::internal

// Variadic so that a comma inside the expression (a template argument list)
// needs no extra parentheses.
#define ASSERT_OK(...) ASSERT_PRED_FORMAT1(::dray::testing::internal::IsOk, (__VA_ARGS__))
#define EXPECT_OK(...) EXPECT_PRED_FORMAT1(::dray::testing::internal::IsOk, (__VA_ARGS__))
