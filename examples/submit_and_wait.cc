// Submits a command task and waits for its result. With `dray server --worker`
// running:
//   build/examples/submit_and_wait http://127.0.0.1:7070
#include <dray/client.h>

#include <cstdio>

int main(int argc, char** argv) {
  dray::ClientOptions options;
  if (argc > 1) options.server = argv[1];
  auto client = dray::Client::Create(options);
  if (!client.ok()) return 1;

  dray::TaskSpec spec;
  spec.type = "exec";
  spec.payload = R"({"argv": ["uname", "-sr"]})";
  spec.key = "example-uname";  // submitting twice returns the same task
  auto submitted = (*client)->Submit(spec);
  if (!submitted.ok()) {
    std::fprintf(stderr, "submit: %s\n", submitted.status().ToString().c_str());
    return 1;
  }
  std::printf("submitted %s (%s)\n", submitted->id.c_str(),
              submitted->created ? "new" : "seen before");

  auto done = (*client)->Wait(submitted->id, std::chrono::seconds(30));
  if (!done.ok()) {
    std::fprintf(stderr, "wait: %s\n", done.status().ToString().c_str());
    return 1;
  }
  std::printf("state: %s\nresult: %s\n", std::string(dray::TaskStateName(done->state)).c_str(),
              done->result.c_str());
  return done->state == dray::TaskState::kSucceeded ? 0 : 1;
}
