#include "server/api_util.h"

#include <boost/json.hpp>

#include "core/json_codec.h"
#include "core/json_fields.h"
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
  return ReadIntText(v, "query parameter '" + name + "'", lo, hi);
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
  return RefuseUnknown(o, known, where);
}

StatusOr<std::string> StringField(const json::object& o, std::string_view name, bool required,
                                  std::size_t max_bytes, std::string_view where, Empty empty) {
  const json::value* v = FindField(o, name);
  if (!v) {
    if (required) return FieldError(FieldPath(where, name), "is required");
    return std::string();
  }
  return ReadString(*v, FieldPath(where, name), max_bytes, empty);
}

StatusOr<std::int64_t> IntField(const json::object& o, std::string_view name, std::int64_t def,
                                std::int64_t lo, std::int64_t hi, std::string_view where) {
  const json::value* v = FindField(o, name);
  if (!v) return def;
  return ReadInt(*v, FieldPath(where, name), lo, hi);
}

StatusOr<bool> BoolField(const json::object& o, std::string_view name, bool def,
                         std::string_view where) {
  const json::value* v = FindField(o, name);
  if (!v) return def;
  return ReadBool(*v, FieldPath(where, name));
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
