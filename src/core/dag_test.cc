#include "core/dag.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "support/status_assert.h"

namespace dray {
namespace {

// Nodes as written in a test: a name and its dependencies.
struct Graph {
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> deps;

  Graph& Add(std::string name, std::vector<std::string> on = {}) {
    names.push_back(std::move(name));
    deps.push_back(std::move(on));
    return *this;
  }
  std::vector<DagNode> Nodes() const {
    std::vector<DagNode> nodes;
    for (std::size_t i = 0; i < names.size(); ++i) nodes.push_back(DagNode{names[i], deps[i]});
    return nodes;
  }
};

StatusOr<DagPlan> Plan(const Graph& g) {
  std::vector<DagNode> nodes = g.Nodes();
  return PlanDag(nodes);
}

std::vector<std::string> NamesInOrder(const Graph& g, const DagPlan& plan) {
  std::vector<std::string> out;
  for (std::size_t i : plan.order) out.push_back(g.names[i]);
  return out;
}

// Every node once, each after its parents.
void ExpectTopological(const DagPlan& plan, std::size_t n) {
  ASSERT_EQ(plan.order.size(), n);
  std::vector<std::size_t> at(n, n);
  for (std::size_t k = 0; k < n; ++k) {
    ASSERT_LT(plan.order[k], n);
    ASSERT_EQ(at[plan.order[k]], n) << "node " << plan.order[k] << " twice";
    at[plan.order[k]] = k;
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t p : plan.parents[i]) EXPECT_LT(at[p], at[i]) << p << " -> " << i;
  }
}

TEST(DagTest, NodesWithoutEdgesKeepTheirOrder) {
  Graph g;
  g.Add("c").Add("a").Add("b");
  auto plan = Plan(g);
  ASSERT_OK(plan);
  EXPECT_EQ(NamesInOrder(g, *plan), (std::vector<std::string>{"c", "a", "b"}));
  for (const auto& p : plan->parents) EXPECT_TRUE(p.empty());
  for (const auto& e : plan->external) EXPECT_TRUE(e.empty());
}

TEST(DagTest, ParentsComeFirstWhateverTheInputOrder) {
  Graph g;  // a diamond written children first
  g.Add("join", {"left", "right"}).Add("left", {"root"}).Add("right", {"root"}).Add("root");
  auto plan = Plan(g);
  ASSERT_OK(plan);
  EXPECT_EQ(NamesInOrder(g, *plan), (std::vector<std::string>{"root", "left", "right", "join"}));
  EXPECT_EQ(plan->parents[0], (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(plan->parents[1], (std::vector<std::size_t>{3}));
  ExpectTopological(*plan, 4);
}

TEST(DagTest, ARepeatedDependencyCountsOnceAndOthersAreExternal) {
  Graph g;
  g.Add("a").Add("b", {"a", "0190f2a4-ext-1", "a", "0190f2a4-ext-2", "0190f2a4-ext-1"});
  auto plan = Plan(g);
  ASSERT_OK(plan);
  EXPECT_EQ(plan->parents[1], (std::vector<std::size_t>{0}));
  EXPECT_EQ(plan->external[1], (std::vector<std::string_view>{"0190f2a4-ext-1", "0190f2a4-ext-2"}));
  EXPECT_TRUE(plan->external[0].empty());
}

TEST(DagTest, BadGraphsAreRefusedNamingTheCulprit) {
  auto refused = [](const Graph& g) {
    auto plan = Plan(g);
    EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
    return plan.status().message();
  };
  EXPECT_EQ(refused(Graph{}), "a workflow needs at least one task");
  EXPECT_EQ(refused(Graph{}.Add("a").Add("b").Add("a")), "two tasks are named 'a'");
  EXPECT_EQ(refused(Graph{}.Add("a").Add("b", {"a", "b"})), "task 'b' depends on itself");
  EXPECT_EQ(refused(Graph{}.Add("a", {"b"}).Add("b", {"a"})),
            "the tasks form a cycle: 'a' -> 'b' -> 'a'");
  // The path names only the cycle, not the node that leads into it.
  EXPECT_EQ(refused(Graph{}.Add("tail", {"x"}).Add("x", {"y"}).Add("y", {"z"}).Add("z", {"x"})),
            "the tasks form a cycle: 'x' -> 'y' -> 'z' -> 'x'");
}

TEST(DagTest, ALongChainIsOrderedWithoutRecursion) {
  constexpr std::size_t kN = 200'000;
  Graph g;
  for (std::size_t i = 0; i < kN; ++i) {
    // Written last first: each node depends on the one after it.
    g.Add("n" + std::to_string(i), i + 1 < kN ? std::vector<std::string>{"n" + std::to_string(i + 1)}
                                              : std::vector<std::string>{});
  }
  auto plan = Plan(g);
  ASSERT_OK(plan);
  EXPECT_EQ(plan->order.front(), kN - 1);
  EXPECT_EQ(plan->order.back(), 0u);
  ExpectTopological(*plan, kN);
}

TEST(DagTest, RandomGraphsAreOrderedOrTheirCycleIsReal) {
  std::mt19937_64 rng(20261206);
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = 1 + rng() % 30;
    // A random DAG on a random permutation of names; sometimes one back edge.
    std::vector<std::size_t> rank(n);
    for (std::size_t i = 0; i < n; ++i) rank[i] = i;
    std::shuffle(rank.begin(), rank.end(), rng);
    Graph g;
    for (std::size_t i = 0; i < n; ++i) g.Add("t" + std::to_string(i));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        if (rank[j] < rank[i] && rng() % 4 == 0) g.deps[i].push_back(g.names[j]);
      }
    }
    const bool back_edge = n > 1 && rng() % 3 == 0;
    if (back_edge) {  // from the lowest-ranked node to the highest, closing a path through both
      std::size_t lo = 0, hi = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (rank[i] == 0) lo = i;
        if (rank[i] == n - 1) hi = i;
      }
      g.deps[hi].push_back(g.names[lo]);  // keeps a DAG: hi after lo
      g.deps[lo].push_back(g.names[hi]);  // and now lo after hi: a cycle
    }
    auto plan = Plan(g);
    if (!back_edge) {
      ASSERT_OK(plan);
      ExpectTopological(*plan, n);
      continue;
    }
    ASSERT_FALSE(plan.ok());
    // Each step of the named path is a real dependency, and it closes.
    std::string text = plan.status().message();
    const std::string prefix = "the tasks form a cycle: ";
    ASSERT_EQ(text.rfind(prefix, 0), 0u) << text;
    std::vector<std::string> path;
    for (std::size_t at = prefix.size(); at < text.size();) {
      std::size_t open = text.find('\'', at);
      std::size_t close = text.find('\'', open + 1);
      path.push_back(text.substr(open + 1, close - open - 1));
      at = close + 1;
    }
    ASSERT_GE(path.size(), 3u) << text;
    EXPECT_EQ(path.front(), path.back()) << text;
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < n; ++i) index[g.names[i]] = i;
    for (std::size_t k = 0; k + 1 < path.size(); ++k) {
      const auto& deps = g.deps[index.at(path[k])];
      EXPECT_NE(std::find(deps.begin(), deps.end(), path[k + 1]), deps.end())
          << path[k] << " does not depend on " << path[k + 1] << " in " << text;
    }
  }
}

}  // namespace
}  // namespace dray
