// A workflow's dependency graph, checked and ordered before anything of it
// is created (docs/workflows.md). Pure: no engine, no store, no clock.
//
// The nodes are named; a dependency that names a node of the graph is an
// edge, any other is external (a task id, which only the caller can look
// up) and is handed back as it was written. A node naming the same
// dependency twice has it once.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dray/status.h"

namespace dray {

struct DagNode {
  std::string_view name;
  std::span<const std::string> depends_on;
};

struct DagPlan {
  // Per node, the indexes of the nodes it depends on, in the order named.
  std::vector<std::vector<std::size_t>> parents;
  // Per node, its dependencies that name no node (views into the input),
  // in the order named.
  std::vector<std::vector<std::string_view>> external;
  // Every node once, each after all of its parents; nodes that could go in
  // either order keep the input's order (Kahn's algorithm, FIFO). So a
  // graph without edges comes back as 0, 1, 2, ...
  std::vector<std::size_t> order;
};

// InvalidArgument, naming the culprit, for: no nodes ("a workflow needs at
// least one task"), two nodes of one name ("two tasks are named 'x'"), a
// node depending on itself ("task 'x' depends on itself") and a cycle,
// named as a path that closes ("the tasks form a cycle: 'a' -> 'b' -> 'a'").
// O(nodes + dependencies).
StatusOr<DagPlan> PlanDag(std::span<const DagNode> nodes);

}  // namespace dray
