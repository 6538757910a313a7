#include "server/wait_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dray {
namespace {

using std::chrono::milliseconds;

TEST(WaitListTest, TakenByKeyOldestFirstAndOnlyOnce) {
  boost::asio::io_context ioc;
  WaitList<std::string> list(ioc);
  std::vector<std::uint64_t> deadlines;
  auto on_deadline = [&](std::uint64_t id) { deadlines.push_back(id); };
  const std::uint64_t a = list.Add("task-1", "a", milliseconds(60'000), on_deadline);
  const std::uint64_t b = list.Add("task-2", "b", milliseconds(60'000), on_deadline);
  const std::uint64_t c = list.Add("task-1", "c", milliseconds(60'000), on_deadline);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(list.TakeByKey("task-1"), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(list.TakeByKey("task-1").empty());
  EXPECT_FALSE(list.TakeById(a).has_value()) << "taken by key, so gone by id too";
  EXPECT_EQ(list.TakeById(b), "b");
  EXPECT_TRUE(list.TakeByKey("task-2").empty()) << "taken by id, so gone by key too";
  EXPECT_TRUE(list.empty());
  // The cancelled deadlines run as cancelled: nobody is told twice.
  ioc.run();
  EXPECT_TRUE(deadlines.empty());
}

TEST(WaitListTest, ADeadlineNamesItsWaiterWhichTheOwnerThenTakes) {
  boost::asio::io_context ioc;
  WaitList<std::string> list(ioc);
  std::vector<std::string> answered;
  auto on_deadline = [&](std::uint64_t id) {
    if (auto entry = list.TakeById(id)) answered.push_back(*entry + " timed out");
  };
  list.Add("", "lease-1", milliseconds(1), on_deadline);
  const std::uint64_t kept = list.Add("", "lease-2", milliseconds(60'000), on_deadline);
  // Runs handlers until the short deadline has fired; the long one is
  // still pending, so run_one is driven by hand, not run().
  while (answered.empty()) ioc.run_one();
  EXPECT_EQ(answered, (std::vector<std::string>{"lease-1 timed out"}));
  EXPECT_EQ(list.size(), 1u);
  EXPECT_EQ(list.TakeById(kept), "lease-2");
  ioc.run();  // the cancelled timer's handler
  EXPECT_EQ(answered.size(), 1u);
}

TEST(WaitListTest, TakeAllHandsBackEveryWaiterWithItsKey) {
  boost::asio::io_context ioc;
  WaitList<int> list(ioc);
  int fired = 0;
  list.Add("w-1", 1, milliseconds(60'000), [&](std::uint64_t) { ++fired; });
  list.Add("", 2, milliseconds(60'000), [&](std::uint64_t) { ++fired; });
  auto all = list.TakeAll();
  ASSERT_EQ(all.size(), 2u);
  int sum = 0;
  for (const auto& t : all) {
    sum += t.entry;
    EXPECT_EQ(t.key, t.entry == 1 ? "w-1" : "");
  }
  EXPECT_EQ(sum, 3);
  EXPECT_TRUE(list.empty());
  EXPECT_TRUE(list.TakeByKey("w-1").empty());
  ioc.run();
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace dray
