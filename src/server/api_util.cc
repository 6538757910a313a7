#include "server/api_util.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "core/json_codec.h"
#include "core/json_writer.h"

namespace json = boost::json;

namespace dray {

HttpResponse JsonResponse(int status, const json::value& v) {
  return HttpResponse::Json(status, JsonText(v));
}

HttpResponse ErrorResponse(const Status& s) {
  HttpResponse r = HttpResponse::Json(HttpStatusFor(s.code()), ErrorJson(s));
  if (s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kUnavailable ||
      s.code() == StatusCode::kOutOfSpace) {
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

std::string QueryParam(const HttpRequest& req, const std::string& name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? std::string() : it->second;
}

StatusOr<std::string> Namespace(const HttpRequest& req, const Limits& limits) {
  std::string ns = QueryParam(req, "namespace");
  if (ns.empty()) return std::string("default");
  DRAY_RETURN_IF_ERROR(ValidateName("namespace", ns, limits));
  return ns;
}

StatusOr<std::int64_t> IntParam(const HttpRequest& req, const std::string& name, std::int64_t def,
                                std::int64_t lo, std::int64_t hi) {
  std::string v = QueryParam(req, name);
  if (v.empty()) return def;
  std::int64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x < lo || x > hi) {
    return InvalidArgument("query parameter '" + name + "' must be an integer between " +
                           std::to_string(lo) + " and " + std::to_string(hi));
  }
  return x;
}

// A JSON object body, or an empty one for an empty body.
StatusOr<json::object> ObjectBody(const HttpRequest& req) {
  if (req.body.empty()) return json::object();
  auto v = ParseJson(req.body);
  if (!v.ok()) return v.status();
  if (!v->is_object()) return InvalidArgument("request body must be a JSON object");
  return std::move(v->as_object());
}

Status UnknownFields(const json::object& o, std::initializer_list<std::string_view> known,
                     std::string_view where) {
  for (const auto& [k, v] : o) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string f(where);
      if (!f.empty()) f += ".";
      return InvalidArgument("unknown field '" + f + std::string(k) + "'");
    }
  }
  return Status::Ok();
}

StatusOr<std::string> StringField(const json::object& o, std::string_view name, bool required,
                                  std::size_t max_bytes, std::string_view where) {
  std::string f(where);
  if (!f.empty()) f += ".";
  f += name;
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) {
    if (required) return InvalidArgument("field '" + f + "' is required");
    return std::string();
  }
  if (!v->is_string()) return InvalidArgument("field '" + f + "' must be a string");
  if (v->get_string().size() > max_bytes) {
    return InvalidArgument("field '" + f + "' is longer than " + std::to_string(max_bytes) +
                           " bytes");
  }
  return std::string(v->get_string());
}

StatusOr<std::int64_t> IntField(const json::object& o, std::string_view name, std::int64_t def,
                                std::int64_t lo, std::int64_t hi) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return def;
  std::int64_t x;
  if (v->is_int64()) {
    x = v->get_int64();
  } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(hi)) {
    x = static_cast<std::int64_t>(v->get_uint64());
  } else {
    return InvalidArgument("field '" + std::string(name) + "' must be an integer between " +
                           std::to_string(lo) + " and " + std::to_string(hi));
  }
  if (x < lo || x > hi) {
    return InvalidArgument("field '" + std::string(name) + "' must be between " +
                           std::to_string(lo) + " and " + std::to_string(hi));
  }
  return x;
}

StatusOr<bool> BoolField(const json::object& o, std::string_view name, bool def,
                         std::string_view where) {
  const json::value* v = o.if_contains(name);
  if (!v || v->is_null()) return def;
  if (!v->is_bool()) {
    std::string f(where);
    if (!f.empty()) f += ".";
    return InvalidArgument("field '" + f + std::string(name) + "' must be true or false");
  }
  return v->get_bool();
}

json::object PageObject(std::string_view field, json::array items,
                        const std::string& next_cursor) {
  json::object o;
  o[field] = std::move(items);
  o["next_cursor"] = next_cursor.empty() ? json::value(nullptr) : json::value(next_cursor);
  return o;
}

std::function<void(StatusOr<bool>)> DeletedAnswer(Responder respond, std::string id) {
  return [respond = std::move(respond), id = std::move(id)](StatusOr<bool> r) {
    if (!r.ok()) return respond(ErrorResponse(r.status()));
    respond(JsonResponse(200, json::object{{"id", id}, {"deleted", true}}));
  };
}

}  // namespace dray
