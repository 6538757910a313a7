#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstring>
#include <limits>
#include <random>

#include "core/ids.h"
#include "core/json_codec.h"
#include "core/json_writer.h"
#include "core/time_format.h"
#include "support/status_assert.h"

namespace dray {
namespace {

StatusOr<SubmitRequest> Decode(std::string_view body, const Limits& limits = {}) {
  auto v = ParseJson(body);
  if (!v.ok()) return v.status();
  return DecodeSubmit(*v, limits);
}

TEST(TimeFormatTest, RoundTripsMilliseconds) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123Z"), 1'700'000'000'123);
  EXPECT_EQ(ParseRfc3339("2023-11-15T00:13:20.123+02:00"), 1'700'000'000'123);
  EXPECT_EQ(ParseRfc3339("2024-02-29T00:00:00Z"), 1'709'164'800'000);
}

TEST(TimeFormatTest, RejectsImpossibleDates) {
  EXPECT_FALSE(ParseRfc3339("2023-04-31T00:00:00Z"));
  EXPECT_FALSE(ParseRfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(ParseRfc3339("2023-13-01T00:00:00Z"));
  EXPECT_FALSE(ParseRfc3339("2023-01-01T00:00:00"));
  EXPECT_FALSE(ParseRfc3339("yesterday"));
}

TEST(IdsTest, AreUuidV7AndSortInCreationOrder) {
  IdGenerator gen;
  std::string prev;
  for (int i = 0; i < 10'000; ++i) {
    std::string id = gen.Next(1'700'000'000'000 + i / 5000);  // many per ms
    ASSERT_TRUE(IsValidId(id)) << id;
    ASSERT_EQ(id[14], '7');
    ASSERT_LT(prev, id);
    prev = id;
  }
  EXPECT_GE(IdTimestamp(prev), 1'700'000'000'001);
}

TEST(IdsTest, NeverGoBackwardsWhenTheClockDoes) {
  IdGenerator gen;
  std::string a = gen.Next(2'000'000'000'000);
  std::string b = gen.Next(1'000'000'000'000);
  EXPECT_LT(a, b);
}

TEST(IdsTest, BytesRoundTripAndOnlyCanonicalTextParses) {
  IdGenerator gen;
  for (int i = 0; i < 100; ++i) {
    std::string id = gen.Next(1'700'000'000'000 + i);
    auto b = ParseId(id);
    ASSERT_TRUE(b.has_value()) << id;
    EXPECT_EQ(FormatId(*b), id);
  }
  EXPECT_EQ(FormatId(*ParseId("00000000-0000-0000-0000-000000000000")),
            "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ((*ParseId("0123abcd-ef01-7000-8000-00000000ffff"))[15], 0xff);
  for (const char* bad : {"", "a", "0123ABCD-ef01-7000-8000-00000000ffff",
                          "0123abcd-ef01-7000-8000-00000000fff", "0123abcdef01-7000-8000-00000000ffff-",
                          "0123abcd-ef01-7000-8000-00000000fffg"}) {
    EXPECT_FALSE(ParseId(bad).has_value()) << bad;
  }
}

TEST(JsonWriterTest, WritesDoublesAsPeopleDo) {
  EXPECT_EQ(JsonText(boost::json::value(2.0)), "2.0");
  EXPECT_EQ(JsonText(boost::json::value(0.2)), "0.2");
  EXPECT_EQ(JsonText(boost::json::value(0.0)), "0.0");
  EXPECT_EQ(JsonText(boost::json::value(-0.0)), "-0.0");
  EXPECT_EQ(JsonText(boost::json::value(1e300)), "1e+300");
  EXPECT_EQ(JsonText(boost::json::value(2.5e-7)), "2.5e-07");
  EXPECT_EQ(JsonText(boost::json::value(std::numeric_limits<double>::infinity())), "null");
  EXPECT_EQ(FormatDouble(2.0), "2");
  EXPECT_EQ(FormatDouble(0.5), "0.5");
  // Integers stay integers, to the last digit of either 64-bit kind.
  EXPECT_EQ(JsonText(boost::json::value(std::int64_t{-9'223'372'036'854'775'807} - 1)),
            "-9223372036854775808");
  EXPECT_EQ(JsonText(boost::json::value(std::uint64_t{18'446'744'073'709'551'615u})),
            "18446744073709551615");
}

TEST(JsonWriterTest, EveryDoubleReadsBackAsTheSameDouble) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100'000; ++i) {
    std::uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    const std::string text = JsonText(boost::json::value(d));
    ASSERT_EQ(text.find('E'), std::string::npos) << text;
    boost::json::value back = boost::json::parse(text);
    ASSERT_TRUE(back.is_double()) << text;
    // Exact with a correctly rounding reader (Boost.JSON 1.81's may be one
    // ulp off: see fuzz/json_fuzz.cc).
    ASSERT_EQ(std::strtod(text.c_str(), nullptr), d) << text;
  }
}

TEST(JsonWriterTest, WritesWhatBoostReadsBackUnchanged) {
  const char* doc =
      R"({"s":"a\"b\\c\n\u0001\u00e9","n":null,"t":true,"f":false,"i":-3,"u":18446744073709551615,)"
      R"("d":[1.5,2.0,{"x":[]}],"o":{}})";
  boost::json::value v = boost::json::parse(doc);
  const std::string text = JsonText(v);
  EXPECT_EQ(boost::json::parse(text), v) << text;
  EXPECT_EQ(text,
            "{\"s\":\"a\\\"b\\\\c\\n\\u0001\u00e9\",\"n\":null,\"t\":true,\"f\":false,"
            "\"i\":-3,\"u\":18446744073709551615,\"d\":[1.5,2.0,{\"x\":[]}],\"o\":{}}");
}

