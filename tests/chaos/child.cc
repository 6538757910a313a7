#include "chaos/child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace dray::chaos {

ChildClient::ChildClient(std::string binary, std::vector<std::string> args,
                         std::vector<std::string> prefix)
    : argv_(std::move(prefix)) {
  argv_.push_back(std::move(binary));
  argv_.insert(argv_.end(), args.begin(), args.end());
}

ChildClient::~ChildClient() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

Status ChildClient::Start() {
  int out[2];
  if (pipe(out) != 0) return Unavailable("pipe failed");
  pid_ = fork();
  if (pid_ < 0) return Unavailable("fork failed");
  if (pid_ == 0) {
    // A process group of its own. Paused (SIGSTOP) in its parent's group,
    // it would be sent SIGHUP, which ends it, whenever any process of that
    // group exits while the group is orphaned: the case for a suite run
    // detached from its terminal (nohup, a CI runner whose parent is init).
    // Alone in its group with its parent outside, it is never orphaned while
    // the test lives.
    setpgid(0, 0);
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    std::vector<char*> cargv;
    for (std::string& a : argv_) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') line.push_back(ch);
  // Drain the rest so the child never blocks on a full pipe.
  std::thread([fd = out[0]] {
    char buf[512];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }).detach();
  if (line != "running") return Unavailable("chaos client did not start: '" + line + "'");
  return Status::Ok();
}

void ChildClient::Pause() { kill(pid_, SIGSTOP); }
void ChildClient::Resume() { kill(pid_, SIGCONT); }

StatusOr<std::vector<Op>> ChildClient::Stop(const std::string& history_path) {
  if (pid_ <= 0) return FailedPrecondition("not running");
  kill(pid_, SIGCONT);
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Internal("chaos client exited with status " + std::to_string(status));
  }
  return History::Load(history_path);
}

namespace {

Status Run(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  if (rc != 0) return Unavailable("'" + cmd + "' failed (" + std::to_string(rc) + ")");
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<NetNs>> NetNs::Create(int index) {
  std::unique_ptr<NetNs> n(new NetNs());
  const std::string tag = std::to_string(index % 16000);
  n->name_ = "dray-chaos-" + tag;
  n->host_if_ = "drh" + tag;
  n->ns_if_ = "drn" + tag;
  const int a = (index % 16000) * 4;  // a /30 per index inside 10.213.0.0/16
  const std::string net = "10.213." + std::to_string(a / 256) + ".";
  n->host_addr_ = net + std::to_string(a % 256 + 1);
  n->ns_addr_ = net + std::to_string(a % 256 + 2);
  // Anything left by a crashed earlier run with the same index.
  Run("ip netns del " + n->name_).IgnoreError();
  Run("ip link del " + n->host_if_).IgnoreError();
  for (const std::string& cmd : {
           "ip netns add " + n->name_,
           "ip link add " + n->host_if_ + " type veth peer name " + n->ns_if_,
           "ip link set " + n->ns_if_ + " netns " + n->name_,
           "ip addr add " + n->host_addr_ + "/30 dev " + n->host_if_,
           "ip link set " + n->host_if_ + " up",
           "ip -n " + n->name_ + " addr add " + n->ns_addr_ + "/30 dev " + n->ns_if_,
           "ip -n " + n->name_ + " link set " + n->ns_if_ + " up",
           "ip -n " + n->name_ + " link set lo up",
       }) {
    DRAY_RETURN_IF_ERROR(Run(cmd));
  }
  return n;
}

NetNs::~NetNs() {
  Run("ip link del " + host_if_).IgnoreError();
  Run("ip netns del " + name_).IgnoreError();
}

Status NetNs::Cut() { return Run("ip -n " + name_ + " link set " + ns_if_ + " down"); }
Status NetNs::Heal() { return Run("ip -n " + name_ + " link set " + ns_if_ + " up"); }

}  // namespace dray::chaos
