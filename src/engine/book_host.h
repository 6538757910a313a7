// Engine-internal: the engine as the schedule and trigger books see it
// during one call (task_host.h has the contract). Made on the stack by an
// engine call, bound to that call's output, and handed to a book; never
// kept. `out` may be null only for a call that records nothing (recovery:
// a book's Restore takes the host as const).
#pragma once

#include <cstddef>
#include <string>

#include "engine/engine.h"
#include "engine/task_host.h"

namespace dray {

class Engine::BookHost final : public TaskHost {
 public:
  BookHost(Engine* engine, EngineOutput* out) : engine_(engine), out_(out) {}
  bool IsLive(const std::string& ns, const std::string& id) const override;
  Status Room(std::size_t n) const override;
  std::string Submit(TaskSpec&& spec, TimeMs now) override;
  void Cancel(const std::string& ns, const std::string& id, const std::string& why,
              TimeMs now) override;
  void Record(Mutation m) override;

 private:
  Engine* const engine_;
  EngineOutput* const out_;
};

}  // namespace dray
