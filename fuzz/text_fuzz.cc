// libFuzzer target: the small parsers of the request line and of stored
// text: task ids, names, percent-decoding, query strings and path splitting;
// cron expressions (any text parses or is refused, and a parsed one gives
// fire times that only grow, in a zone with daylight saving too).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "core/cron.h"
#include "core/ids.h"
#include "core/json_codec.h"
#include "core/limits.h"
#include "server/http/router.h"

namespace {

void Require(bool cond) {
  if (!cond) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dray;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Ids: ParseId and IsValidId agree, and a parsed id formats back to the
  // same text up to the case of its hex digits.
  auto id = ParseId(text);
  Require(id.has_value() == IsValidId(text));
  if (id) {
    const std::string formatted = FormatId(*id);
    Require(formatted.size() == text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      Require(std::tolower(static_cast<unsigned char>(text[i])) == formatted[i]);
    }
    Require(ParseId(formatted) == id);
    (void)IdTimestamp(text);
  }

  // Names: accepted ones are within bounds and of the allowed bytes.
  Limits limits;
  if (ValidateName("queue", text, limits).ok()) {
    Require(!text.empty() && text.size() <= limits.max_name_bytes);
    for (char c : text) {
      Require(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':');
    }
  }

  // Percent-decoding never grows the text; splitting keeps every byte but '/'.
  for (bool plus : {false, true}) Require(PercentDecode(text, plus).size() <= text.size());
  std::map<std::string, std::string> query;
  ParseQuery(text, &query);
  if (!text.empty() && text[0] == '/') {
    std::size_t bytes = 0;
    auto segs = SplitPath(text);
    for (const auto& s : segs) bytes += s.size();
    Require(bytes + segs.size() == text.size());
  }

  if (auto cron = CronExpr::Parse(text); cron.ok()) {
    static const TimeZone zone = *TimeZone::Load("America/New_York");
    TimeMs t = 1'793'500'000'000;  // late October 2026, before the fall-back
    for (int i = 0; i < 4; ++i) {
      auto next = cron->Next(t, zone);
      if (!next) break;
      Require(*next > t && *next % 1000 == 0);
      t = *next;
    }
  } else {
    Require(!cron.status().message().empty());
  }
  return 0;
}
