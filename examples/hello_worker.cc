// A worker with two handlers. Run a server, then:
//   build/examples/hello_worker http://127.0.0.1:7070
//   build/bin/dray submit greet --queue hello --payload '{"name":"Ada"}' --wait
#include <dray/worker.h>

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  // Ctrl-C is taken by one thread with sigwait(): Stop() is not something to
  // call from a signal handler.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  dray::ClientOptions client;
  if (argc > 1) client.server = argv[1];
  dray::WorkerOptions options;
  options.queues = {"hello"};
  options.concurrency = 2;

  dray::Worker worker(client, options);
  worker.Handle("greet", [](dray::TaskContext& ctx) {
    // The payload is JSON text; a real handler would parse it.
    return std::string(R"({"greeting":"hello, )") + std::to_string(ctx.payload().size()) +
           R"( bytes of you"})";
  });
  worker.Handle("divide", [](dray::TaskContext& ctx) -> std::string {
    if (ctx.payload() == "0") throw dray::NonRetryableError("division by zero");
    return "\"ok\"";
  });

  std::thread stopper([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    worker.Stop();
  });
  std::printf("hello_worker serving queue 'hello' on %s; Ctrl-C stops\n", client.server.c_str());
  dray::Status s = worker.Run();
  pthread_kill(stopper.native_handle(), SIGTERM);  // in case Run() ended first
  stopper.join();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto st = worker.stats();
  std::printf("done: %llu succeeded, %llu failed\n", static_cast<unsigned long long>(st.succeeded),
              static_cast<unsigned long long>(st.failed));
  return 0;
}
