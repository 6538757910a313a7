#include "core/cron.h"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace dray {

struct TimeZone::Impl {
  cctz::time_zone zone;
};

StatusOr<TimeZone> TimeZone::Load(const std::string& name) {
  const bool plain = !name.empty() && name.size() <= 64 && name[0] != '/' &&
                     name.find("..") == std::string::npos &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '/' ||
                              c == '_' || c == '-' || c == '+';
                     });
  auto impl = std::make_shared<Impl>();
  if (!plain || !cctz::load_time_zone(name, &impl->zone)) {
    return InvalidArgument("unknown time zone '" + name + "' (an IANA name such as Asia/Shanghai)");
  }
  return TimeZone(name, std::move(impl));
}

namespace {

constexpr std::array<const char*, 12> kMonths = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                 "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kDays = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldSpec {
  const char* name;
  int lo;
  int hi;
  bool months;  // names JAN..DEC
  bool days;    // names SUN..SAT, 7 = Sunday
};

Status Bad(const FieldSpec& f, std::string_view item, const std::string& why) {
  return InvalidArgument("cron field " + std::string(f.name) + " ('" + std::string(item) +
                         "'): " + why);
}

// A number or, where the field allows, a name.
std::optional<int> Value(std::string_view s, const FieldSpec& f) {
  if (s.empty()) return std::nullopt;
  if (std::isalpha(static_cast<unsigned char>(s[0]))) {
    std::string up(s);
    for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (f.months) {
      for (int i = 0; i < 12; ++i) {
        if (up == kMonths[static_cast<std::size_t>(i)]) return i + 1;
      }
    }
    if (f.days) {
      for (int i = 0; i < 7; ++i) {
        if (up == kDays[static_cast<std::size_t>(i)]) return i;
      }
    }
    return std::nullopt;
  }
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// `*`, `a`, `a-b`, with an optional `/n`, comma-separated; sets bits lo..hi.
StatusOr<std::uint64_t> ParseList(std::string_view text, const FieldSpec& f) {
  std::uint64_t bits = 0;
  const int hi = f.days ? 7 : f.hi;
  while (true) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    if (item.empty()) return Bad(f, text, "an empty list item");
    std::string_view range = item;
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      auto n = Value(item.substr(slash + 1), FieldSpec{f.name, 0, 0, false, false});
      if (!n || *n < 1) return Bad(f, item, "a step must be a whole number of at least 1");
      if (*n > f.hi - f.lo + 1) return Bad(f, item, "the step is larger than the field's range");
      step = *n;
    }
    int from, to;
    if (range == "*" || range == "?") {
      if (range == "?" && !f.days && std::string_view(f.name) != "day-of-month") {
        return Bad(f, item, "'?' is only for the day fields");
      }
      from = f.lo;
      to = f.hi;
    } else {
      const std::size_t dash = range.find('-', 1);
      auto a = Value(range.substr(0, dash), f);
      if (!a) return Bad(f, item, "not a value of this field");
      from = *a;
      to = *a;
      if (dash != std::string_view::npos) {
        auto b = Value(range.substr(dash + 1), f);
        if (!b) return Bad(f, item, "not a value of this field");
        to = *b;
      } else if (step > 1) {
        to = f.hi;  // a/n: from a to the end
      }
      if (from < f.lo || from > hi || to < f.lo || to > hi) {
        return Bad(f, item, "out of range " + std::to_string(f.lo) + "-" + std::to_string(hi));
      }
      if (from > to) return Bad(f, item, "a range must go upward");
    }
    for (int v = from; v <= to; v += step) bits |= std::uint64_t{1} << (f.days && v == 7 ? 0 : v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return bits;
}

int DaysIn(int year, int month) {
  return static_cast<int>((cctz::civil_day(cctz::civil_month(year, month) + 1) - 1).day());
}

int Weekday(int year, int month, int day) {
  switch (cctz::get_weekday(cctz::civil_day(year, month, day))) {
    case cctz::weekday::monday: return 1;
    case cctz::weekday::tuesday: return 2;
    case cctz::weekday::wednesday: return 3;
    case cctz::weekday::thursday: return 4;
    case cctz::weekday::friday: return 5;
    case cctz::weekday::saturday: return 6;
    case cctz::weekday::sunday: return 0;
  }
  return 0;
}

// The weekday nearest day `n` of the month, without leaving the month.
int NearestWeekday(int year, int month, int n, int days_in) {
  if (n > days_in) return -1;
  const int wd = Weekday(year, month, n);
  if (wd == 6) return n == 1 ? n + 2 : n - 1;
  if (wd == 0) return n == days_in ? n - 2 : n + 1;
  return n;
}

template <std::size_t N>
std::bitset<N> Bits(std::uint64_t v) {
  return std::bitset<N>(v);
}

}  // namespace

