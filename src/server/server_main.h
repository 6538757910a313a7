// The whole `dray server`: opens the store under config.data_dir, rebuilds
// the engine from it, serves HTTP on config.listen until SIGTERM or SIGINT,
// then stops accepting, finishes in-flight commits and returns 0. Returns
// non-zero (after logging why) if it cannot start.
#pragma once

#include <functional>
#include <string>

#include "server/server_config.h"

namespace dray {

// `on_listening(address)` runs once the server accepts connections, with the
// bound "host:port" (useful with port 0). It runs on the calling thread's
// behalf but must not block.
int RunServer(const ServerConfig& config,
              const std::function<void(const std::string& address)>& on_listening = {});

}  // namespace dray
