#include "cli/task_limits.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace dray {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// The number after `key` on a line of a "key value" file, or -1.
std::int64_t KeyedValue(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string k;
  std::int64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return -1;
}

// Writes a decimal pid with async-signal-safe calls only.
void WritePid(int fd, pid_t pid) noexcept {
  char buf[24];
  int n = 0;
  char rev[24];
  do {
    rev[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0);
  for (int i = 0; i < n; ++i) buf[i] = rev[n - 1 - i];
  (void)!::write(fd, buf, static_cast<std::size_t>(n));
}

struct Mount {
  std::string point;
  std::string root;
};

// The mount of a cgroup hierarchy: cgroup2, or the v1 one holding `controller`.
std::optional<Mount> FindMount(bool v2, std::string_view controller) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point, opts, field;
    f >> id >> parent >> dev >> root >> point >> opts;
    while (f >> field && field != "-") {
    }
    std::string fstype, source, super;
    f >> fstype >> source >> super;
    if (v2 && fstype == "cgroup2") return Mount{point, root};
    if (!v2 && fstype == "cgroup") {
      std::istringstream s(super);
      std::string o;
      while (std::getline(s, o, ',')) {
        if (o == controller) return Mount{point, root};
      }
    }
  }
  return std::nullopt;
}

// This process's cgroup directory: in the v2 hierarchy, or in the v1 one
// holding `controller`.
std::optional<std::string> OwnCgroup(bool v2, std::string_view controller) {
  auto mount = FindMount(v2, controller);
  if (!mount) return std::nullopt;
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    bool match = v2 ? line.compare(0, 3, "0::") == 0 : false;
    if (!v2) {
      std::istringstream s(controllers);
      std::string c;
      while (std::getline(s, c, ',')) match = match || c == controller;
    }
    if (!match) continue;
    if (mount->root != "/" && path.compare(0, mount->root.size(), mount->root) == 0) {
      path = path.substr(mount->root.size());
    }
    return mount->point + (path == "/" ? "" : path);
  }
  return std::nullopt;
}

std::atomic<std::uint64_t> next_cage{0};

std::string CageName() {
  return "dray-" + std::to_string(::getpid()) + "-" + std::to_string(next_cage.fetch_add(1));
}

