// Multi-row task writes for the PostgreSQL store: which mutations of a
// commit go together into one statement, and the arrays that statement
// takes as its parameters (PostgreSQL's binary array format, so that no
// payload, error or document is ever quoted or escaped).
//
// Pure functions over a batch: no libpq, no I/O; postgres_store.cc sends
// what they plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/records.h"

namespace dray {

// One statement of a commit.
struct PlannedStatement {
  enum class Kind {
    kSingle,       // one mutation, sent as its own single-row statement
    kPutTasks,     // PutTask mutations of distinct tasks: one INSERT ... unnest
    kUpdateTasks,  // UpdateTask mutations of distinct tasks: one UPDATE ... unnest
  };
  Kind kind = Kind::kSingle;
  std::vector<std::size_t> mutations;  // indices into the batch
};

// Groups `batch` into statements whose effect, run in the returned order,
// is that of the mutations run one by one in batch order:
// - every mutation other than PutTask and UpdateTask is a statement of its
//   own, at its place: nothing moves across it (so a PutWorkflow or a
//   PutQueue stays before the tasks that follow it, a DeleteTask between
//   two writes of its task);
// - between two such, PutTask and UpdateTask mutations of distinct tasks
//   are different rows of one table with no unique key but (ns, id) and no
//   trigger, so their effects commute; only the order of the mutations of
//   one task matters. Each goes into the first statement of its kind after
//   the last statement that holds a mutation of the same task, so that a
//   statement never names a task twice (an INSERT ... ON CONFLICT cannot
//   touch a row twice; an UPDATE ... FROM applies only one of two source
//   rows) and the mutations of one task run in batch order;
// - a statement holds at most `max_rows` mutations; a group of one is
//   kSingle.
// An UpdateTask that finds no row finds none at its place in the batch
// either (that depends only on the mutations of its own task before it),
// so the store's check for it holds on the grouped statements.
std::vector<PlannedStatement> PlanStatements(std::span<const Mutation> batch, std::size_t max_rows);

// PostgreSQL's binary send format of a one-dimensional array without
// NULLs (array_recv in src/backend/utils/adt/arrayfuncs.c): the element
// type's OID must be that of the parameter's declared element type.
class BinaryArray {
 public:
  static constexpr std::uint32_t kText = 25;  // pg_type OIDs
  static constexpr std::uint32_t kInt8 = 20;
  static constexpr std::uint32_t kBool = 16;

  explicit BinaryArray(std::uint32_t element_type) : element_type_(element_type) {}

  // Text goes as far as its first NUL byte, as a text-format parameter
  // (a C string) does in the single-row statements: both statements store
  // the same value.
  void AddText(std::string_view v);
  void AddInt8(std::int64_t v);
  void AddBool(bool v);

  std::size_t size() const { return count_; }
  // The array as the server reads it.
  std::string Encode() const;

 private:
  std::uint32_t element_type_;
  std::size_t count_ = 0;
  std::string elements_;  // each: length (int32), bytes
};

// The parameters of the multi-row statements (their SQL is in
// postgres_store.cc), one array per column, in the statements' order.
// Put: every task column in kColumns order (store/columns.h).
std::vector<std::string> PutTaskArrays(std::span<const Mutation> batch,
                                       std::span<const std::size_t> which);
// Update: run_at, state, attempts, result, error, updated_at, finished_at,
// lease_token, lease_expires_at, worker, cancel_requested, history, ns, id.
std::vector<std::string> UpdateTaskArrays(std::span<const Mutation> batch,
                                          std::span<const std::size_t> which);

}  // namespace dray
