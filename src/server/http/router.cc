#include "server/http/router.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace dray {

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return std::string();
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  boost::json::object e{{"code", code}, {"message", message}};
  return Json(status, boost::json::serialize(boost::json::object{{"error", std::move(e)}}));
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 &&
        hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void Router::Add(boost::beast::http::verb method, std::string pattern, Handler handler) {
  routes_.push_back(Route{method, SplitPath(pattern), std::move(handler)});
}

bool Router::Match(const Route& r, const std::vector<std::string>& segs,
                   std::map<std::string, std::string>* params) {
  if (r.segments.size() != segs.size()) return false;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const std::string& p = r.segments[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      if (segs[i].empty()) return false;
      if (params) (*params)[p.substr(1, p.size() - 2)] = segs[i];
    } else if (p != segs[i]) {
      return false;
    }
  }
  return true;
}

void Router::Dispatch(HttpRequest&& req, Responder respond) const {
  std::vector<std::string> segs = SplitPath(req.path);
  std::string allow;
  for (const Route& r : routes_) {
    if (!Match(r, segs, nullptr)) continue;
    if (r.method == req.method) {
      Match(r, segs, &req.params);
      r.handler(std::move(req), std::move(respond));
      return;
    }
    if (!allow.empty()) allow += ", ";
    allow += std::string(boost::beast::http::to_string(r.method));
  }
  if (!allow.empty()) {
    HttpResponse res = HttpResponse::Error(405, "method_not_allowed",
                                           "use " + allow + " on " + req.path);
    res.headers.emplace_back("Allow", allow);
    return respond(std::move(res));
  }
  respond(HttpResponse::Error(404, "not_found", "no route for " + req.path));
}

}  // namespace dray
