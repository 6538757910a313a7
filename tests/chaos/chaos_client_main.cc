// dray_chaos_client: the chaos load in a process of its own, so that a test
// can pause it (SIGSTOP), cut it off the network (run it in a network
// namespace), and still read what it did. It runs until SIGTERM or SIGINT,
// then writes its history and exits 0.
//
//   dray_chaos_client --host H --port P --workers N --submitters N --name NAME
//                     --history FILE --start-ns NS [--lease-ms MS] [--seed S]
//                     [--queue Q] [--lease-max N] [--work-ms MS]
//
// --start-ns is the parent's History::start_ns(), so both histories share
// one clock.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "chaos/load.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

}  // namespace

int main(int argc, char** argv) {
  using namespace dray::chaos;
  LoadOptions opt;
  opt.submitters = 0;
  opt.workers = 1;
  int port = 0;
  std::string history_path;
  long long start_ns = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--host") opt.host = v;
    else if (a == "--port") port = std::atoi(v);
    else if (a == "--workers") opt.workers = std::atoi(v);
    else if (a == "--submitters") opt.submitters = std::atoi(v);
    else if (a == "--name") opt.client_prefix = v;
    else if (a == "--history") history_path = v;
    else if (a == "--start-ns") start_ns = std::atoll(v);
    else if (a == "--lease-ms") opt.lease_ms = std::atoi(v);
    else if (a == "--lease-max") opt.lease_max = std::atoi(v);
    else if (a == "--seed") opt.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--queue") opt.queue = v;
    else if (a == "--work-ms") opt.work = std::chrono::milliseconds(std::atoi(v));
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (port <= 0 || history_path.empty() || start_ns <= 0) {
    std::fprintf(stderr, "--port, --history and --start-ns are required\n");
    return 2;
  }
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  History history(start_ns);
  MixedLoad load(port, &history, opt);
  load.StartSubmitters();
  load.StartWorkers();
  std::printf("running\n");
  std::fflush(stdout);
  while (!g_stop) pause();  // woken by the signal
  load.StopSubmitters();
  load.StopWorkers();
  dray::Status s = history.Save(history_path);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
