#include "cli/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <charconv>
#include <regex>

#include "core/json_writer.h"

namespace dray {
namespace {

namespace json = boost::json;

// YAML 1.2 core schema, for plain (unquoted) scalars.
json::value PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, kInt)) {
    std::int64_t v = 0;
    const char* b = s.data() + (s[0] == '+' ? 1 : 0);
    auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  if (std::regex_match(s, kFloat)) {
    double v = 0;
    const char* b = s.data() + (s[0] == '+' ? 1 : 0);
    auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  return json::string(s);
}

class Converter {
 public:
  explicit Converter(const YamlLimits& limits) : limits_(limits) {}

  StatusOr<json::value> Convert(const YAML::Node& node, std::size_t depth) {
    if (++nodes_ > limits_.max_nodes) {
      return InvalidArgument("the YAML document expands to more than " +
                             std::to_string(limits_.max_nodes) + " nodes");
    }
    if (depth > limits_.max_depth) {
      return InvalidArgument("the YAML document nests deeper than " +
                             std::to_string(limits_.max_depth) + " levels");
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return json::value(nullptr);
      case YAML::NodeType::Scalar:
        // "!" is the tag of a quoted (non-plain) scalar.
        if (node.Tag() == "!") return json::value(json::string(node.Scalar()));
        return PlainScalar(node.Scalar());
      case YAML::NodeType::Sequence: {
        json::array a;
        for (const YAML::Node& item : node) {
          auto v = Convert(item, depth + 1);
          if (!v.ok()) return v.status();
          a.push_back(std::move(*v));
        }
        return json::value(std::move(a));
      }
      case YAML::NodeType::Map: {
        json::object o;
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            return InvalidArgument("line " + std::to_string(kv.first.Mark().line + 1) +
                                   ": a mapping key must be a scalar");
          }
          auto v = Convert(kv.second, depth + 1);
          if (!v.ok()) return v.status();
          o[kv.first.Scalar()] = std::move(*v);
        }
        return json::value(std::move(o));
      }
    }
    return json::value(nullptr);
  }

 private:
  const YamlLimits& limits_;
  std::size_t nodes_ = 0;
};

}  // namespace

StatusOr<std::string> YamlToJson(std::string_view yaml, const YamlLimits& limits) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return InvalidArgument("YAML line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  try {
    Converter c(limits);
    auto v = c.Convert(root, 0);
    if (!v.ok()) return v.status();
    return JsonText(*v);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("YAML: ") + e.what());
  }
}

}  // namespace dray
