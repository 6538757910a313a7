#include "server/http/router.h"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace dray {

namespace http = boost::beast::http;

std::vector<std::string> SplitPath(std::string_view path) {
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::vector<std::string> out;
  for (;;) {
    std::size_t slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
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
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
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

void ParseQuery(std::string_view query, std::map<std::string, std::string>* out) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true);
    (*out)[std::move(key)] = std::move(value);
  }
}

void Router::Add(http::verb method, std::string pattern, Handler handler) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  Route route{method, pattern, {}, std::move(handler)};
  std::set<std::string> names;
  for (std::string& s : SplitPath(pattern)) {
    Segment seg;
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
      seg.text = s.substr(1, s.size() - 2);
      seg.param = true;
      if (seg.text.empty() || !names.insert(seg.text).second) {
        throw std::invalid_argument("empty or repeated parameter in route pattern " + pattern);
      }
    } else {
      seg.text = std::move(s);
    }
    route.segments.push_back(std::move(seg));
  }
  for (const Route& r : routes_) {
    if (r.method != method || r.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < r.segments.size() && same; ++i) {
      const Segment& a = r.segments[i];
      const Segment& b = route.segments[i];
      same = a.param == b.param && (a.param || a.text == b.text);
    }
    if (same) throw std::invalid_argument("route added twice: " + pattern);
  }
  routes_.push_back(std::move(route));
}

bool Router::Matches(const Route& r, const std::vector<std::string>& segs) {
  if (r.segments.size() != segs.size()) return false;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const Segment& p = r.segments[i];
    if (p.param ? segs[i].empty() : p.text != segs[i]) return false;
  }
  return true;
}

bool Router::MoreSpecific(const Route& a, const Route& b) {
  for (std::size_t i = 0; i < a.segments.size() && i < b.segments.size(); ++i) {
    if (a.segments[i].param != b.segments[i].param) return !a.segments[i].param;
  }
  return false;
}

void Router::Dispatch(HttpRequest&& req, Responder respond) const {
  std::vector<std::string> segs;
  if (req.target.empty()) {
    segs = SplitPath(req.path);
  } else {
    std::string_view raw = req.target;
    raw = raw.substr(0, raw.find('?'));
    segs = SplitPath(raw);
    for (std::string& s : segs) s = PercentDecode(s, false);
  }

  const Route* best = nullptr;
  std::vector<http::verb> allowed;
  for (const Route& r : routes_) {
    if (!Matches(r, segs)) continue;
    if (r.method == req.method) {
      if (best == nullptr || MoreSpecific(r, *best)) best = &r;
    } else if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end()) {
      allowed.push_back(r.method);
    }
  }
  const std::string& shown = req.path.empty() ? req.target : req.path;
  if (best != nullptr) {
    for (std::size_t i = 0; i < segs.size(); ++i) {
      if (best->segments[i].param) req.params[best->segments[i].text] = std::move(segs[i]);
    }
    best->handler(std::move(req), std::move(respond));
    return;
  }
  if (!allowed.empty()) {
    std::string allow;
    for (http::verb v : allowed) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(http::to_string(v));
    }
    HttpResponse res = HttpResponse::Error(
        405, "method_not_allowed",
        std::string(http::to_string(req.method)) + " is not allowed on " + shown + "; use " + allow);
    res.headers.emplace_back("Allow", std::move(allow));
    respond(std::move(res));
    return;
  }
  respond(HttpResponse::Error(404, "not_found", "no route for " + shown));
}

}  // namespace dray
