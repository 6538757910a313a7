#include "server/http/router.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <stdexcept>

namespace dray {
namespace {

using boost::beast::http::verb;

class RouterTest : public ::testing::Test {
 protected:
  // Registers a handler that records which route ran and the request it got.
  void Route(verb method, const std::string& pattern) {
    router_.Add(method, pattern, [this, pattern](HttpRequest&& req, Responder respond) {
      matched_ = pattern;
      seen_ = std::move(req);
      respond(HttpResponse::Json(200, "{}"));
    });
  }

  HttpResponse Call(verb method, const std::string& target) {
    HttpRequest req;
    req.method = method;
    req.target = target;
    req.path = PercentDecode(target.substr(0, target.find('?')), false);
    std::optional<HttpResponse> out;
    router_.Dispatch(std::move(req), [&out](HttpResponse r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "the router did not answer " << target;
    return out.value_or(HttpResponse());
  }

  static std::string ErrorCode(const HttpResponse& r) {
    return std::string(boost::json::parse(r.body).at("error").at("code").as_string());
  }

  Router router_;
  std::string matched_;
  HttpRequest seen_;
};

TEST_F(RouterTest, FillsParamsFromThePattern) {
  Route(verb::post, "/v1/tasks/{id}/complete");
  Route(verb::get, "/v1/queues/{ns}/{name}");
  EXPECT_EQ(Call(verb::post, "/v1/tasks/t-42/complete").status, 200);
  EXPECT_EQ(matched_, "/v1/tasks/{id}/complete");
  EXPECT_EQ(seen_.params.at("id"), "t-42");
  EXPECT_EQ(Call(verb::get, "/v1/queues/default/mail?x=1").status, 200);
  EXPECT_EQ(seen_.params.at("ns"), "default");
  EXPECT_EQ(seen_.params.at("name"), "mail");
}

TEST_F(RouterTest, DecodesEachSegmentOnItsOwn) {
  Route(verb::get, "/v1/tasks/{id}");
  EXPECT_EQ(Call(verb::get, "/v1/tasks/a%2Fb%20c").status, 200);
  EXPECT_EQ(seen_.params.at("id"), "a/b c");
  // Literal segments compare decoded too.
  EXPECT_EQ(Call(verb::get, "/v1/t%61sks/x").status, 200);
  EXPECT_EQ(seen_.params.at("id"), "x");
}

TEST_F(RouterTest, MatchesExactlyPerSegment) {
  Route(verb::get, "/v1/tasks/{id}");
  Route(verb::get, "/v1/tasks");
  EXPECT_EQ(Call(verb::get, "/v1/tasks//").status, 404);
  EXPECT_EQ(Call(verb::get, "/v1/tasks/").status, 404);  // {id} needs a non-empty segment
  EXPECT_EQ(Call(verb::get, "/v1/tasks/a/b").status, 404);
  EXPECT_EQ(Call(verb::get, "//v1/tasks").status, 404);
  EXPECT_EQ(Call(verb::get, "/v1/taskss").status, 404);
  EXPECT_EQ(Call(verb::get, "/v1/tasks").status, 200);
  EXPECT_EQ(matched_, "/v1/tasks");
}

TEST_F(RouterTest, UnknownPathIs404NotFound) {
  Route(verb::get, "/healthz");
  HttpResponse r = Call(verb::get, "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(ErrorCode(r), "not_found");
}

TEST_F(RouterTest, OtherMethodIs405WithAllow) {
  Route(verb::get, "/v1/queues/{name}");
  Route(verb::patch, "/v1/queues/{name}");
  Route(verb::post, "/v1/queues/special");
  HttpResponse r = Call(verb::delete_, "/v1/queues/special");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(ErrorCode(r), "method_not_allowed");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "GET, PATCH, POST");
  EXPECT_TRUE(matched_.empty());
}

TEST_F(RouterTest, LiteralSegmentBeatsParameter) {
  Route(verb::get, "/v1/tasks/{id}");
  Route(verb::get, "/v1/tasks/stats");
  Call(verb::get, "/v1/tasks/stats");
  EXPECT_EQ(matched_, "/v1/tasks/stats");
  EXPECT_TRUE(seen_.params.empty());
  Call(verb::get, "/v1/tasks/other");
  EXPECT_EQ(matched_, "/v1/tasks/{id}");
}

TEST_F(RouterTest, RootPath) {
  Route(verb::get, "/");
  EXPECT_EQ(Call(verb::get, "/").status, 200);
  EXPECT_EQ(Call(verb::get, "/x").status, 404);
}

TEST_F(RouterTest, FallsBackToTheDecodedPathWithoutATarget) {
  Route(verb::get, "/v1/tasks/{id}");
  HttpRequest req;
  req.path = "/v1/tasks/a%2F";  // taken as already decoded: not decoded again
  std::optional<HttpResponse> out;
  router_.Dispatch(std::move(req), [&out](HttpResponse r) { out = std::move(r); });
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(seen_.params.at("id"), "a%2F");
}

TEST_F(RouterTest, RejectsBadPatterns) {
  Handler h = [](HttpRequest&&, Responder r) { r(HttpResponse()); };
  EXPECT_THROW(router_.Add(verb::get, "v1/tasks", h), std::invalid_argument);
  EXPECT_THROW(router_.Add(verb::get, "/v1/{}", h), std::invalid_argument);
  EXPECT_THROW(router_.Add(verb::get, "/v1/{a}/{a}", h), std::invalid_argument);
  router_.Add(verb::get, "/v1/{a}", h);
  EXPECT_THROW(router_.Add(verb::get, "/v1/{b}", h), std::invalid_argument);
  router_.Add(verb::post, "/v1/{b}", h);
}

TEST(PercentDecodeTest, DecodesEscapesAndKeepsBrokenOnes) {
  EXPECT_EQ(PercentDecode("a%20b%2fc", false), "a b/c");
  EXPECT_EQ(PercentDecode("w%C3%B6rld", false), "w\xC3\xB6rld");
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%4", false), "%4");
  EXPECT_EQ(PercentDecode("%zz%41", false), "%zzA");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
}

TEST(ParseQueryTest, DecodesPairsAndKeepsTheLastValue) {
  std::map<std::string, std::string> q;
  ParseQuery("a=1&b=x%20y+z&flag&&c%3D=%26&a=2&=v", &q);
  EXPECT_EQ(q.at("a"), "2");
  EXPECT_EQ(q.at("b"), "x y z");
  EXPECT_EQ(q.at("flag"), "");
  EXPECT_EQ(q.at("c="), "&");
  EXPECT_EQ(q.at(""), "v");
  EXPECT_EQ(q.size(), 5u);
}

TEST(SplitPathTest, KeepsEmptySegments) {
  EXPECT_EQ(SplitPath("/a/b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(SplitPath("/"), (std::vector<std::string>{""}));
  EXPECT_EQ(SplitPath("/a/"), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(SplitPath("//a"), (std::vector<std::string>{"", "a"}));
}

TEST(HttpResponseTest, ErrorBodyIsEscapedValidJson) {
  HttpResponse r = HttpResponse::Error(422, "invalid_argument",
                                       "field \"a\\b\"\n\x01 bad \xFF utf8 \xC3\xB6");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/json");
  boost::json::value v = boost::json::parse(r.body);  // throws if not valid JSON
  EXPECT_EQ(v.at("error").at("code").as_string(), "invalid_argument");
  EXPECT_EQ(v.at("error").at("message").as_string(),
            "field \"a\\b\"\n\x01 bad \xEF\xBF\xBD utf8 \xC3\xB6");
}

TEST(HttpRequestTest, HeaderLookupIgnoresCase) {
  HttpRequest req;
  req.headers = {{"content-type", "text/plain"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(req.header("Content-Type"), "text/plain");
  EXPECT_EQ(req.header("X-A"), "1");
  EXPECT_EQ(req.header("missing"), "");
}

}  // namespace
}  // namespace dray
