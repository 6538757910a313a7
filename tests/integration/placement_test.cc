// Placement through the real server with real `dray worker --exec` children
// of different capacities (issue 7): tasks go only where they fit and no
// worker ever runs more than it has (read back from the attempts' times),
// labels and GPUs route, a task too large for every worker says so until
// one large enough joins, broadcast reaches each worker with its shard, and
// a command past its memory request is killed with "memory limit exceeded".
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/time_format.h"
#include "support/json.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// The worker of a task's last attempt.
std::string WorkerOf(const json::value& t) {
  return Str(t.at("history").as_array().back().at("worker"));
}

// `dray worker --exec` in a child process, its log in a temp file.
class WorkerProcess {
 public:
  WorkerProcess(int port, const std::string& name, std::vector<std::string> args) : name_(name) {
    log_ = (std::filesystem::temp_directory_path() / ("dray-worker-" + name + "-" +
                                                      std::to_string(getpid()) + ".log"))
               .string();
    std::vector<std::string> argv = {BinaryPath(), "worker", "--exec", "--server",
                                     "http://127.0.0.1:" + std::to_string(port), "--name", name,
                                     "--queues", "jobs", "--concurrency", "8"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> cargv;
      for (std::string& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  ~WorkerProcess() {
    Stop();
    std::filesystem::remove(log_);
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string name_;
  std::string log_;
  pid_t pid_ = -1;
};

std::size_t LiveWorkers(HttpConn& c) {
  HttpResult r = c.Call("GET", "/v1/workers");
  return r.status == 200 ? r.json().at("workers").as_array().size() : 0;
}

std::string Submit(HttpConn& c, const std::string& body) {
  HttpResult r = c.Call("POST", "/v1/tasks", body);
  EXPECT_EQ(r.status, 201) << r.body;
  return r.status == 201 ? Str(r.json().at("id")) : std::string();
}

json::value Wait(HttpConn& c, const std::string& id) {
  json::value t;
  WaitFor([&] {
    t = c.Call("GET", "/v1/tasks/" + id + "?wait_ms=2000").json();
    const std::string state = t.is_object() ? Str(t.at("state")) : "";
    return state == "succeeded" || state == "failed" || state == "cancelled";
  }, 60s);
  return t;
}

TEST(PlacementHttpTest, RealWorkersOfDifferentSizesRunOnlyWhatFitsAndNeverTooMuch) {
  ServerProcess server;
  server.Start();
  HttpConn c(server.port());
  WorkerProcess small(server.port(), "small",
                      {"--capacity", "cpu=1000,memory_mb=512", "--labels", "zone=a", "--limits", "none"});
  WorkerProcess big(server.port(), "big",
                    {"--capacity", "cpu=4000,memory_mb=4096", "--labels", "zone=b", "--limits", "none"});
  WorkerProcess gpu(server.port(), "gpu",
                    {"--capacity", "cpu=2000,memory_mb=2048", "--gpus", "0,1", "--labels", "zone=a",
                     "--limits", "none"});
  ASSERT_TRUE(WaitFor([&] { return LiveWorkers(c) == 3; }, 30s)) << small.Log();
  const std::map<std::string, std::int64_t> cpu_of = {{"small", 1000}, {"big", 4000}, {"gpu", 2000}};

  // Twenty tasks of 1000 millicores for 7000 in all: they queue, and each
  // worker runs at most what it has at any time.
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(Submit(c, R"({"type":"exec","queue":"jobs","resources":{"cpu":1000},
                              "payload":{"argv":["sleep","0.2"]}})"));
  }
  const std::string large = Submit(c, R"({"type":"exec","queue":"jobs","resources":{"cpu":3000},
                                         "payload":{"argv":["true"]}})");
  const std::string on_gpu = Submit(c, R"({"type":"exec","queue":"jobs","resources":{"gpu":1},
      "require":["zone=a"],"payload":{"argv":["sh","-c","echo $CUDA_VISIBLE_DEVICES"]}})");
  const std::string in_b = Submit(c, R"({"type":"exec","queue":"jobs",
      "require":[{"key":"zone","op":"in","values":["b","c"]}],"payload":{"argv":["true"]}})");
  struct Span {
    std::int64_t start, end, cpu;
  };
  std::map<std::string, std::vector<Span>> by_worker;
  for (const std::string& id : ids) {
    json::value t = Wait(c, id);
    ASSERT_EQ(Str(t.at("state")), "succeeded") << json::serialize(t);
    const json::value& a = t.at("history").as_array().back();
    const std::string w = Str(a.at("worker"));
    auto ms = [](const json::value& v) { return *ParseRfc3339(v.as_string()); };
    by_worker[w].push_back({ms(a.at("started_at")), ms(a.at("ended_at")), 1000});
  }
  for (const auto& [w, spans] : by_worker) {
    ASSERT_TRUE(cpu_of.count(w)) << w;
    for (const Span& s : spans) {
      std::int64_t at_once = 0;
      for (const Span& o : spans) at_once += o.start <= s.start && s.start < o.end ? o.cpu : 0;
      EXPECT_LE(at_once, cpu_of.at(w)) << "worker " << w << " ran more than it has";
    }
  }
  EXPECT_GE(by_worker.size(), 2u) << "the work was not spread over the workers";
  json::value l = Wait(c, large);
  EXPECT_EQ(WorkerOf(l), "big");
  json::value g = Wait(c, on_gpu);
  EXPECT_EQ(WorkerOf(g), "gpu");
  const std::string devices = Str(g.at("result").at("stdout"));
  EXPECT_TRUE(devices == "0\n" || devices == "1\n") << devices;
  EXPECT_EQ(WorkerOf(Wait(c, in_b)), "big");

