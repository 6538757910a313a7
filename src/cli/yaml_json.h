// YAML in, JSON out: so that `dray workflow submit` takes a workflow written
// in YAML (yaml-cpp, Debian's libyaml-cpp-dev) as well as in JSON.
//
// Mappings become objects and sequences arrays. A quoted scalar is a string;
// a plain one is read by YAML 1.2's core schema: null (`~`, `null`, empty),
// true/false, an integer, a number, else a string. Keys are strings.
// Anchors and aliases are expanded, with a bound on the nodes written (an
// alias bomb is an error, not a hang) and on the nesting depth.
#pragma once

#include <string>
#include <string_view>

#include "dray/status.h"

namespace dray {

struct YamlLimits {
  std::size_t max_nodes = 1'000'000;  // nodes written, aliases expanded
  std::size_t max_depth = 64;
};

// The document as compact JSON text; InvalidArgument naming the line and
// column of a syntax error, or the bound that was passed.
StatusOr<std::string> YamlToJson(std::string_view yaml, const YamlLimits& limits = {});

}  // namespace dray