StatusOr<CronExpr> CronExpr::Parse(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return InvalidArgument("a cron expression has 5 fields (minute hour day-of-month month "
                           "day-of-week) or 6 (seconds first); '" + std::string(text) + "' has " +
                           std::to_string(fields.size()));
  }
  if (fields.size() == 5) fields.insert(fields.begin(), "0");
  CronExpr c;
  c.text_ = std::string(text);
  const FieldSpec kSecond{"second", 0, 59, false, false}, kMinute{"minute", 0, 59, false, false},
      kHour{"hour", 0, 23, false, false}, kDay{"day-of-month", 1, 31, false, false},
      kMonth{"month", 1, 12, true, false}, kWeekday{"day-of-week", 0, 6, false, true};
  auto s = ParseList(fields[0], kSecond);
  auto m = ParseList(fields[1], kMinute);
  auto h = ParseList(fields[2], kHour);
  auto mo = ParseList(fields[4], kMonth);
  for (const Status& st : {s.status(), m.status(), h.status(), mo.status()}) {
    if (!st.ok()) return st;
  }
  c.seconds_ = Bits<60>(*s);
  c.minutes_ = Bits<60>(*m);
  c.hours_ = Bits<24>(*h);
  c.months_ = Bits<13>(*mo);

  // Day of month: plain items, or L, L-n, nW, LW.
  std::string_view days = fields[3];
  c.days_star_ = days[0] == '*' || days == "?";
  std::uint64_t day_bits = 0;
  for (std::string_view rest = days;;) {
    const std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    if (item == "L") {
      c.last_day_offsets_.push_back(0);
    } else if (item == "LW") {
      c.last_weekday_ = true;
    } else if (item.size() > 2 && item.substr(0, 2) == "L-") {
      auto n = Value(item.substr(2), kSecond);
      if (!n || *n < 1 || *n > 30) return Bad(kDay, item, "L-n needs n from 1 to 30");
      c.last_day_offsets_.push_back(*n);
    } else if (item.size() > 1 && item.back() == 'W') {
      auto n = Value(item.substr(0, item.size() - 1), kSecond);
      if (!n || *n < 1 || *n > 31) return Bad(kDay, item, "nW needs a day from 1 to 31");
      c.nearest_weekday_.push_back(*n);
    } else {
      auto bits = ParseList(item, kDay);
      if (!bits.ok()) return bits.status();
      day_bits |= *bits;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  c.days_ = Bits<32>(day_bits);

  // Day of week: plain items, or dL, d#n.
  std::string_view weekdays = fields[5];
  c.weekdays_star_ = weekdays[0] == '*' || weekdays == "?";
  std::uint64_t weekday_bits = 0;
  for (std::string_view rest = weekdays;;) {
    const std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    if (const std::size_t hash = item.find('#'); hash != std::string_view::npos) {
      auto d = Value(item.substr(0, hash), kWeekday);
      auto n = Value(item.substr(hash + 1), kSecond);
      if (!d || *d < 0 || *d > 7) return Bad(kWeekday, item, "d#n needs a day 0-7 or SUN-SAT");
      if (!n || *n < 1 || *n > 5) return Bad(kWeekday, item, "d#n needs n from 1 to 5");
      c.nth_weekday_.push_back(Nth{*d % 7, *n});
    } else if (item.size() > 1 && item.back() == 'L') {
      auto d = Value(item.substr(0, item.size() - 1), kWeekday);
      if (!d || *d < 0 || *d > 7) return Bad(kWeekday, item, "dL needs a day 0-7 or SUN-SAT");
      c.last_of_weekday_.set(static_cast<std::size_t>(*d % 7));
    } else {
      auto bits = ParseList(item, kWeekday);
      if (!bits.ok()) return bits.status();
      weekday_bits |= *bits;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  c.weekdays_ = Bits<7>(weekday_bits);

  // A date that never exists (the 31st of April) is a mistake, not a
  // schedule that never fires. Day-of-week, when it restricts, always
  // allows some day.
  if (c.weekdays_star_ && !c.days_star_ && c.last_day_offsets_.empty() && !c.last_weekday_) {
    bool possible = false;
    for (int month = 1; month <= 12 && !possible; ++month) {
      if (!c.months_[static_cast<std::size_t>(month)]) continue;
      const int most = month == 2 ? 29 : DaysIn(2001, month);
      for (int d = 1; d <= most && !possible; ++d) possible = c.days_[static_cast<std::size_t>(d)];
      for (int n : c.nearest_weekday_) possible |= n <= most;
    }
    if (!possible) {
      return InvalidArgument("cron expression '" + std::string(text) +
                             "' names a day of the month that none of its months has");
    }
  }
  return c;
}

bool CronExpr::DayMatches(int year, int month, int day) const {
  if (days_star_ && weekdays_star_) return true;
  const int days_in = DaysIn(year, month);
  bool by_day = days_[static_cast<std::size_t>(day)];
  for (int off : last_day_offsets_) by_day |= day == days_in - off;
  for (int n : nearest_weekday_) by_day |= day == NearestWeekday(year, month, n, days_in);
  if (last_weekday_) {
    const int wd = Weekday(year, month, days_in);
    by_day |= day == (wd == 6 ? days_in - 1 : wd == 0 ? days_in - 2 : days_in);
  }
  const int wd = Weekday(year, month, day);
  bool by_weekday = weekdays_[static_cast<std::size_t>(wd)] ||
                    (last_of_weekday_[static_cast<std::size_t>(wd)] && day + 7 > days_in);
  for (const Nth& nth : nth_weekday_) by_weekday |= wd == nth.weekday && (day - 1) / 7 + 1 == nth.n;
  if (days_star_) return by_weekday;
  if (weekdays_star_) return by_day;
  return by_day || by_weekday;
}

std::optional<TimeMs> CronExpr::Next(TimeMs after, const TimeZone& tz) const {
  const cctz::time_zone& zone = tz.impl_->zone;
  const auto after_s = cctz::time_point<cctz::seconds>(
      cctz::seconds(after >= 0 ? after / 1000 : -((-after + 999) / 1000)));
  const cctz::civil_second start = cctz::convert(after_s, zone) + 1;
  const cctz::civil_day first_day(start);
  const cctz::civil_day last_day = first_day + 366 * 400;
  auto next_bit = [](const auto& bits, int from) {
    for (int v = from; v < static_cast<int>(bits.size()); ++v) {
      if (bits[static_cast<std::size_t>(v)]) return v;
    }
    return -1;
  };
  for (cctz::civil_day day = first_day; day < last_day;) {
    if (!months_[static_cast<std::size_t>(day.month())]) {
      day = cctz::civil_day(cctz::civil_month(day) + 1);
      continue;
    }
    if (!DayMatches(static_cast<int>(day.year()), day.month(), day.day())) {
      ++day;
      continue;
    }
    const bool today = day == first_day;
    for (int h = next_bit(hours_, today ? start.hour() : 0); h >= 0; h = next_bit(hours_, h + 1)) {
      const bool this_hour = today && h == start.hour();
      for (int m = next_bit(minutes_, this_hour ? start.minute() : 0); m >= 0;
           m = next_bit(minutes_, m + 1)) {
        const bool this_minute = this_hour && m == start.minute();
        for (int s = next_bit(seconds_, this_minute ? start.second() : 0); s >= 0;
             s = next_bit(seconds_, s + 1)) {
          const auto cl = zone.lookup(cctz::civil_second(day.year(), day.month(), day.day(), h, m, s));
          // Skipped: at the change. Repeated: the first time only.
          const auto tp = cl.kind == cctz::time_zone::civil_lookup::SKIPPED ? cl.trans : cl.pre;
          const TimeMs ms = static_cast<TimeMs>(tp.time_since_epoch().count()) * 1000;
          if (ms > after) return ms;
        }
      }
    }
    ++day;
  }
  return std::nullopt;
}

}  // namespace dray
