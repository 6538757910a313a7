#include "store/postgres/task_batches.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace dray {
namespace {

using Kind = PlannedStatement::Kind;

std::shared_ptr<const Task> T(const std::string& id, const std::string& ns = "default") {
  auto t = std::make_shared<Task>();
  t->ns = ns;
  t->id = id;
  return t;
}
Mutation Put(const std::string& id) { return mutation::PutTask{T(id)}; }
Mutation Update(const std::string& id) { return mutation::UpdateTask{T(id)}; }

// The plan as text: "P[0,2] U[1] S[3]".
std::string Show(const std::vector<PlannedStatement>& plan) {
  std::string out;
  for (const PlannedStatement& st : plan) {
    if (!out.empty()) out += ' ';
    out += st.kind == Kind::kPutTasks ? 'P' : st.kind == Kind::kUpdateTasks ? 'U' : 'S';
    out += '[';
    for (std::size_t i = 0; i < st.mutations.size(); ++i) {
      out += (i ? "," : "") + std::to_string(st.mutations[i]);
    }
    out += ']';
  }
  return out;
}

std::string Plan(const std::vector<Mutation>& batch, std::size_t max_rows = 100) {
  return Show(PlanStatements(batch, max_rows));
}

TEST(PlanStatementsTest, PutsThenUpdatesOfDistinctTasksAreTwoStatements) {
  EXPECT_EQ(Plan({Put("a"), Update("a"), Put("b"), Update("b"), Put("c"), Update("c")}),
            "P[0,2,4] U[1,3,5]");
}

TEST(PlanStatementsTest, MutationsOfOneTaskStayInOrderInSeparateStatements) {
  EXPECT_EQ(Plan({Put("a"), Update("a"), Update("a")}), "S[0] S[1] S[2]");
  EXPECT_EQ(Plan({Update("a"), Put("a")}), "S[0] S[1]");
  EXPECT_EQ(Plan({Put("a"), Put("a"), Put("b")}), "P[0,2] S[1]");
  // b's put may join a's first statement; a's second put may not.
  EXPECT_EQ(Plan({Update("a"), Put("b"), Put("a"), Update("b"), Update("a")}), "S[0] P[1,2] U[3,4]");
}

TEST(PlanStatementsTest, TheSameIdInAnotherNamespaceIsAnotherTask) {
  std::vector<Mutation> batch = {mutation::PutTask{T("a", "x")}, mutation::PutTask{T("a", "y")},
                                 mutation::PutTask{T("xa", "")}, mutation::PutTask{T("a", "x")}};
  EXPECT_EQ(Plan(batch), "P[0,1,2] S[3]");
}

TEST(PlanStatementsTest, OtherMutationsAreBarriersNothingMovesAcross) {
  std::vector<Mutation> batch = {Put("a"), Put("b"),
                                 mutation::PutQueue{QueueRecord{"default", "q", QueueSettings{}}},
                                 Put("c"), Put("d"), mutation::DeleteTask{"default", "a"},
                                 Update("c"), Update("d")};
  EXPECT_EQ(Plan(batch), "P[0,1] S[2] P[3,4] S[5] U[6,7]");
}

TEST(PlanStatementsTest, AStatementHoldsAtMostMaxRows) {
  std::vector<Mutation> batch;
  for (int i = 0; i < 7; ++i) batch.push_back(Put("t" + std::to_string(i)));
  for (int i = 0; i < 7; ++i) batch.push_back(Update("t" + std::to_string(i)));
  EXPECT_EQ(Plan(batch, 3), "P[0,1,2] P[3,4,5] S[6] U[7,8,9] U[10,11,12] S[13]");
}

TEST(PlanStatementsTest, EveryMutationIsPlannedOnce) {
  std::vector<Mutation> batch;
  for (int i = 0; i < 500; ++i) {
    const std::string id = "t" + std::to_string(i * 7 % 13);
    batch.push_back(i % 3 == 0 ? Put(id) : Update(id));
    if (i % 50 == 49) batch.push_back(mutation::DeleteTask{"default", id});
  }
  std::vector<int> seen(batch.size(), 0);
  std::vector<std::size_t> statement(batch.size(), 0);
  const auto plan = PlanStatements(batch, 4);
  for (std::size_t s = 0; s < plan.size(); ++s) {
    EXPECT_LE(plan[s].mutations.size(), 4u);
    for (std::size_t i : plan[s].mutations) {
      ++seen[i];
      statement[i] = s;
    }
  }
  for (int n : seen) EXPECT_EQ(n, 1);
  // The mutations of one task, and the barriers with everything, run in
  // batch order.
  auto id_of = [&](std::size_t i) {
    const auto& t = TaskOf(batch[i]);
    return t ? t->id : std::string();
  };
  for (std::size_t i = 0; i < batch.size(); ++i) {
    for (std::size_t j = i + 1; j < batch.size(); ++j) {
      if (id_of(i).empty() || id_of(j).empty() || id_of(i) == id_of(j)) {
        EXPECT_LT(statement[i], statement[j]) << i << " before " << j;
      }
    }
  }
}

std::string Be32(std::uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
}

TEST(BinaryArrayTest, EncodesAsArrayRecvReads) {
  BinaryArray text(BinaryArray::kText);
  text.AddText("a\"b");
  text.AddText("");
  EXPECT_EQ(text.Encode(), Be32(1) + Be32(0) + Be32(25) + Be32(2) + Be32(1) + Be32(3) + "a\"b" +
                               Be32(0));
  BinaryArray ints(BinaryArray::kInt8);
  ints.AddInt8(-2);
  EXPECT_EQ(ints.Encode(), Be32(1) + Be32(0) + Be32(20) + Be32(1) + Be32(1) + Be32(8) +
                               std::string(7, '\xff') + '\xfe');
  BinaryArray bools(BinaryArray::kBool);
  bools.AddBool(true);
  bools.AddBool(false);
  EXPECT_EQ(bools.Encode(), Be32(1) + Be32(0) + Be32(16) + Be32(2) + Be32(1) + Be32(1) + '\1' +
                                Be32(1) + std::string(1, '\0'));
  EXPECT_EQ(BinaryArray(BinaryArray::kText).Encode(), Be32(0) + Be32(0) + Be32(25));
}

// As a text parameter (a C string) stops at a NUL, so does an element:
// the single-row and many-row statements store the same value.
TEST(BinaryArrayTest, TextStopsAtTheFirstNulAsATextParameterDoes) {
  BinaryArray text(BinaryArray::kText);
  text.AddText(std::string("ab\0cd", 5));
  EXPECT_EQ(text.Encode(), Be32(1) + Be32(0) + Be32(25) + Be32(1) + Be32(1) + Be32(2) + "ab");
}

}  // namespace
}  // namespace dray