TEST(CodecTest, DecodesAFullSpec) {
  auto r = Decode(R"({"type":"email","queue":"mail","namespace":"acme","payload":{"to":"a@b"},
    "priority":-5,"delay_ms":1500,"max_attempts":7,"backoff":{"initial_ms":10,"max_ms":100,
    "multiplier":3,"jitter":0},"timeout_ms":2000,"lease_ms":5000,"key":"k1","labels":{"team":"x"}})");
  ASSERT_OK(r);
  ASSERT_FALSE(r->batch);
  const TaskSpec& s = r->specs.at(0);
  EXPECT_EQ(s.type, "email");
  EXPECT_EQ(s.queue, "mail");
  EXPECT_EQ(s.ns, "acme");
  EXPECT_EQ(s.payload, R"({"to":"a@b"})");
  EXPECT_EQ(s.priority, -5);
  EXPECT_EQ(s.delay_ms, 1500);
  EXPECT_EQ(s.max_attempts, 7);
  EXPECT_EQ(s.backoff, (Backoff{10, 100, 3.0, 0.0}));
  EXPECT_EQ(s.timeout_ms, 2000);
  EXPECT_EQ(s.lease_ms, 5000);
  EXPECT_EQ(s.key, "k1");
  EXPECT_EQ(s.labels.at("team"), "x");
}

TEST(CodecTest, BadInputNamesTheFieldAndReason) {
  struct Case {
    const char* body;
    StatusCode code;
    const char* mentions;
  } cases[] = {
      {"{", StatusCode::kMalformed, "JSON"},
      {"[]", StatusCode::kInvalidArgument, "body"},
      {"{}", StatusCode::kInvalidArgument, "'type' is required"},
      {R"({"type":5})", StatusCode::kInvalidArgument, "'type' must be a string"},
      {R"({"type":"a","priority":"high"})", StatusCode::kInvalidArgument, "'priority'"},
      {R"({"type":"a","priorty":1})", StatusCode::kInvalidArgument, "field 'priorty' is unknown"},
      {R"({"type":"a","queue":"no spaces"})", StatusCode::kInvalidArgument, "'queue'"},
      {R"({"type":"a","run_at":"2023-04-31T00:00:00Z"})", StatusCode::kInvalidArgument, "run_at"},
      {R"({"type":"a","run_at":"2030-01-01T00:00:00Z","delay_ms":5})", StatusCode::kInvalidArgument, "exclude"},
      {R"({"type":"a","max_attempts":0})", StatusCode::kInvalidArgument, "'max_attempts'"},
      {R"({"type":"a","backoff":{"initial_ms":10,"max_ms":5}})", StatusCode::kInvalidArgument, "max_ms"},
      {R"({"tasks":[]})", StatusCode::kInvalidArgument, "'tasks'"},
      {R"({"tasks":[{"type":"a"},{"type":1}]})", StatusCode::kInvalidArgument, "tasks[1].type"},
      {R"({"type":"a","resources":{"cpu":-1}})", StatusCode::kInvalidArgument, "'resources.cpu'"},
      {R"({"type":"a","resources":{"c p u":1}})", StatusCode::kInvalidArgument, "'resources.c p u'"},
      {R"({"type":"a","resources":[1]})", StatusCode::kInvalidArgument, "'resources' must be an object"},
      {R"({"type":"a","require":[{"key":"z","op":"near"}]})", StatusCode::kInvalidArgument, "require[0].op"},
      {R"({"type":"a","require":[{"key":"z","op":"in"}]})", StatusCode::kInvalidArgument, "needs a value"},
      {R"({"type":"a","require":[{"key":"z","op":"exists","values":["x"]}]})", StatusCode::kInvalidArgument, "takes no values"},
      {R"({"type":"a","require":[{"key":"z","values":["x"],"weight":2}]})", StatusCode::kInvalidArgument, "has no weight"},
      {R"({"type":"a","require":[{"op":"exists"}]})", StatusCode::kInvalidArgument, "label key"},
      {R"({"type":"a","require":[7]})", StatusCode::kInvalidArgument, "require[0]"},
      {R"({"type":"a","prefer":[{"key":"z","value":"x","weight":0}]})", StatusCode::kInvalidArgument, "prefer[0].weight"},
  };
  for (const Case& c : cases) {
    auto r = Decode(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), c.code) << c.body;
    EXPECT_NE(r.status().message().find(c.mentions), std::string::npos)
        << c.body << " -> " << r.status().message();
  }
}

