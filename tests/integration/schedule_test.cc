// Schedules through the real server (issue 6): validation, firing, pause
// and resume, changes, deletion, and exactly one task per tick across a
// kill -9 and a restart.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "cli/schedule_command.h"
#include "core/clock.h"
#include "core/time_format.h"
#include "dray/client.h"
#include "support/json.h"
#include "support/server_test.h"
#include "support/status_assert.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;

class ScheduleHttpTest : public ServerTest {
 protected:
  // tick label -> how many tasks carry it, over every task of `queue`.
  std::map<std::string, int> TicksIn(const std::string& queue) {
    std::map<std::string, int> ticks;
    std::string cursor;
    for (;;) {
      HttpResult r = Http(server_.port(), "GET",
                          "/v1/tasks?queue=" + queue + "&limit=1000" +
                              (cursor.empty() ? "" : "&cursor=" + cursor));
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) return ticks;
      json::value page = r.json();
      for (const json::value& t : page.at("tasks").as_array()) {
        ticks[Str(t.at("labels").at("dray.tick"))]++;
      }
      if (page.at("next_cursor").is_null()) return ticks;
      cursor = Str(page.at("next_cursor"));
    }
  }
};

TEST_F(ScheduleHttpTest, BadSchedulesAreRefusedNamingTheField) {
  HttpConn c(server_.port());
  struct Case {
    const char* body;
    const char* says;
  };
  for (const Case& k : {
           Case{R"({"cron":"*/0 * * * *","task":{"type":"t"}})", "field 'cron'"},
           Case{R"({"cron":"0 0 31 4 *","task":{"type":"t"}})", "field 'cron'"},
           Case{R"({"cron":"0 0 30 2 *","task":{"type":"t"}})", "field 'cron'"},
           Case{R"({"cron":"0 2 * * *","timezone":"Mars/Olympus","task":{"type":"t"}})",
                "field 'timezone'"},
           Case{R"({"interval_ms":500,"task":{"type":"t"}})", "interval_ms"},
           Case{R"({"interval_ms":60000})", "field 'task' is required"},
           Case{R"({"cron":"* * * * *","interval_ms":60000,"task":{"type":"t"}})", "either"},
           Case{R"({"interval_ms":60000,"misfire":"sometimes","task":{"type":"t"}})",
                "field 'misfire'"},
           Case{R"({"interval_ms":60000,"task":{"type":"t","key":"k"}})", "task.key"},
           Case{R"({"id":"no spaces","interval_ms":60000,"task":{"type":"t"}})", "field 'id'"},
       }) {
    HttpResult r = c.Call("POST", "/v1/schedules", k.body);
    EXPECT_EQ(r.status, 422) << k.body << " -> " << r.body;
    EXPECT_NE(r.body.find(k.says), std::string::npos) << k.body << " -> " << r.body;
  }
  HttpResult list = c.Call("GET", "/v1/schedules");
  ASSERT_EQ(list.status, 200);
  EXPECT_TRUE(list.json().at("schedules").as_array().empty()) << list.body;
}

