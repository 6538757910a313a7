#include "cli/yaml_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/status_assert.h"

namespace dray {
namespace {

namespace json = boost::json;

json::value Json(std::string_view yaml) {
  auto r = YamlToJson(yaml);
  EXPECT_OK(r);
  return r.ok() ? json::parse(*r) : json::value();
}

TEST(YamlJsonTest, AWorkflowInYamlIsTheSameAsInJson) {
  json::value got = Json(R"(
name: nightly-report
on_failure: continue
tasks:
  - name: users
    type: exec
    payload: {argv: [sh, -c, echo 1200]}
  - name: report
    type: exec
    depends_on: [users]
    priority: -2
    max_attempts: 5
    payload:
      argv: ["echo", "42"]
)");
  json::value want = json::parse(R"({"name":"nightly-report","on_failure":"continue","tasks":[
    {"name":"users","type":"exec","payload":{"argv":["sh","-c","echo 1200"]}},
    {"name":"report","type":"exec","depends_on":["users"],"priority":-2,"max_attempts":5,
     "payload":{"argv":["echo","42"]}}]})");
  EXPECT_EQ(got, want);
}

TEST(YamlJsonTest, ScalarsFollowTheCoreSchemaAndQuotesMakeStrings) {
  json::value got = Json(R"(
a: 12
b: -3.5e2
c: true
d: ~
e: "12"
f: 'true'
g: 0x1F
h: hello world
i:
j: .5
)");
  EXPECT_EQ(got.at("a"), 12);
  EXPECT_EQ(got.at("b"), -350.0);
  EXPECT_EQ(got.at("c"), true);
  EXPECT_TRUE(got.at("d").is_null());
  EXPECT_EQ(got.at("e"), "12");
  EXPECT_EQ(got.at("f"), "true");
  EXPECT_EQ(got.at("g"), "0x1F");  // not in the core schema's integers
  EXPECT_EQ(got.at("h"), "hello world");
  EXPECT_TRUE(got.at("i").is_null());
  EXPECT_EQ(got.at("j"), 0.5);
}

TEST(YamlJsonTest, ErrorsNameTheLine) {
  auto r = YamlToJson("tasks:\n  - name: a\n    depends_on: [b\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("YAML line"), std::string::npos) << r.status().message();
}

TEST(YamlJsonTest, AnAliasBombAndDeepNestingAreRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  auto r = YamlToJson(bomb);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more than"), std::string::npos);
  std::string deep(200, '[');
  deep += std::string(200, ']');
  r = YamlToJson(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("deeper"), std::string::npos);
}

}  // namespace
}  // namespace dray