TEST(CodecTest, EnforcesSizeBounds) {
  Limits limits;
  limits.max_payload_bytes = 10;
  limits.max_batch = 2;
  auto big = Decode(R"({"type":"a","payload":"0123456789abcdef"})", limits);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(HttpStatusFor(big.status().code()), 413);
  auto many = Decode(R"({"tasks":[{"type":"a"},{"type":"a"},{"type":"a"}]})", limits);
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(HttpStatusFor(many.status().code()), 413);
}

TEST(CodecTest, TaskRoundTripsThroughJson) {
  Task t;
  t.id = "0190a0b0-0000-7000-8000-000000000001";
  t.ns = "acme";
  t.queue = "q";
  t.type = "x";
  t.payload = R"({"a":[1,2]})";
  t.state = TaskState::kRunning;
  t.attempts = 1;
  t.max_attempts = 4;
  t.run_at = 1'700'000'000'000;
  t.created_at = 1'700'000'000'000;
  t.updated_at = 1'700'000'000'001;
  t.lease_expires_at = 1'700'000'030'000;
  t.worker = "w1";
  t.labels = {{"a", "b"}};
  t.history.push_back(Attempt{1, "w1", 1'700'000'000'001, 0, AttemptOutcome::kRunning, ""});
  auto back = DecodeTask(boost::json::parse(TaskToJson(t)));
  ASSERT_OK(back);
  EXPECT_EQ(back->id, t.id);
  EXPECT_EQ(back->payload, t.payload);
  EXPECT_EQ(back->state, t.state);
  EXPECT_EQ(back->history, t.history);
  EXPECT_EQ(back->labels, t.labels);
  EXPECT_EQ(back->lease_expires_at, t.lease_expires_at);
  EXPECT_TRUE(back->placement.empty());
}