TEST_F(ScheduleHttpTest, CreateGetListPatchPauseResumeAndDelete) {
  HttpConn c(server_.port());
  HttpResult made = c.Call("POST", "/v1/schedules",
                           R"({"id":"nightly","name":"the nightly report","cron":"0 2 * * *",
                               "timezone":"Asia/Shanghai","overlap":"skip",
                               "task":{"type":"report","queue":"reports","payload":{"kind":"daily"}}})");
  ASSERT_EQ(made.status, 201) << made.body;
  json::value s = made.json();
  EXPECT_EQ(s.at("id"), "nightly");
  EXPECT_EQ(s.at("misfire"), "once");
  EXPECT_EQ(s.at("overlap"), "skip");
  ASSERT_EQ(s.at("next_fire_times").as_array().size(), 5u);
  // 02:00 in Shanghai is 18:00 UTC.
  EXPECT_NE(Str(s.at("next_fire_times").at(0)).find("T18:00:00.000Z"), std::string::npos) << s;
  HttpResult again = c.Call("POST", "/v1/schedules",
                            R"({"id":"nightly","interval_ms":60000,"task":{"type":"t"}})");
  EXPECT_EQ(again.status, 409) << again.body;

  HttpResult got = c.Call("GET", "/v1/schedules/nightly?next=2");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json().at("next_fire_times").as_array().size(), 2u);
  EXPECT_EQ(got.json().at("task").at("payload").at("kind"), "daily");
  EXPECT_EQ(c.Call("GET", "/v1/schedules/nope").status, 404);

  HttpResult paused = c.Call("POST", "/v1/schedules/nightly/pause");
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_EQ(paused.json().at("paused"), true);
  EXPECT_FALSE(paused.json().as_object().contains("next_fire_times"));
  HttpResult resumed = c.Call("POST", "/v1/schedules/nightly/resume");
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(resumed.json().at("paused"), false);

  // PATCH: interval instead of cron, a new end; the id cannot change; a bad
  // change changes nothing.
  HttpResult patched = c.Call("PATCH", "/v1/schedules/nightly",
                              R"({"interval_ms":3600000,"end_at":"2099-01-01T00:00:00Z"})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_FALSE(patched.json().as_object().contains("cron"));
  EXPECT_EQ(patched.json().at("interval_ms"), 3600000);
  EXPECT_EQ(c.Call("PATCH", "/v1/schedules/nightly", R"({"id":"other"})").status, 422);
  EXPECT_EQ(c.Call("PATCH", "/v1/schedules/nightly", R"({"cron":"61 * * * *"})").status, 422);
  EXPECT_EQ(c.Call("PATCH", "/v1/schedules/nightly", R"({"task":null})").status, 422);
  HttpResult unchanged = c.Call("GET", "/v1/schedules/nightly");
  EXPECT_EQ(unchanged.json().at("interval_ms"), 3600000);
  EXPECT_EQ(unchanged.json().at("end_at"), "2099-01-01T00:00:00.000Z");
  HttpResult cleared = c.Call("PATCH", "/v1/schedules/nightly", R"({"end_at":null})");
  ASSERT_EQ(cleared.status, 200);
  EXPECT_FALSE(cleared.json().as_object().contains("end_at"));

  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.Call("POST", "/v1/schedules",
                     R"({"id":"s)" + std::to_string(i) +
                         R"(","interval_ms":3600000,"task":{"type":"t"}})")
                  .status,
              201);
  }
  HttpResult page = c.Call("GET", "/v1/schedules?limit=2");
  ASSERT_EQ(page.status, 200);
  ASSERT_EQ(page.json().at("schedules").as_array().size(), 2u);
  EXPECT_EQ(page.json().at("schedules").at(0).at("id"), "nightly");
  HttpResult rest = c.Call("GET", "/v1/schedules?limit=2&cursor=" +
                                      Str(page.json().at("next_cursor")));
  ASSERT_EQ(rest.json().at("schedules").as_array().size(), 2u);
  EXPECT_TRUE(rest.json().at("next_cursor").is_null());

  HttpResult gone = c.Call("DELETE", "/v1/schedules/nightly");
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_EQ(c.Call("GET", "/v1/schedules/nightly").status, 404);
  EXPECT_EQ(c.Call("DELETE", "/v1/schedules/nightly").status, 404);
}

TEST_F(ScheduleHttpTest, EachTickFiresExactlyOnceAcrossAKillAndARestart) {
  HttpConn c(server_.port());
  HttpResult made = c.Call("POST", "/v1/schedules",
                           R"({"id":"beat","interval_ms":1000,"misfire":"all",
                               "task":{"type":"beat","queue":"beats"}})");
  ASSERT_EQ(made.status, 201) << made.body;
  ASSERT_TRUE(WaitFor([&] { return TicksIn("beats").size() >= 3; }));
  std::optional<TimeMs> last = ParseRfc3339(TicksIn("beats").rbegin()->first);
  ASSERT_TRUE(last.has_value());
  server_.Kill();
  // Down until two more ticks are due (tick times are wall clock): missed
  // while down and, under misfire "all", owed on restart.
  const TimeMs owed = *last + 2000;
  ASSERT_TRUE(WaitFor([&] { return SystemClock::Default()->NowMs() > owed + 200; }));
  server_.Start();
  ASSERT_TRUE(WaitFor([&] {
    std::map<std::string, int> t = TicksIn("beats");
    return t.contains(FormatRfc3339(owed)) && t.size() >= 8;
  }));
  HttpConn after(server_.port());
  ASSERT_EQ(after.Call("POST", "/v1/schedules/beat/pause").status, 200);
  std::map<std::string, int> ticks = TicksIn("beats");
  // Every tick from the first to the last, once: none twice, none lost.
  for (const auto& [tick, n] : ticks) EXPECT_EQ(n, 1) << tick;
  std::set<std::string> seen;
  for (const auto& [tick, n] : ticks) seen.insert(tick);
  json::value s = after.Call("GET", "/v1/schedules/beat").json();
  EXPECT_EQ(s.at("fired").as_int64(), static_cast<std::int64_t>(ticks.size())) << s;
  EXPECT_EQ(s.at("skipped").as_int64(), 0) << s;
  // Consecutive: the labels are RFC 3339 milliseconds a second apart, so
  // the count matches the span.
  auto ms = [](const std::string& t) {
    // ...THH:MM:SS.mmmZ: seconds of the day are enough within a minute-long test.
    return (std::stoi(t.substr(11, 2)) * 3600 + std::stoi(t.substr(14, 2)) * 60 +
            std::stoi(t.substr(17, 2))) * 1000LL + std::stoi(t.substr(20, 3));
  };
  std::int64_t span = ms(*seen.rbegin()) - ms(*seen.begin());
  if (span < 0) span += 86'400'000;  // crossed midnight
  EXPECT_EQ(span / 1000 + 1, static_cast<std::int64_t>(ticks.size()));
}