  // Too large for every worker: unschedulable, with the reason, until a
  // worker that large joins.
  const std::string huge = Submit(c, R"({"type":"exec","queue":"jobs","resources":{"cpu":16000},
                                        "payload":{"argv":["true"]}})");
  json::value h = c.Call("GET", "/v1/tasks/" + huge).json();
  EXPECT_EQ(Str(h.at("wait_reason")), "unschedulable") << json::serialize(h);
  EXPECT_NE(Str(h.at("wait_detail")).find("requests cpu=16000"), std::string::npos)
      << json::serialize(h);
  EXPECT_EQ(h.at("resources").at("cpu"), 16000);
  WorkerProcess huge_worker(server.port(), "huge", {"--capacity", "cpu=16000", "--limits", "none"});
  EXPECT_EQ(WorkerOf(Wait(c, huge)), "huge");

  // Capacity and in-use as the workers list shows them: nothing held now.
  const json::value listed = c.Call("GET", "/v1/workers").json();
  for (const json::value& w : listed.at("workers").as_array()) {
    EXPECT_TRUE(w.at("in_use").as_object().empty()) << json::serialize(w);
  }

  // Broadcast: one copy per worker, each with its shard.
  HttpResult b = c.Call("POST", "/v1/tasks/broadcast",
                        R"({"type":"exec","queue":"jobs","payload":{"argv":["sh","-c",
                            "echo $DRAY_SHARD_INDEX/$DRAY_SHARD_TOTAL"]}})");
  ASSERT_EQ(b.status, 201) << b.body;
  EXPECT_EQ(b.json().at("shard_total"), 4);
  std::set<std::string> workers, shards;
  const json::value copies = b.json();
  for (const json::value& copy : copies.at("tasks").as_array()) {
    json::value t = Wait(c, Str(copy.at("id")));
    ASSERT_EQ(Str(t.at("state")), "succeeded") << json::serialize(t);
    EXPECT_EQ(WorkerOf(t), Str(copy.at("worker")));
    workers.insert(WorkerOf(t));
    shards.insert(Str(t.at("result").at("stdout")));
  }
  EXPECT_EQ(workers, (std::set<std::string>{"small", "big", "gpu", "huge"}));
  EXPECT_EQ(shards, (std::set<std::string>{"0/4\n", "1/4\n", "2/4\n", "3/4\n"}));
  HttpResult none = c.Call("POST", "/v1/tasks/broadcast",
                           R"({"type":"exec","queue":"jobs","require":["zone=mars"],
                               "payload":{"argv":["true"]}})");
  EXPECT_EQ(none.status, 409) << none.body;
  EXPECT_NE(none.body.find("no live registered worker"), std::string::npos) << none.body;
  HttpResult bad = c.Call("POST", "/v1/tasks", R"({"type":"x","require":[{"key":"zone","op":"near"}]})");
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_NE(bad.body.find("require[0].op"), std::string::npos) << bad.body;
}

