// Maps (method, path) to handlers. Patterns are literal segments and
// `{name}` segments, each matching one non-empty segment exactly.
//
// Threading: Add() before serving; Dispatch() may then run on any thread.
#pragma once

#include <string>
#include <vector>

#include "server/http/http_types.h"

namespace dray {

class Router {
 public:
  void Add(boost::beast::http::verb method, std::string pattern, Handler handler);

  // Runs the matching handler with req.params filled in. No route → 404;
  // the path exists under other methods → 405 with an Allow header.
  void Dispatch(HttpRequest&& req, Responder respond) const;

 private:
  struct Route {
    boost::beast::http::verb method;
    std::vector<std::string> segments;  // "{x}" for a parameter
    Handler handler;
  };
  static bool Match(const Route& r, const std::vector<std::string>& segs,
                    std::map<std::string, std::string>* params);
  std::vector<Route> routes_;
};

// Splits "/a/b/c" into {"a", "b", "c"}.
std::vector<std::string> SplitPath(std::string_view path);
// Decodes %XX (and '+' as space when `plus_is_space`). Invalid escapes stay as they are.
std::string PercentDecode(std::string_view s, bool plus_is_space);

}  // namespace dray