// rmdir, retried a little while the killed processes finish leaving.
void RemoveDir(const std::string& dir) {
  for (int i = 0; i < 100; ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---------------------------------------------------------------- cgroups

// One cgroup per hierarchy the cage uses (v2: one; v1: memory and cpu).
class CgroupCage : public Cage {
 public:
  CgroupCage(bool v2, std::vector<std::string> dirs, std::string memory_dir)
      : v2_(v2), dirs_(std::move(dirs)), memory_dir_(std::move(memory_dir)) {
    for (const std::string& d : dirs_) {
      fds_.push_back(::open((d + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    }
  }
  ~CgroupCage() override {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
    for (const std::string& d : dirs_) {
      if (v2_) WriteFile(d + "/cgroup.kill", "1");
      RemoveDir(d);
    }
  }
  bool ok() const {
    for (int fd : fds_) {
      if (fd < 0) return false;
    }
    return true;
  }
  void EnterFromChild() const noexcept override {
    const pid_t self = ::getpid();
    for (int fd : fds_) WritePid(fd, self);
  }
  bool OverMemory(pid_t) override { return false; }
  bool MemoryExceeded() const override {
    if (memory_dir_.empty()) return false;
    if (v2_) return KeyedValue(ReadFile(memory_dir_ + "/memory.events"), "oom_kill") > 0;
    const std::string oom = ReadFile(memory_dir_ + "/memory.oom_control");
    if (std::int64_t kills = KeyedValue(oom, "oom_kill"); kills >= 0) return kills > 0;
    return std::atoll(ReadFile(memory_dir_ + "/memory.failcnt").c_str()) > 0;
  }

 private:
  const bool v2_;
  const std::vector<std::string> dirs_;
  const std::string memory_dir_;
  std::vector<int> fds_;
};

class CgroupEnforcer : public LimitEnforcer {
 public:
  CgroupEnforcer(bool v2, std::string memory_base, std::string cpu_base)
      : v2_(v2), memory_base_(std::move(memory_base)), cpu_base_(std::move(cpu_base)) {}
  LimitMethod method() const override { return v2_ ? LimitMethod::kCgroupV2 : LimitMethod::kCgroupV1; }
  std::string Describe() const override {
    return std::string(v2_ ? "cgroup v2" : "cgroup v1") + " (memory" +
           (cpu_base_.empty() ? "; cpu not limited: no cpu controller" : ", cpu") + ") under " +
           memory_base_;
  }
  StatusOr<std::unique_ptr<Cage>> Prepare(const TaskLimits& limits) override {
    if (limits.memory_bytes <= 0 && limits.cpu_millicores <= 0) return std::unique_ptr<Cage>();
    const std::string name = CageName();
    std::vector<std::string> dirs;
    std::string memory_dir;
    auto fail = [&](const std::string& what) -> Status {
      for (const std::string& d : dirs) RemoveDir(d);
      return Internal("cannot limit the task: " + what + ": " + std::strerror(errno));
    };
    auto make = [&](const std::string& base) -> std::optional<std::string> {
      const std::string dir = base + "/" + name;
      if (::mkdir(dir.c_str(), 0755) != 0) return std::nullopt;
      dirs.push_back(dir);
      return dir;
    };
    const bool cpu = limits.cpu_millicores > 0 && !cpu_base_.empty();
    if (v2_) {
      auto dir = make(memory_base_);
      if (!dir) return fail("mkdir " + memory_base_ + "/" + name);
      memory_dir = *dir;
      if (limits.memory_bytes > 0) {
        if (!WriteFile(*dir + "/memory.max", std::to_string(limits.memory_bytes))) {
          return fail("memory.max");
        }
        WriteFile(*dir + "/memory.swap.max", "0");  // absent without swap accounting
      }
      if (cpu && !WriteFile(*dir + "/cpu.max", std::to_string(limits.cpu_millicores * 100) + " 100000")) {
        return fail("cpu.max");
      }
    } else {
      if (limits.memory_bytes > 0) {
        auto dir = make(memory_base_);
        if (!dir) return fail("mkdir " + memory_base_ + "/" + name);
        memory_dir = *dir;
        const std::string bytes = std::to_string(limits.memory_bytes);
        if (!WriteFile(*dir + "/memory.limit_in_bytes", bytes)) return fail("memory.limit_in_bytes");
        WriteFile(*dir + "/memory.memsw.limit_in_bytes", bytes);  // absent without swap accounting
      }
      if (cpu) {
        auto dir = make(cpu_base_);
        if (!dir) return fail("mkdir " + cpu_base_ + "/" + name);
        if (!WriteFile(*dir + "/cpu.cfs_period_us", "100000") ||
            !WriteFile(*dir + "/cpu.cfs_quota_us", std::to_string(limits.cpu_millicores * 100))) {
          return fail("cpu.cfs_quota_us");
        }
      }
    }
    auto cage = std::make_unique<CgroupCage>(v2_, std::move(dirs), std::move(memory_dir));
    if (!cage->ok()) return Internal("cannot open the task cgroup's cgroup.procs");
    return std::unique_ptr<Cage>(std::move(cage));
  }

  // Whether a cgroup with a memory limit can be made under `base` here.
  static bool Usable(bool v2, const std::string& base, std::string* why) {
    if (v2) {
      const std::string controllers = ReadFile(base + "/cgroup.controllers");
      if (controllers.find("memory") == std::string::npos) {
        *why = "the memory controller is not available in " + base;
        return false;
      }
      const std::string subtree = ReadFile(base + "/cgroup.subtree_control");
      if (subtree.find("memory") == std::string::npos &&
          !WriteFile(base + "/cgroup.subtree_control", "+memory")) {
        *why = "cannot enable the memory controller for cgroups under " + base + ": " +
               std::strerror(errno);
        return false;
      }
      if (controllers.find("cpu") != std::string::npos) {
        WriteFile(base + "/cgroup.subtree_control", "+cpu");
      }
    }
    const std::string probe = base + "/" + CageName();
    if (::mkdir(probe.c_str(), 0755) != 0) {
      *why = "cannot create a cgroup under " + base + ": " + std::strerror(errno);
      return false;
    }
    const bool ok = WriteFile(probe + (v2 ? "/memory.max" : "/memory.limit_in_bytes"), "1073741824");
    if (!ok) *why = "cannot set a memory limit under " + base + ": " + std::strerror(errno);
    RemoveDir(probe);
    return ok;
  }

 private:
  const bool v2_;
  const std::string memory_base_;
  const std::string cpu_base_;  // v1: the cpu hierarchy's; v2: the same as memory's, or ""
};

// ---------------------------------------------------------------- rlimit

class WatchedCage : public Cage {
 public:
  explicit WatchedCage(std::int64_t memory_bytes) : memory_bytes_(memory_bytes) {}
  void EnterFromChild() const noexcept override {}
  bool OverMemory(pid_t pid) override {
    if (memory_bytes_ <= 0) return false;
    const std::string statm = ReadFile("/proc/" + std::to_string(pid) + "/statm");
    std::istringstream in(statm);
    std::int64_t size = 0, resident = 0;
    if (!(in >> size >> resident)) return false;
    if (resident * ::sysconf(_SC_PAGESIZE) <= memory_bytes_) return false;
    exceeded_ = true;
    return true;
  }
  bool MemoryExceeded() const override { return exceeded_; }

 private:
  const std::int64_t memory_bytes_;
  bool exceeded_ = false;
};

class WatchEnforcer : public LimitEnforcer {
 public:
  explicit WatchEnforcer(std::string why_not_cgroups) : why_(std::move(why_not_cgroups)) {}
  LimitMethod method() const override { return LimitMethod::kRlimit; }
  std::string Describe() const override {
    return "rlimit (memory: the child's resident set is checked every 50 ms and the child "
           "killed past its limit; cpu not limited)" +
           (why_.empty() ? std::string() : "; no cgroup: " + why_);
  }
  StatusOr<std::unique_ptr<Cage>> Prepare(const TaskLimits& limits) override {
    if (limits.memory_bytes <= 0) return std::unique_ptr<Cage>();
    return std::unique_ptr<Cage>(std::make_unique<WatchedCage>(limits.memory_bytes));
  }

 private:
  const std::string why_;
};

class NoEnforcer : public LimitEnforcer {
 public:
  LimitMethod method() const override { return LimitMethod::kNone; }
  std::string Describe() const override { return "none (requests are not enforced)"; }
  StatusOr<std::unique_ptr<Cage>> Prepare(const TaskLimits&) override {
    return std::unique_ptr<Cage>();
  }
};

}  // namespace

std::string_view LimitMethodName(LimitMethod m) {
  switch (m) {
    case LimitMethod::kNone: return "none";
    case LimitMethod::kCgroupV2: return "cgroup2";
    case LimitMethod::kCgroupV1: return "cgroup1";
    case LimitMethod::kRlimit: return "rlimit";
  }
  return "none";
}

std::optional<LimitMethod> ParseLimitMethod(std::string_view name) {
  for (LimitMethod m : {LimitMethod::kNone, LimitMethod::kCgroupV2, LimitMethod::kCgroupV1,
                        LimitMethod::kRlimit}) {
    if (LimitMethodName(m) == name) return m;
  }
  return std::nullopt;
}

StatusOr<std::unique_ptr<LimitEnforcer>> LimitEnforcer::Create(std::optional<LimitMethod> want) {
  if (want == LimitMethod::kNone) return std::unique_ptr<LimitEnforcer>(std::make_unique<NoEnforcer>());
  std::string why;
  if (!want || want == LimitMethod::kCgroupV2) {
    auto base = OwnCgroup(true, "");
    std::string w2 = "no cgroup v2 hierarchy";
    if (base && CgroupEnforcer::Usable(true, *base, &w2)) {
      const bool cpu = ReadFile(*base + "/cgroup.subtree_control").find("cpu") != std::string::npos;
      return std::unique_ptr<LimitEnforcer>(
          std::make_unique<CgroupEnforcer>(true, *base, cpu ? *base : std::string()));
    }
    if (want) return FailedPrecondition("cgroup v2 limits are not available here: " + w2);
    why = w2;
  }
  if (!want || want == LimitMethod::kCgroupV1) {
    auto memory = OwnCgroup(false, "memory");
    std::string w1 = "no cgroup v1 memory hierarchy";
    if (memory && CgroupEnforcer::Usable(false, *memory, &w1)) {
      auto cpu = OwnCgroup(false, "cpu");
      return std::unique_ptr<LimitEnforcer>(
          std::make_unique<CgroupEnforcer>(false, *memory, cpu.value_or("")));
    }
    if (want) return FailedPrecondition("cgroup v1 limits are not available here: " + w1);
    why += "; " + w1;
  }
  return std::unique_ptr<LimitEnforcer>(std::make_unique<WatchEnforcer>(why));
}

std::map<std::string, std::int64_t> MachineCapacity(std::vector<std::string>* gpu_devices) {
  std::map<std::string, std::int64_t> cap;
  cpu_set_t set;
  CPU_ZERO(&set);
  const long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                               : ::sysconf(_SC_NPROCESSORS_ONLN);
  cap["cpu"] = 1000 * std::max<long>(cpus, 1);
  std::int64_t memory = KeyedValue(ReadFile("/proc/meminfo"), "MemTotal:") * 1024;
  // The worker's own cgroup may allow less than the machine has.
  std::string own;
  if (auto v2 = OwnCgroup(true, "")) own = ReadFile(*v2 + "/memory.max");
  if (own.empty() || own == "max\n") {
    if (auto v1 = OwnCgroup(false, "memory")) own = ReadFile(*v1 + "/memory.limit_in_bytes");
  }
  if (std::int64_t limit = std::atoll(own.c_str()); limit > 0 && (memory <= 0 || limit < memory)) {
    memory = limit;
  }
  if (memory > 0) cap["memory_mb"] = memory / (1024 * 1024);
  gpu_devices->clear();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    (void)entry;
    gpu_devices->push_back(std::to_string(gpu_devices->size()));
  }
  if (!gpu_devices->empty()) cap["gpu"] = static_cast<std::int64_t>(gpu_devices->size());
  return cap;
}

}  // namespace dray
