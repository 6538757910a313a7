#include "store/postgres/binary_copy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/status_assert.h"

namespace dray {
namespace {

void Be(std::string* out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string Header() {
  std::string h("PGCOPY\n\377\r\n\0", 11);
  Be(&h, 0, 4);  // flags
  Be(&h, 3, 4);  // a header extension of three bytes, to be skipped
  h += "xyz";
  return h;
}

// A row of kColumnCount cells: column 0 its text, 1 a smallint, 2 an
// integer, 3 a bigint, 4 a boolean, the rest text.
std::string RowBytes(const std::string& text, std::int16_t s, std::int32_t i, std::int64_t l, bool b) {
  std::string r;
  Be(&r, static_cast<std::uint64_t>(kColumnCount), 2);
  auto cell = [&r](const std::string& bytes) {
    Be(&r, bytes.size(), 4);
    r += bytes;
  };
  cell(text);
  std::string v;
  Be(&v, static_cast<std::uint16_t>(s), 2);
  cell(v);
  v.clear();
  Be(&v, static_cast<std::uint32_t>(i), 4);
  cell(v);
  v.clear();
  Be(&v, static_cast<std::uint64_t>(l), 8);
  cell(v);
  cell(std::string(1, b ? 1 : 0));
  for (int c = 5; c < kColumnCount; ++c) cell("c" + std::to_string(c));
  return r;
}

std::string Trailer() { return std::string("\xff\xff", 2); }

struct Seen {
  std::string text;
  std::int64_t s, i, l;
  bool b;
  std::string last;
};

std::vector<Seen> Parse(const std::vector<std::string>& chunks, Status* status, bool* finished) {
  BinaryCopyParser parser;
  std::vector<Seen> rows;
  *status = Status::Ok();
  for (const std::string& c : chunks) {
    Status st = parser.Feed(c, [&](const CopyRow& row) {
      Status cell;
      rows.push_back(Seen{std::string(row.Text(0)), row.Int(1, &cell), row.Int(2, &cell),
                          row.Int(3, &cell), row.Bool(4), std::string(row.Text(kColumnCount - 1))});
      return cell;
    });
    if (!st.ok()) {
      *status = st;
      break;
    }
  }
  *finished = parser.finished();
  return rows;
}

TEST(BinaryCopyParserTest, ReadsRowsWhereverTheStreamIsSplit) {
  const std::string stream = Header() + RowBytes("żółw\t\\n", -2, -70000, -5'000'000'000, true) +
                             RowBytes("", 32767, 7, 1'700'000'000'000, false) + Trailer();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    Status st;
    bool finished = false;
    auto rows = Parse({stream.substr(0, cut), stream.substr(cut)}, &st, &finished);
    ASSERT_OK(st);
    EXPECT_TRUE(finished);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].text, "żółw\t\\n");  // bytes as they are: no escapes in binary
    EXPECT_EQ(rows[0].s, -2);
    EXPECT_EQ(rows[0].i, -70000);
    EXPECT_EQ(rows[0].l, -5'000'000'000);
    EXPECT_TRUE(rows[0].b);
    EXPECT_EQ(rows[0].last, "c" + std::to_string(kColumnCount - 1));
    EXPECT_EQ(rows[1].text, "");
    EXPECT_EQ(rows[1].s, 32767);
    EXPECT_EQ(rows[1].l, 1'700'000'000'000);
    EXPECT_FALSE(rows[1].b);
  }
  // A byte at a time.
  std::vector<std::string> bytes;
  for (char ch : stream) bytes.emplace_back(1, ch);
  Status st;
  bool finished = false;
  EXPECT_EQ(Parse(bytes, &st, &finished).size(), 2u);
  EXPECT_TRUE(st.ok() && finished);
}

TEST(BinaryCopyParserTest, AStreamWithoutItsTrailerIsNotFinished) {
  Status st;
  bool finished = true;
  auto rows = Parse({Header() + RowBytes("a", 1, 2, 3, false)}, &st, &finished);
  EXPECT_OK(st);
  EXPECT_EQ(rows.size(), 1u);
  EXPECT_FALSE(finished);
}

TEST(BinaryCopyParserTest, RefusesWhatIsNotACopyOfTaskRows) {
  Status st;
  bool finished = false;
  Parse({std::string("PGCOPY\nXXXXXXXXXXXXXXXXXXXX")}, &st, &finished);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);

  std::string short_row = Header();
  Be(&short_row, 3, 2);  // three columns
  Parse({short_row}, &st, &finished);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("3 columns"), std::string::npos) << st.ToString();

  std::string null_cell = Header();
  Be(&null_cell, static_cast<std::uint64_t>(kColumnCount), 2);
  Be(&null_cell, 0xffffffffu, 4);
  Parse({null_cell}, &st, &finished);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("NULL"), std::string::npos) << st.ToString();

  // A cell of 3 bytes is no integer.
  CopyRow row;
  row.cells[1] = "abc";
  Status cell;
  row.Int(1, &cell);
  EXPECT_EQ(cell.code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace dray