// A command that takes more memory than its task asked for is killed and
// the attempt fails with "memory limit exceeded"; one within it runs. Once
// with the method this machine allows best, once with the rlimit watch
// every machine has.
TEST(PlacementHttpTest, ACommandPastItsMemoryIsKilled) {
  ServerProcess server;
  server.Start();
  HttpConn c(server.port());
  for (const char* method : {"auto", "rlimit"}) {
    SCOPED_TRACE(method);
    WorkerProcess w(server.port(), std::string("mem-") + method, {"--limits", method});
    ASSERT_TRUE(WaitFor([&] { return LiveWorkers(c) == 1; }, 30s)) << w.Log();
    const std::string hog = DRAY_MEMHOG;
    const std::string over = Submit(c, R"({"type":"exec","queue":"jobs","max_attempts":1,
        "resources":{"memory_mb":64},"payload":{"argv":[")" + hog + R"(","512","3000"]}})");
    const std::string within = Submit(c, R"({"type":"exec","queue":"jobs","max_attempts":1,
        "resources":{"memory_mb":256},"payload":{"argv":[")" + hog + R"(","16","100"]}})");
    json::value o = Wait(c, over);
    EXPECT_EQ(Str(o.at("state")), "failed") << json::serialize(o);
    EXPECT_NE(Str(o.at("error")).find("memory limit exceeded"), std::string::npos)
        << json::serialize(o);
    EXPECT_EQ(o.at("result").at("memory_exceeded"), true) << json::serialize(o);
    json::value i = Wait(c, within);
    EXPECT_EQ(Str(i.at("state")), "succeeded") << json::serialize(i);
    EXPECT_EQ(Str(i.at("result").at("stdout")), "holding 16 MiB\n");
    // The method is reported at start.
    EXPECT_NE(w.Log().find("task limits: "), std::string::npos) << w.Log();
    if (std::string(method) == "rlimit") {
      EXPECT_NE(w.Log().find("task limits: rlimit"), std::string::npos);
    }
    std::printf("[ limits ] %s: %s\n", method,
                w.Log().substr(w.Log().find("task limits: ")).c_str());
    w.Stop();
    ASSERT_TRUE(WaitFor([&] { return LiveWorkers(c) == 0; }, 30s));
  }
}

// Where the worker may make cgroups, a task's "cpu" caps its command's CPU
// time: the command runs in a cgroup whose CFS quota is its request, which
// the command reads back from inside (cgroup v1's cpu controller, else v2's
// cpu.max). The kernel does the rest; how much slower a capped busy loop
// runs depends on the machine's load, so it is not measured here. Skipped
// where only the rlimit watch is allowed (it does not limit CPU).
TEST(PlacementHttpTest, ACommandIsHeldToItsCpuWhereCgroupsAllow) {
  ServerProcess server;
  server.Start();
  HttpConn c(server.port());
  WorkerProcess w(server.port(), "cpu", {"--limits", "auto"});
  ASSERT_TRUE(WaitFor([&] { return LiveWorkers(c) == 1; })) << w.Log();
  ASSERT_TRUE(WaitFor([&] { return w.Log().find("task limits: ") != std::string::npos; }));
  if (w.Log().find("task limits: cgroup") == std::string::npos) {
    GTEST_SKIP() << "no cgroup here: " << w.Log();
  }
  // Prints "<quota> <period>" in microseconds of the command's own cgroup.
  const std::string script =
      "p=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' /proc/self/cgroup); "
      "m=$(awk '{for (i = 7; i <= NF; i++) if ($i == \"-\") { if ($(i+1) == \"cgroup\" && "
      "$(i+3) ~ /(^|,)cpu(,|$)/) print $5; break }}' /proc/self/mountinfo | head -n 1); "
      "if [ -n \"$m\" ] && [ -f \"$m$p/cpu.cfs_quota_us\" ]; then "
      "echo \"$(cat \"$m$p/cpu.cfs_quota_us\") $(cat \"$m$p/cpu.cfs_period_us\")\"; exit 0; fi; "
      "m=$(awk '{for (i = 7; i <= NF; i++) if ($i == \"-\") { if ($(i+1) == \"cgroup2\") print $5; "
      "break }}' /proc/self/mountinfo | head -n 1); "
      "cat \"$m$(sed -n 's/^0:://p' /proc/self/cgroup)/cpu.max\"";
  auto quota = [&](int millicores) {
    json::object spec{{"type", "exec"}, {"queue", "jobs"}, {"max_attempts", 1},
                      {"resources", json::object{{"cpu", millicores}}},
                      {"payload", json::object{{"argv", json::array{"sh", "-c", script}}}}};
    const std::string id = Submit(c, json::serialize(spec));
    json::value t = Wait(c, id);
    EXPECT_EQ(Str(t.at("state")), "succeeded") << json::serialize(t);
    return Str(t.at("result").at("stdout"));
  };
  EXPECT_EQ(quota(100), "10000 100000\n");    // a tenth of a CPU in each 100 ms
  EXPECT_EQ(quota(2000), "200000 100000\n");  // two CPUs' worth
}

}  // namespace
}  // namespace dray::testing
