// Requests and responses as handlers see them. Light on purpose: included by
// every handler, it pulls in nothing of Beast but the verb enum.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dray {

struct HttpRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;                          // as sent: path and query
  std::string path;                            // percent-decoded
  std::map<std::string, std::string> query;    // percent-decoded; last value wins
  std::map<std::string, std::string> params;   // from the route pattern
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string remote;                          // peer address

  // The first header with this (lower-case) name, or "".
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse Json(int status, std::string body);
  // {"error": {"code": code, "message": message}}
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
};

// Sends the answer to one request. Call it exactly once, from any thread,
// now or later (long-poll); calling it after the client left is harmless.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest&&, Responder)>;

}  // namespace dray
