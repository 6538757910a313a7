// Helpers the HTTP API's handlers share (api.cc, schedule_api.cc): answers,
// query parameters and the checked reading of JSON bodies. Every error names
// the parameter or field at fault.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "core/json_fields.h"
#include "core/limits.h"
#include "dray/status.h"
#include "server/http/http_types.h"

namespace dray {

HttpResponse JsonResponse(int status, const boost::json::value& v);
// {"error": {...}} with the status for s; 429, 503 and 507 say Retry-After.
HttpResponse ErrorResponse(const Status& s);

// "" when absent.
std::string QueryParam(const HttpRequest& req, const std::string& name);
// ?namespace=, checked; "default" when absent.
StatusOr<std::string> Namespace(const HttpRequest& req, const Limits& limits);
// A numeric query parameter: `def` when absent or "", else read as
// ReadIntText does ("5" and "5.0" are 5).
StatusOr<std::int64_t> IntParam(const HttpRequest& req, const std::string& name, std::int64_t def,
                                std::int64_t lo, std::int64_t hi);

// A JSON object body, or an empty one for an empty body.
StatusOr<boost::json::object> ObjectBody(const HttpRequest& req);

// Fields of a body the handlers read themselves, by the rules of
// core/json_fields.h (a missing or null field is absent and gives the
// default; "" is refused unless `empty` allows it). `where` is the path of
// the object holding the field ("acks[3]"), "" for the body itself.
// InvalidArgument naming the first field of `o` not in `known`.
Status UnknownFields(const boost::json::object& o, std::initializer_list<std::string_view> known,
                     std::string_view where = "");
StatusOr<std::string> StringField(const boost::json::object& o, std::string_view name,
                                  bool required, std::size_t max_bytes,
                                  std::string_view where = "", Empty empty = Empty::kRefused);
StatusOr<std::int64_t> IntField(const boost::json::object& o, std::string_view name,
                                std::int64_t def, std::int64_t lo, std::int64_t hi,
                                std::string_view where = "");
StatusOr<bool> BoolField(const boost::json::object& o, std::string_view name, bool def,
                         std::string_view where = "");

// {"<field>": items, "next_cursor": cursor or null}: a page of a listing.
boost::json::object PageObject(std::string_view field, boost::json::array items,
                               const std::string& next_cursor);

// The answer to a DELETE: {"id": id, "deleted": true}, or the error.
std::function<void(StatusOr<bool>)> DeletedAnswer(Responder respond, std::string id);

// A route handler calling `fn` on the shared API object `api`.
template <typename Api>
Handler Bind(std::shared_ptr<Api> api, void (Api::*fn)(HttpRequest&&, Responder)) {
  return [api = std::move(api), fn](HttpRequest&& req, Responder respond) {
    ((*api).*fn)(std::move(req), std::move(respond));
  };
}

}  // namespace dray
