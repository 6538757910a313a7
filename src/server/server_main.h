// The whole `dray server`: opens the store under config.data_dir, rebuilds
// the engine from it, serves HTTP on config.listen until SIGTERM or SIGINT,
// then stops accepting, finishes in-flight commits and returns 0. Returns
// non-zero (after logging why) if it cannot start.
#pragma once

#include <functional>
#include <string>

#include "server/server_config.h"

namespace dray {

// What RunServer returns when its PostgreSQL store broke (a lost
// connection, a failed commit) and the database answers again: the caller
// starts the process again (ExecSelf), which rebuilds its state from what
// the database holds, as after a crash. While the database is away the
// server stays up, refusing writes with 503 and saying why on /readyz.
inline constexpr int kRestartToRebuild = 75;

// Replaces this process with a new run of the same program, arguments and
// environment (same pid), listening where the last RunServer listened (so
// a server asked for port 0 keeps the port its clients know). Returns only
// if exec failed (logged).
void ExecSelf();

// `on_listening(address)` runs once the server accepts connections, with the
// bound "host:port" (useful with port 0). It runs on the calling thread's
// behalf but must not block.
int RunServer(const ServerConfig& config,
              const std::function<void(const std::string& address)>& on_listening = {});

}  // namespace dray
