#include "core/json_fields.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace json = boost::json;

namespace dray {
namespace {

json::value J(std::string_view text) { return json::parse(text); }

TEST(JsonFieldsTest, IntegersAcceptWholeNumbersWrittenAsDoubles) {
  EXPECT_EQ(*ReadInt(J("5"), "n", 0, 10), 5);
  EXPECT_EQ(*ReadInt(J("5.0"), "n", 0, 10), 5);
  EXPECT_EQ(*ReadInt(J("5e0"), "n", 0, 10), 5);
  EXPECT_EQ(*ReadInt(J("-0.0"), "n", 0, 10), 0);
  EXPECT_EQ(*ReadInt(J("1e3"), "n", 0, 1000), 1000);
}

TEST(JsonFieldsTest, IntegersRefuseFractionsTextAndOtherTypes) {
  for (const char* text : {"5.5", "\"5\"", "true", "[5]", "{}", "0.1"}) {
    auto r = ReadInt(J(text), "a.b", 0, 10);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), "field 'a.b' must be an integer") << text;
  }
}

TEST(JsonFieldsTest, IntegersOutOfRangeNameTheRange) {
  for (const char* text : {"11", "-1", "11.0", "18446744073709551615", "1e300", "-1e300"}) {
    auto r = ReadInt(J(text), "n", 0, 10);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().message(), "field 'n' must be between 0 and 10") << text;
  }
  // Beyond 2^53 a double no longer says which integer was meant.
  EXPECT_FALSE(ReadInt(J("9007199254740993.0"), "n", 0, std::int64_t{1} << 62).ok());
  EXPECT_EQ(*ReadInt(J("9007199254740993"), "n", 0, std::int64_t{1} << 62), 9007199254740993);
}

TEST(JsonFieldsTest, NumbersTakeAnyFiniteNumberInRange) {
  EXPECT_EQ(*ReadNumber(J("2"), "r", 0, 10), 2.0);
  EXPECT_EQ(*ReadNumber(J("2.5"), "r", 0, 10), 2.5);
  EXPECT_EQ(ReadNumber(J("\"2\""), "r", 0, 10).status().message(), "field 'r' must be a number");
  EXPECT_EQ(ReadNumber(J("11"), "r", 0, 10).status().message(),
            "field 'r' must be between 0 and 10");
  EXPECT_EQ(ReadNumber(J("0.5"), "r", 1, 100).status().message(),
            "field 'r' must be between 1 and 100");
}

TEST(JsonFieldsTest, EmptyStringsAreRefusedUnlessAllowed) {
  EXPECT_EQ(ReadString(J("\"\""), "id", 10).status().message(), "field 'id' must not be empty");
  EXPECT_EQ(*ReadString(J("\"\""), "labels.a", 10, Empty::kAllowed), "");
  EXPECT_EQ(*ReadString(J("\"abc\""), "id", 10), "abc");
  EXPECT_EQ(ReadString(J("\"abcdef\""), "id", 5).status().message(),
            "field 'id' is longer than 5 bytes");
  EXPECT_EQ(ReadString(J("5"), "id", 5).status().message(), "field 'id' must be a string");
}

TEST(JsonFieldsTest, BooleansAreTrueOrFalseOnly) {
  EXPECT_TRUE(*ReadBool(J("true"), "p"));
  EXPECT_FALSE(*ReadBool(J("false"), "p"));
  for (const char* text : {"1", "\"true\"", "0"}) {
    EXPECT_EQ(ReadBool(J(text), "p").status().message(), "field 'p' must be true or false");
  }
}

TEST(JsonFieldsTest, NullIsAbsent) {
  json::object o = J(R"({"a": null, "b": 1})").as_object();
  EXPECT_EQ(FindField(o, "a"), nullptr);
  EXPECT_EQ(FindField(o, "missing"), nullptr);
  ASSERT_NE(FindField(o, "b"), nullptr);
  EXPECT_EQ(FindField(o, "b")->as_int64(), 1);
}

TEST(JsonFieldsTest, UnknownFieldsAreNamedWithTheirPath) {
  json::object o = J(R"({"id": "x", "colour": "red"})").as_object();
  EXPECT_TRUE(RefuseUnknown(o, {"id", "colour"}).ok());
  Status s = RefuseUnknown(o, {"id"}, "acks[2]");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "field 'acks[2].colour' is unknown");
  EXPECT_EQ(RefuseUnknown(o, {"id"}).message(), "field 'colour' is unknown");
}

TEST(JsonFieldsTest, PathsJoinWithDotsAndIndexes) {
  EXPECT_EQ(FieldPath("", "type"), "type");
  EXPECT_EQ(FieldPath("task", "type"), "task.type");
  EXPECT_EQ(FieldPath(IndexPath("tasks", 3), "backoff"), "tasks[3].backoff");
}

TEST(JsonFieldsTest, IntegerTextFollowsTheSameRule) {
  EXPECT_EQ(*ReadIntText("5", "query parameter 'limit'", 1, 10), 5);
  EXPECT_EQ(*ReadIntText("5.0", "query parameter 'limit'", 1, 10), 5);
  EXPECT_EQ(*ReadIntText("-3", "x", -5, 10), -3);
  for (const char* text : {"5.5", "five", "", "11", "0", "5 ", "inf", "nan", "1e400"}) {
    auto r = ReadIntText(text, "query parameter 'limit'", 1, 10);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().message(), "query parameter 'limit' must be an integer between 1 and 10")
        << text;
  }
}

}  // namespace
}  // namespace dray
