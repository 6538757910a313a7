// Maps (method, path) to handlers.
//
// A pattern is a '/'-separated list of segments, each either literal text or
// `{name}`, which matches exactly one non-empty segment. Matching is exact
// per segment: "/v1/tasks/" (a trailing empty segment) does not match
// "/v1/tasks", and "//x" does not match "/x". Each segment of the request
// path is percent-decoded before it is compared, so "%2F" inside an id stays
// inside that one parameter. When several routes match, the one whose first
// differing segment is literal wins ("/v1/tasks/batch" over
// "/v1/tasks/{id}"); among equals, the first added.
//
// Threading: Add() before serving; Dispatch() may then run on any number of
// threads at once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http/http_types.h"

namespace dray {

class Router {
 public:
  // Throws std::invalid_argument for a pattern that does not start with '/',
  // an empty or repeated `{name}`, or a (method, pattern) already added:
  // these are programming errors, caught at start-up.
  void Add(boost::beast::http::verb method, std::string pattern, Handler handler);

  // Runs the matching handler with req.params filled in. The path is taken
  // from req.target (raw, up to '?'); when target is empty, from req.path,
  // taken as already decoded. No route answers 404 not_found; a path that
  // exists only under other methods answers 405 method_not_allowed with an
  // Allow header listing them.
  void Dispatch(HttpRequest&& req, Responder respond) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter's name
    bool param = false;
  };
  struct Route {
    boost::beast::http::verb method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  static bool Matches(const Route& r, const std::vector<std::string>& segs);
  static bool MoreSpecific(const Route& a, const Route& b);

  std::vector<Route> routes_;
};

// Splits a path after its leading '/' on every '/', keeping empty segments:
// "/a/b" → {"a", "b"}, "/" → {""}, "/a/" → {"a", ""}.
std::vector<std::string> SplitPath(std::string_view path);

// Decodes %XX escapes (and '+' as a space when `plus_is_space`). A '%' not
// followed by two hex digits is kept as it is.
std::string PercentDecode(std::string_view s, bool plus_is_space);

// Parses "a=1&b=x%20y" into `out` (percent-decoded, '+' as space, last wins).
void ParseQuery(std::string_view query, std::map<std::string, std::string>* out);

}  // namespace dray
