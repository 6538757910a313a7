// Cron expressions against a table of hand-checked fire times, daylight
// saving in two zones included (2026: New York springs forward on 8 March
// and falls back on 1 November; Berlin on 29 March and 25 October).
#include "core/cron.h"

#include <gtest/gtest.h>

#include "core/time_format.h"
#include "support/status_assert.h"

namespace dray {
namespace {

TimeMs At(const char* rfc3339) { return ParseRfc3339(rfc3339).value(); }

std::string NextOf(const std::string& expr, const std::string& zone, const char* after) {
  auto c = CronExpr::Parse(expr);
  EXPECT_OK(c) << expr;
  auto tz = TimeZone::Load(zone);
  EXPECT_OK(tz) << zone;
  if (!c.ok() || !tz.ok()) return "";
  auto next = c->Next(At(after), *tz);
  return next ? FormatRfc3339(*next) : "never";
}

struct Case {
  const char* expr;
  const char* zone;
  const char* after;
  const char* want;  // UTC
};

TEST(CronTest, HandCheckedFireTimes) {
  const Case cases[] = {
      // 02:00 every night in Shanghai (UTC+8, no DST).
      {"0 2 * * *", "Asia/Shanghai", "2026-11-30T00:00:00.000Z", "2026-11-30T18:00:00.000Z"},
      {"*/15 * * * *", "UTC", "2026-11-30T10:07:30.000Z", "2026-11-30T10:15:00.000Z"},
      {"*/10 * * * * *", "UTC", "2026-11-30T10:00:05.500Z", "2026-11-30T10:00:10.000Z"},
      {"0 0 1 1 *", "UTC", "2026-11-30T00:00:00.000Z", "2027-01-01T00:00:00.000Z"},
      // Strictly after: a fire time equal to `after` is not next.
      {"0 0 1 1 *", "UTC", "2027-01-01T00:00:00.000Z", "2028-01-01T00:00:00.000Z"},
      // 30 November 2026 is a Monday; the next Sunday is 6 December.
      {"0 0 * * 0", "UTC", "2026-11-30T00:00:00.000Z", "2026-12-06T00:00:00.000Z"},
      {"0 0 * * SUN", "UTC", "2026-11-30T00:00:00.000Z", "2026-12-06T00:00:00.000Z"},
      {"0 0 * * 7", "UTC", "2026-11-30T00:00:00.000Z", "2026-12-06T00:00:00.000Z"},
      // Both day fields restricted: either matches (Friday 6 November first).
      {"0 0 13 * 5", "UTC", "2026-11-01T00:00:00.000Z", "2026-11-06T00:00:00.000Z"},
      // The last day of February 2026; the 29th only in leap years.
      {"0 12 L * *", "UTC", "2026-02-01T00:00:00.000Z", "2026-02-28T12:00:00.000Z"},
      {"0 0 29 2 *", "UTC", "2026-03-01T00:00:00.000Z", "2028-02-29T00:00:00.000Z"},
      {"0 0 L-2 * *", "UTC", "2026-11-01T00:00:00.000Z", "2026-11-28T00:00:00.000Z"},
      // 15 August 2026 is a Saturday: the nearest weekday is Friday the 14th.
      {"0 9 15W * *", "UTC", "2026-08-01T00:00:00.000Z", "2026-08-14T09:00:00.000Z"},
      // 31 October 2026 is a Saturday: the last weekday is Friday the 30th.
      {"0 0 LW * *", "UTC", "2026-10-01T00:00:00.000Z", "2026-10-30T00:00:00.000Z"},
      // The last Friday and the second Monday of November 2026.
      {"0 9 * * 5L", "UTC", "2026-11-01T00:00:00.000Z", "2026-11-27T09:00:00.000Z"},
      {"0 9 * * MON#2", "UTC", "2026-11-01T00:00:00.000Z", "2026-11-09T09:00:00.000Z"},
      // Names and ranges: 1 June 2027 is a Tuesday.
      {"0 8 * JUN-AUG MON-FRI", "UTC", "2026-11-30T00:00:00.000Z", "2027-06-01T08:00:00.000Z"},
      {"0 8 ? jun-aug mon-fri", "UTC", "2026-11-30T00:00:00.000Z", "2027-06-01T08:00:00.000Z"},
      // New York springs forward: 02:30 does not exist on 8 March; it fires
      // at the change (03:00 EDT = 07:00Z), and at 02:30 EDT the day after.
      {"30 2 * * *", "America/New_York", "2026-03-07T12:00:00.000Z", "2026-03-08T07:00:00.000Z"},
      {"30 2 * * *", "America/New_York", "2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"},
      // New York falls back: 01:30 happens twice on 1 November; it fires at
      // the first (EDT, 05:30Z), not the second (EST, 06:30Z).
      {"30 1 * * *", "America/New_York", "2026-10-31T12:00:00.000Z", "2026-11-01T05:30:00.000Z"},
      {"30 1 * * *", "America/New_York", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"},
      // Half-hourly across the fall-back: 01:00 and 01:30 once each, then 02:00 EST.
      {"0,30 * * * *", "America/New_York", "2026-11-01T04:45:00.000Z", "2026-11-01T05:00:00.000Z"},
      {"0,30 * * * *", "America/New_York", "2026-11-01T05:00:00.000Z", "2026-11-01T05:30:00.000Z"},
      {"0,30 * * * *", "America/New_York", "2026-11-01T05:30:00.000Z", "2026-11-01T07:00:00.000Z"},
      // After a restart inside the repeated hour (01:10 EST), the repeated
      // 01:30 already fired: next is 02:00 EST.
      {"0,30 * * * *", "America/New_York", "2026-11-01T06:10:00.000Z", "2026-11-01T07:00:00.000Z"},
      // Berlin: 02:30 skipped on 29 March (fires at 03:00 CEST = 01:00Z);
      // repeated on 25 October (fires at the first, CEST, 00:30Z).
      {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00.000Z", "2026-03-29T01:00:00.000Z"},
      {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00.000Z", "2026-10-25T00:30:00.000Z"},
      {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"},
      // Every 15 minutes through the spring-forward hour: 02:00, 02:15 ...
      // do not exist; each fires once, all at 03:00 CEST, so after 01:45
      // CET (00:45Z) the next is 01:00Z and then 03:15 CEST (01:15Z).
      {"*/15 * * * *", "Europe/Berlin", "2026-03-29T00:45:00.000Z", "2026-03-29T01:00:00.000Z"},
      {"*/15 * * * *", "Europe/Berlin", "2026-03-29T01:00:00.000Z", "2026-03-29T01:15:00.000Z"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(NextOf(c.expr, c.zone, c.after), c.want)
        << c.expr << " in " << c.zone << " after " << c.after;
  }
}

TEST(CronTest, InvalidExpressionsAreRefusedNamingTheField) {
  const std::pair<const char*, const char*> bad[] = {
      {"*/0 * * * *", "step"},
      {"60 * * * *", "minute"},
      {"0 24 * * *", "hour"},
      {"0 0 0 * *", "day-of-month"},
      {"0 0 1 13 *", "month"},
      {"0 0 * * 8", "day-of-week"},
      {"0 0 31 4 *", "none of its months"},  // the 31st of April
      {"0 0 30,31 2 *", "none of its months"},
      {"0 0 31W 4 *", "none of its months"},
      {"* * *", "5 fields"},
      {"* * * * * * *", "5 fields"},
      {"", "5 fields"},
      {"5-1 * * * *", "upward"},
      {"a * * * *", "minute"},
      {"0 0 * * MON#6", "d#n"},
      {"0 0 L-40 * *", "L-n"},
      {"0 0 ? * ?", ""},  // accepted: both day fields unrestricted
      {"1,,2 * * * *", "empty"},
      {"? * * * *", "'?'"},
  };
  for (const auto& [expr, mention] : bad) {
    auto c = CronExpr::Parse(expr);
    if (std::string(mention).empty()) {
      EXPECT_OK(c) << expr;
      continue;
    }
    ASSERT_FALSE(c.ok()) << expr;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(mention), std::string::npos)
        << expr << ": " << c.status().message();
  }
  // Not impossible: a day-of-week allows days, or another month has the 31st.
  EXPECT_OK(CronExpr::Parse("0 0 31 4 MON"));
  EXPECT_OK(CronExpr::Parse("0 0 31 4,5 *"));
  EXPECT_OK(CronExpr::Parse("0 0 L 2 *"));
}

TEST(CronTest, UnknownZonesAreRefused) {
  EXPECT_OK(TimeZone::Load("UTC"));
  EXPECT_OK(TimeZone::Load("Asia/Shanghai"));
  for (const char* z : {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "", "EST5EDT;x"}) {
    auto tz = TimeZone::Load(z);
    EXPECT_EQ(tz.status().code(), StatusCode::kInvalidArgument) << z;
  }
}

// Consecutive fire times only grow, and each is one the expression allows
// (checked in UTC, where no local time is skipped or repeated).
TEST(CronTest, FireTimesIncreaseAndMatch) {
  auto tz = TimeZone::Load("UTC");
  ASSERT_OK(tz);
  for (const char* expr : {"*/7 3-5 * * *", "0 0 1,15 * *", "0 12 * * 1-5", "13 */5 L * *",
                           "0 0 * * 6#1", "30 10 15W */2 *"}) {
    auto c = CronExpr::Parse(expr);
    ASSERT_OK(c) << expr;
    TimeMs t = At("2026-01-01T00:00:00.000Z");
    for (int i = 0; i < 200; ++i) {
      auto next = c->Next(t, *tz);
      ASSERT_TRUE(next.has_value()) << expr;
      ASSERT_GT(*next, t) << expr;
      ASSERT_EQ(*next % 1000, 0);
      t = *next;
    }
  }
}

}  // namespace
}  // namespace dray