TEST(CodecTest, PlacementDecodesShortFormsAndRoundTrips) {
  auto spec = Decode(R"({"type":"a","resources":{"cpu":2000,"memory_mb":0,"licenses":1},
      "require":["zone=a","spot!=1","gpu_model","!preemptible",{"key":"arch","values":["x","y"]}],
      "prefer":[{"key":"zone","value":"b","weight":9},"ssd"],"affinity_key":"user-1"})");
  ASSERT_OK(spec);
  const Placement& p = spec->specs[0].placement;
  EXPECT_EQ(p.resources, (std::map<std::string, std::int64_t>{{"cpu", 2000}, {"licenses", 1}}));
  ASSERT_EQ(p.require.size(), 5u);
  EXPECT_EQ(p.require[0], (LabelSelector{"zone", SelectorOp::kEquals, {"a"}}));
  EXPECT_EQ(p.require[1], (LabelSelector{"spot", SelectorOp::kNotIn, {"1"}}));
  EXPECT_EQ(p.require[2], (LabelSelector{"gpu_model", SelectorOp::kExists, {}}));
  EXPECT_EQ(p.require[3], (LabelSelector{"preemptible", SelectorOp::kNotExists, {}}));
  EXPECT_EQ(p.require[4], (LabelSelector{"arch", SelectorOp::kIn, {"x", "y"}}));
  ASSERT_EQ(p.prefer.size(), 2u);
  EXPECT_EQ(p.prefer[0].weight, 9);
  EXPECT_EQ(p.prefer[1].weight, 1);
  EXPECT_EQ(p.affinity_key, "user-1");
  EXPECT_TRUE(p.require[1].Matches({{"spot", "0"}}));
  EXPECT_TRUE(p.require[1].Matches({}));
  EXPECT_FALSE(p.require[1].Matches({{"spot", "1"}}));
  // The spec as the SDK sends it decodes to the same; a task answer too.
  auto again = DecodeTaskSpec(EncodeTaskSpec(spec->specs[0]), Limits{});
  ASSERT_OK(again);
  EXPECT_EQ(again->placement, p);
  Task t;
  t.id = "0190a0b0-0000-7000-8000-000000000001";
  t.type = "a";
  t.placement = p;
  t.placement.worker = "w-2";
  t.placement.shard_index = 1;
  t.placement.shard_total = 3;
  auto back = DecodeTask(boost::json::parse(TaskToJson(t)));
  ASSERT_OK(back);
  EXPECT_EQ(back->placement, t.placement);
}

