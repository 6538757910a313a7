// Cron expressions and their fire times in an IANA time zone (issue 6).
//
// Syntax: 5 fields (minute hour day-of-month month day-of-week) or 6 with
// seconds first. Each field is `*`, a value, a range `a-b`, a step `*/n` or
// `a-b/n` or `a/n`, or a comma-separated list of these. Months may be named
// (JAN..DEC) and days too (SUN..SAT; 0 and 7 are both Sunday). `?` means
// `*` in the day fields. Day-of-month also takes `L` (last day), `L-n` (n
// days before it), `nW` (the weekday nearest day n, within the month) and
// `LW` (the last weekday); day-of-week takes `dL` (the last such day of the
// month) and `d#n` (the n-th such day). As in Vixie cron, when both day
// fields are restricted a day matches either; a day field that starts with
// `*` (so `*/2` too) does not restrict.
//
// Invalid expressions are refused with InvalidArgument naming the field:
// bad syntax, values out of range, `*/0`, and dates that never exist (such
// as `31 4 *`, the 31st of April) when day-of-week does not also allow days.
//
// Time zones: a local time that a daylight-saving change skips fires once,
// at the instant of the change (02:30 on a spring-forward night fires at
// 03:00); a local time that occurs twice fires once, at its first
// occurrence. Zones come from the system's tz database (cctz).
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dray/status.h"
#include "dray/types.h"

namespace dray {

class TimeZone {
 public:
  // InvalidArgument for a name the tz database does not know ("UTC" always works).
  static StatusOr<TimeZone> Load(const std::string& name);
  const std::string& name() const { return name_; }

 private:
  friend class CronExpr;
  struct Impl;
  explicit TimeZone(std::string name, std::shared_ptr<const Impl> impl)
      : name_(std::move(name)), impl_(std::move(impl)) {}
  std::string name_;
  std::shared_ptr<const Impl> impl_;
};

class CronExpr {
 public:
  static StatusOr<CronExpr> Parse(std::string_view text);

  // The first fire time strictly after `after` (ms since the epoch), in
  // whole seconds; nullopt if there is none within the next 400 years.
  std::optional<TimeMs> Next(TimeMs after, const TimeZone& tz) const;

  const std::string& text() const { return text_; }

 private:
  struct Nth {
    int weekday;  // 0 = Sunday
    int n;        // 1..5
  };
  bool DayMatches(int year, int month, int day) const;

  std::string text_;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_star_ = true;
  bool weekdays_star_ = true;
  std::vector<int> last_day_offsets_;  // L (0), L-n (n)
  std::vector<int> nearest_weekday_;   // nW
  bool last_weekday_ = false;          // LW
  std::bitset<7> last_of_weekday_;     // dL
  std::vector<Nth> nth_weekday_;       // d#n
};

}  // namespace dray
