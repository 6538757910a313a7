#include "core/dag.h"

#include <limits>
#include <set>
#include <unordered_map>

namespace dray {

namespace {

constexpr std::size_t kUnseen = std::numeric_limits<std::size_t>::max();

// Names a cycle among the nodes Kahn's algorithm could not order: walks
// from the first of them to a parent also left over until a node repeats.
// Every node left over has such a parent, so the walk ends in a cycle.
std::string DescribeCycle(std::span<const DagNode> nodes,
                          const std::vector<std::vector<std::size_t>>& parents,
                          const std::vector<bool>& ordered) {
  std::size_t v = 0;
  while (ordered[v]) ++v;
  std::vector<std::size_t> path;
  std::vector<std::size_t> seen_at(nodes.size(), kUnseen);
  while (seen_at[v] == kUnseen) {
    seen_at[v] = path.size();
    path.push_back(v);
    for (std::size_t p : parents[v]) {
      if (!ordered[p]) {
        v = p;
        break;
      }
    }
  }
  std::string text;
  for (std::size_t i = seen_at[v]; i < path.size(); ++i) {
    text.append("'").append(nodes[path[i]].name).append("' -> ");
  }
  return text.append("'").append(nodes[v].name).append("'");
}

}  // namespace

StatusOr<DagPlan> PlanDag(std::span<const DagNode> nodes) {
  const std::size_t n = nodes.size();
  if (n == 0) return InvalidArgument("a workflow needs at least one task");
  std::unordered_map<std::string_view, std::size_t> index;
  index.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!index.emplace(nodes[i].name, i).second) {
      return InvalidArgument("two tasks are named '" + std::string(nodes[i].name) + "'");
    }
  }
  DagPlan plan;
  plan.parents.resize(n);
  plan.external.resize(n);
  std::vector<std::vector<std::size_t>> children(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::set<std::string_view> seen;
    for (const std::string& dep : nodes[i].depends_on) {
      if (!seen.insert(dep).second) continue;
      if (dep == nodes[i].name) {
        return InvalidArgument("task '" + std::string(nodes[i].name) + "' depends on itself");
      }
      if (auto it = index.find(dep); it != index.end()) {
        plan.parents[i].push_back(it->second);
        children[it->second].push_back(i);
      } else {
        plan.external[i].push_back(dep);
      }
    }
  }
  // Kahn's algorithm: a node goes once its last parent has.
  plan.order.reserve(n);
  std::vector<std::size_t> indegree(n);
  for (std::size_t i = 0; i < n; ++i) {
    indegree[i] = plan.parents[i].size();
    if (indegree[i] == 0) plan.order.push_back(i);
  }
  for (std::size_t k = 0; k < plan.order.size(); ++k) {
    for (std::size_t c : children[plan.order[k]]) {
      if (--indegree[c] == 0) plan.order.push_back(c);
    }
  }
  if (plan.order.size() < n) {
    std::vector<bool> ordered(n, false);
    for (std::size_t i : plan.order) ordered[i] = true;
    return InvalidArgument("the tasks form a cycle: " + DescribeCycle(nodes, plan.parents, ordered));
  }
  return plan;
}

}  // namespace dray