// Found by fuzz/json_fuzz: a task answer with "attempts": 1e300 made the
// double-to-int cast undefined.
TEST(CodecTest, JsonIntClampsDoublesOutsideInt64) {
  auto o = boost::json::parse(R"({"a":1e300,"b":-1e300,"c":42.9,"d":"x"})").as_object();
  EXPECT_EQ(JsonInt(o, "a"), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(JsonInt(o, "b"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(JsonInt(o, "c"), 42);
  EXPECT_EQ(JsonInt(o, "d"), 0);
  EXPECT_EQ(JsonInt(o, "missing"), 0);
}

}  // namespace
}  // namespace dray

namespace dray {
namespace {

StatusOr<ScheduleSpec> DecodeSchedule(std::string_view body) {
  auto v = ParseJson(body);
  if (!v.ok()) return v.status();
  return DecodeScheduleSpec(*v, Limits{});
}

TEST(ScheduleSpecTest, DecodesEveryField) {
  auto s = DecodeSchedule(R"({"name":"nightly","cron":"0 2 * * *","timezone":"Asia/Shanghai",
      "task":{"type":"report","queue":"q","payload":{"day":1},"delay_ms":5},
      "misfire":"all","overlap":"buffer_one","jitter_ms":1000,
      "start_at":"2026-12-01T00:00:00Z","end_at":"2027-12-01T00:00:00Z","paused":true,"max_catchup":7})");
  ASSERT_OK(s);
  EXPECT_EQ(s->name, "nightly");
  EXPECT_EQ(s->cron, "0 2 * * *");
  EXPECT_EQ(s->timezone, "Asia/Shanghai");
  EXPECT_EQ(s->task.type, "report");
  EXPECT_EQ(s->task.delay_ms, 5);
  EXPECT_EQ(s->misfire, MisfirePolicy::kAll);
  EXPECT_EQ(s->overlap, OverlapPolicy::kBufferOne);
  EXPECT_EQ(s->jitter_ms, 1000);
  EXPECT_TRUE(s->paused);
  EXPECT_EQ(s->max_catchup, 7);
  auto i = DecodeSchedule(R"({"interval_ms":30000,"task":{"type":"ping"}})");
  ASSERT_OK(i);
  EXPECT_EQ(i->interval_ms, 30000);
  EXPECT_EQ(i->misfire, MisfirePolicy::kOnce);  // the defaults
  EXPECT_EQ(i->overlap, OverlapPolicy::kAllow);
}

TEST(ScheduleSpecTest, RefusesWhatCannotRunNamingIt) {
  const std::pair<const char*, const char*> bad[] = {
      {R"({"cron":"*/0 * * * *","task":{"type":"t"}})", "field 'cron'"},
      {R"({"cron":"0 0 31 4 *","task":{"type":"t"}})", "none of its months"},
      {R"({"cron":"0 0 * * *","timezone":"Mars/Base","task":{"type":"t"}})", "field 'timezone'"},
      {R"({"task":{"type":"t"}})", "either 'cron' or 'interval_ms'"},
      {R"({"cron":"* * * * *","interval_ms":1000,"task":{"type":"t"}})", "either"},
      {R"({"interval_ms":999,"task":{"type":"t"}})", "interval_ms"},
      {R"({"interval_ms":1000,"timezone":"UTC","task":{"type":"t"}})", "'cron' only"},
      {R"({"interval_ms":1000})", "'task' is required"},
      {R"({"interval_ms":1000,"task":{"type":"t","key":"k"}})", "task.key"},
      {R"({"interval_ms":1000,"task":{"type":"t","run_at":"2026-12-01T00:00:00Z"}})", "task.run_at"},
      {R"({"interval_ms":1000,"task":{"type":"t","namespace":"x"}})", "task.namespace"},
      {R"({"interval_ms":1000,"task":{"type":"t"},"jitter_ms":1000})", "jitter_ms"},
      {R"({"interval_ms":1000,"task":{"type":"t"},"misfire":"sometimes"})", "misfire"},
      {R"({"interval_ms":1000,"task":{"type":"t"},"overlap":"queue"})", "overlap"},
      {R"({"interval_ms":1000,"task":{"type":"t"},"start_at":"2027-01-01T00:00:00Z","end_at":"2026-01-01T00:00:00Z"})", "end_at"},
      {R"({"interval_ms":1000,"task":{"type":"t"},"every":"day"})", "field 'every' is unknown"},
  };
  for (const auto& [body, mention] : bad) {
    auto s = DecodeSchedule(body);
    ASSERT_FALSE(s.ok()) << body;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(s.status().message().find(mention), std::string::npos)
        << body << " -> " << s.status().message();
  }
}

namespace json = boost::json;

TEST(TriggerCodecTest, MatchPayloadComparesPathsByValue) {
  const json::value p = json::parse(
      R"({"currency":"EUR","n":2,"customer":{"tier":2.0,"tags":["a"]},"flag":true,"none":null})");
  using Match = std::vector<std::pair<std::string, std::string>>;
  EXPECT_TRUE(MatchPayload(p, Match{}));
  EXPECT_TRUE(MatchPayload(p, Match{{"currency", R"("EUR")"}, {"customer.tier", "2"}}));
  EXPECT_TRUE(MatchPayload(p, Match{{"n", "2.0"}, {"flag", "true"}, {"none", "null"}}));
  EXPECT_TRUE(MatchPayload(p, Match{{"customer.tags", R"(["a"])"}}));
  EXPECT_FALSE(MatchPayload(p, Match{{"currency", R"("USD")"}}));
  EXPECT_FALSE(MatchPayload(p, Match{{"currency", R"("EUR")"}, {"n", "3"}}));
  EXPECT_FALSE(MatchPayload(p, Match{{"customer.missing", "1"}}));
  EXPECT_FALSE(MatchPayload(p, Match{{"currency.deeper", "1"}}));
  EXPECT_FALSE(MatchPayload(p, Match{{"n", R"("2")"}}));  // a string is not a number
  EXPECT_FALSE(MatchPayload(json::parse("[1]"), Match{{"0", "1"}}));
}

TEST(TriggerCodecTest, ATriggerRoundTripsAndALoopIsRefused) {
  Limits limits;
  auto spec = DecodeTriggerSpec(
      json::parse(R"({"id":"t1","name":"n","on":{"task":{"queue":"payments","type":"charge",)"
                  R"("states":["failed","cancelled"]}},"task":{"type":"alert","queue":"alerts"},)"
                  R"("paused":true})"),
      limits);
  ASSERT_OK(spec);
  Trigger t;
  t.spec = *spec;
  t.created_at = 1'700'000'000'000;
  t.updated_at = 1'700'000'000'001;
  auto back = DecodeTrigger(EncodeTrigger(t));
  ASSERT_OK(back);
  EXPECT_EQ(*back, t);
  // The same queue as the trigger's filter, and any type: it would fire itself.
  auto loop = DecodeTriggerSpec(
      json::parse(R"({"on":{"task":{"queue":"q","states":["succeeded"]}},"task":{"type":"t","queue":"q"}})"),
      limits);
  EXPECT_EQ(loop.status().code(), StatusCode::kInvalidArgument);
  // Another type on the same queue is no loop.
  EXPECT_TRUE(DecodeTriggerSpec(
                  json::parse(R"({"on":{"task":{"queue":"q","type":"a","states":["succeeded"]}},)"
                              R"("task":{"type":"b","queue":"q"}})"),
                  limits)
                  .ok());
}

}  // namespace
}  // namespace dray
