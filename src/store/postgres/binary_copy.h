// PostgreSQL's binary COPY format (its documentation, "COPY", "Binary
// Format"), read for recovery's scan of the live tasks: rows as the server
// keeps them, with no text to print and parse again.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "dray/status.h"
#include "store/columns.h"

namespace dray {

// One row's cells, wherever they come from: a query's result (text) or a
// binary COPY. Columns are NOT NULL, so a NULL is never expected.
class Row {
 public:
  virtual ~Row() = default;
  virtual std::string_view Text(int col) const = 0;
  // Sets *status (if still OK) when the cell is not an integer.
  virtual std::int64_t Int(int col, Status* status) const = 0;
  virtual bool Bool(int col) const = 0;
};

// A tuple of a binary COPY: each cell its bytes, integers big-endian in
// 2, 4 or 8 bytes, booleans one byte. The cells point into the parser's
// buffer: valid during the on_row call only.
class CopyRow final : public Row {
 public:
  std::array<std::string_view, kColumnCount> cells;
  std::string_view Text(int col) const override { return cells[static_cast<std::size_t>(col)]; }
  std::int64_t Int(int col, Status* status) const override;
  bool Bool(int col) const override;
};

// Reads a binary COPY of rows of kColumnCount columns from chunks split
// anywhere: the header, then rows, until the trailer.
class BinaryCopyParser {
 public:
  // Parses what `chunk` completes, calling on_row for each whole row;
  // keeps the rest for the next chunk. DataLoss for a stream that is not a
  // binary COPY of such rows; on_row's error stops the parse.
  Status Feed(std::string_view chunk, const std::function<Status(const CopyRow&)>& on_row);
  // Whether the trailer was read (the stream is complete).
  bool finished() const { return trailer_; }

 private:
  Status Parse(std::size_t* pos, const std::function<Status(const CopyRow&)>& on_row);

  std::string buf_;
  bool header_ = false;
  bool trailer_ = false;
};

}  // namespace dray