TEST_F(ScheduleHttpTest, TheSdkDrivesEveryScheduleCall) {
  ClientOptions o;
  o.server = "http://127.0.0.1:" + std::to_string(server_.port());
  o.ns = "sdk";
  auto client = Client::Create(o);
  ASSERT_OK(client);
  ScheduleSpec spec;
  spec.id = "hourly";
  spec.cron = "15 * * * *";
  spec.timezone = "America/New_York";
  spec.misfire = MisfirePolicy::kSkip;
  spec.overlap = OverlapPolicy::kCancelPrevious;
  spec.jitter_ms = 5000;
  spec.task.type = "sync";
  spec.task.queue = "sync";
  spec.task.payload = R"({"full":false})";
  spec.task.max_attempts = 2;
  auto made = (*client)->CreateSchedule(spec);
  ASSERT_OK(made);
  spec.ns = spec.task.ns = "sdk";
  EXPECT_EQ(made->spec, spec);
  ASSERT_EQ(made->next_fire_times.size(), 5u);
  for (std::size_t i = 1; i < 5; ++i) {
    // Hourly at :15, each moved by less than the 5 s jitter.
    const TimeMs gap = made->next_fire_times[i] - made->next_fire_times[i - 1];
    EXPECT_GT(gap, 3'600'000 - 5'000);
    EXPECT_LT(gap, 3'600'000 + 5'000);
  }
  EXPECT_EQ((*client)->CreateSchedule(spec).status().code(), StatusCode::kAlreadyExists);
  auto got = (*client)->GetSchedule("hourly", 2);
  ASSERT_OK(got);
  EXPECT_EQ(got->next_fire_times.size(), 2u);
  auto paused = (*client)->PauseSchedule("hourly");
  ASSERT_OK(paused);
  EXPECT_TRUE(paused->spec.paused);
  auto resumed = (*client)->ResumeSchedule("hourly");
  ASSERT_OK(resumed);
  EXPECT_FALSE(resumed->spec.paused);
  auto patched = (*client)->PatchSchedule("hourly", R"({"overlap":"skip","name":"sync"})");
  ASSERT_OK(patched);
  EXPECT_EQ(patched->spec.overlap, OverlapPolicy::kSkip);
  EXPECT_EQ(patched->spec.name, "sync");
  auto list = (*client)->ListSchedules();
  ASSERT_OK(list);
  ASSERT_EQ(list->schedules.size(), 1u);
  EXPECT_EQ(list->schedules[0].spec.id, "hourly");
  ASSERT_OK((*client)->DeleteSchedule("hourly"));
  EXPECT_EQ((*client)->GetSchedule("hourly").status().code(), StatusCode::kNotFound);
}


TEST_F(ScheduleHttpTest, TheCliAddsListsShowsPausesAndRemoves) {
  const std::string at = "--server http://127.0.0.1:" + std::to_string(server_.port());
  auto [rc, out] = RunDray("schedule add " + at +
                        " --id nightly --cron '0 2 * * *' --tz Asia/Shanghai --type report"
                        " --queue reports --payload '{\"kind\":\"daily\"}' --misfire skip"
                        " --overlap buffer_one --jitter 30s");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("cron:       0 2 * * * (Asia/Shanghai)"), std::string::npos) << out;
  EXPECT_NE(out.find("misfire skip, overlap buffer_one, jitter 30000 ms"), std::string::npos) << out;
  EXPECT_NE(out.find("next:       "), std::string::npos) << out;
  std::tie(rc, out) = RunDray("schedule add " + at + " --id bad --cron '*/0 * * * *' --type t");
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("field 'cron'"), std::string::npos) << out;
  std::tie(rc, out) = RunDray("schedule add " + at + " --id beat --every 90s --type ping");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = RunDray("schedule list " + at);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("every 90000 ms"), std::string::npos) << out;
  EXPECT_NE(out.find("0 2 * * * Asia/Shanghai"), std::string::npos) << out;
  std::tie(rc, out) = RunDray("schedule pause " + at + " beat");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("state:      paused"), std::string::npos) << out;
  std::tie(rc, out) = RunDray("schedule get " + at + " --json beat");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out).at("paused"), true);
  std::tie(rc, out) = RunDray("schedule patch " + at + " beat '{\"interval_ms\":120000}'");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("every:      120000 ms"), std::string::npos) << out;
  std::tie(rc, out) = RunDray("schedule rm " + at + " beat");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = RunDray("schedule get " + at + " beat");
  EXPECT_EQ(rc, 2) << out;
}

TEST(ParseDurationTest, ReadsUnitsAndRefusesNonsense) {
  EXPECT_EQ(*ParseDuration("250ms"), 250);
  EXPECT_EQ(*ParseDuration("30s"), 30'000);
  EXPECT_EQ(*ParseDuration("1h30m"), 5'400'000);
  EXPECT_EQ(*ParseDuration("2d"), 172'800'000);
  EXPECT_EQ(*ParseDuration("1500"), 1500);
  for (const char* bad : {"", "s", "1x", "1h30", "-5s", "99999999999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace dray::testing
