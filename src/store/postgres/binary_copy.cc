#include "store/postgres/binary_copy.h"

namespace dray {
namespace {

std::uint32_t Be32(const char* p) {
  return (std::uint32_t{static_cast<unsigned char>(p[0])} << 24) |
         (std::uint32_t{static_cast<unsigned char>(p[1])} << 16) |
         (std::uint32_t{static_cast<unsigned char>(p[2])} << 8) | static_cast<unsigned char>(p[3]);
}

}  // namespace

std::int64_t CopyRow::Int(int col, Status* status) const {
  std::string_view v = cells[static_cast<std::size_t>(col)];
  if (v.size() != 2 && v.size() != 4 && v.size() != 8) {
    if (status->ok()) *status = DataLoss("column " + std::to_string(col) + " is not an integer");
    return 0;
  }
  std::uint64_t u = 0;
  for (char ch : v) u = (u << 8) | static_cast<unsigned char>(ch);
  const unsigned bits = static_cast<unsigned>(v.size()) * 8;
  if (bits < 64 && (u >> (bits - 1)) != 0) u |= ~std::uint64_t{0} << bits;  // sign
  return static_cast<std::int64_t>(u);
}

bool CopyRow::Bool(int col) const {
  std::string_view v = cells[static_cast<std::size_t>(col)];
  return !v.empty() && v[0] != 0;
}

Status BinaryCopyParser::Feed(std::string_view chunk,
                              const std::function<Status(const CopyRow&)>& on_row) {
  buf_.append(chunk);
  std::size_t pos = 0;
  Status st = Parse(&pos, on_row);
  buf_.erase(0, pos);
  return st;
}

Status BinaryCopyParser::Parse(std::size_t* pos,
                               const std::function<Status(const CopyRow&)>& on_row) {
  static constexpr std::string_view kSignature("PGCOPY\n\377\r\n\0", 11);
  const char* d = buf_.data();
  const std::size_t n = buf_.size();
  if (!header_) {
    if (n < 19) return Status::Ok();  // signature, flags, extension length
    if (std::string_view(d, 11) != kSignature) return DataLoss("not a binary COPY stream");
    const std::size_t extension = Be32(d + 15);
    if (n < 19 + extension) return Status::Ok();
    *pos = 19 + extension;
    header_ = true;
  }
  CopyRow row;
  while (!trailer_ && n - *pos >= 2) {
    std::size_t p = *pos;
    const auto fields = static_cast<std::int16_t>((static_cast<unsigned char>(d[p]) << 8) |
                                                  static_cast<unsigned char>(d[p + 1]));
    p += 2;
    if (fields == -1) {
      trailer_ = true;
      *pos = p;
      break;
    }
    if (fields != kColumnCount) {
      return DataLoss("a COPY row of " + std::to_string(fields) + " columns, not " +
                      std::to_string(kColumnCount));
    }
    bool complete = true;
    for (int i = 0; i < kColumnCount; ++i) {
      if (n - p < 4) {
        complete = false;
        break;
      }
      const std::uint32_t len = Be32(d + p);
      p += 4;
      if (len == 0xffffffffu) return DataLoss("a NULL in column " + std::to_string(i));
      if (n - p < len) {
        complete = false;
        break;
      }
      row.cells[static_cast<std::size_t>(i)] = std::string_view(d + p, len);
      p += len;
    }
    if (!complete) break;  // the rest comes with the next chunk
    DRAY_RETURN_IF_ERROR(on_row(row));
    *pos = p;
  }
  return Status::Ok();
}

}  // namespace dray
