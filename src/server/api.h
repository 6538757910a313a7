// The HTTP API v1: decodes requests, calls the TaskService, encodes answers.
// The contract of every route is in docs/http-api.md; errors are
// {"error": {"code", "message"}} with the status HttpStatusFor() gives.
#pragma once

#include "core/limits.h"
#include "server/http/router.h"
#include "server/task_service.h"

namespace dray {

struct ApiOptions {
  Limits limits;
  std::int64_t max_wait_ms = 60'000;
  BuildInfo build;  // /healthz and dray_build_info in /metrics
};

// Adds every /v1 route plus /healthz, /readyz and /metrics to `router`.
// `service` must outlive the router.
void RegisterApi(Router* router, TaskService* service, ApiOptions options);

// The /v1/schedules routes (schedule_api.cc); RegisterApi adds them.
void RegisterScheduleApi(Router* router, TaskService* service, ApiOptions options);
// The /v1/events and /v1/triggers routes (event_api.cc); RegisterApi adds them.
void RegisterEventApi(Router* router, TaskService* service, ApiOptions options);
// The /v1/workers routes (worker_api.cc); RegisterApi adds them.
void RegisterWorkerApi(Router* router, TaskService* service, ApiOptions options);

}  // namespace dray
