// libFuzzer target: the JSON decoders of everything a client sends (task
// specs single and batched, queue patches, backoffs) and of what the API
// returns (DecodeTask, used by the SDK). Any input must give a value or a
// clear Status, never a crash; what decodes must obey the limits it was
// checked against, and a task the API writes must read back the same.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/json_codec.h"
#include "core/limits.h"

namespace {

void Require(bool cond) {
  if (!cond) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dray;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseJson(text);
  if (!parsed.ok()) {
    Require(parsed.status().code() == StatusCode::kMalformed);
    return 0;
  }
  const boost::json::value& v = *parsed;
  Limits limits;
  limits.max_batch = 16;  // small bounds so the fuzzer reaches them
  limits.max_payload_bytes = 256;
  limits.max_labels = 4;

  if (auto submit = DecodeSubmit(v, limits); submit.ok()) {
    Require(!submit->specs.empty() && submit->specs.size() <= limits.max_batch);
    for (const TaskSpec& s : submit->specs) {
      Require(ValidateName("queue", s.queue, limits).ok());
      Require(!s.type.empty() && s.type.size() <= limits.max_name_bytes);
      Require(s.payload.size() <= limits.max_payload_bytes);
      Require(s.labels.size() <= limits.max_labels);
      Require(s.key.size() <= limits.max_key_bytes);
    }
  } else {
    Require(!submit.status().message().empty());
  }

  QueueSettings settings;
  if (Status s = ApplyQueuePatch(v, &settings); !s.ok()) Require(!s.message().empty());
  if (auto b = DecodeBackoff(v, "backoff"); !b.ok()) Require(!b.status().message().empty());

  // A task read from an API answer, written again, reads back the same.
  if (auto task = DecodeTask(v); task.ok()) {
    const std::string once = TaskToJson(*task);
    auto again = ParseJson(once);
    Require(again.ok());
    auto task2 = DecodeTask(*again);
    Require(task2.ok());
    Require(TaskToJson(*task2) == once);
  }
  return 0;
}
