#include "cli/exec_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "cli/task_limits.h"
#include "core/json_writer.h"
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

namespace json = boost::json;

namespace dray {
namespace {

struct Command {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V", added to the worker's environment
  std::string cwd;
  std::string stdin_data;
};

StatusOr<Command> ParseCommand(const std::string& payload) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return InvalidArgument("a command task's payload must be an object with 'argv'");
  const json::object& o = v.as_object();
  Command c;
  const json::value* argv = o.if_contains("argv");
  if (!argv || !argv->is_array() || argv->as_array().empty()) {
    return InvalidArgument("payload.argv must be a non-empty array of strings");
  }
  for (const json::value& a : argv->as_array()) {
    if (!a.is_string()) return InvalidArgument("payload.argv must hold only strings");
    c.argv.emplace_back(a.as_string());
  }
  if (const json::value* env = o.if_contains("env")) {
    if (!env->is_object()) return InvalidArgument("payload.env must be an object of strings");
    for (const auto& [k, x] : env->as_object()) {
      if (!x.is_string()) return InvalidArgument("payload.env values must be strings");
      c.env.push_back(std::string(k) + "=" + std::string(x.as_string()));
    }
  }
  if (const json::value* cwd = o.if_contains("cwd")) {
    if (!cwd->is_string()) return InvalidArgument("payload.cwd must be a string");
    c.cwd = cwd->as_string();
  }
  if (const json::value* in = o.if_contains("stdin")) {
    if (!in->is_string()) return InvalidArgument("payload.stdin must be a string");
    c.stdin_data = in->as_string();
  }
  return c;
}

void Append(std::string* tail, const char* data, std::size_t n, std::size_t max) {
  tail->append(data, n);
  if (tail->size() > max) tail->erase(0, tail->size() - max);
}

}  // namespace

StatusOr<ExecResult> RunCommand(const std::string& payload_json,
                                std::optional<std::chrono::milliseconds> timeout,
                                std::stop_token stop, const ExecLimits& limits,
                                const std::vector<std::string>& env) {
  auto cmd = ParseCommand(payload_json);
  if (!cmd.ok()) return cmd.status();
  int in[2], out[2], err[2], exec_err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
      pipe2(exec_err, O_CLOEXEC)) {
    return Internal(std::string("pipe: ") + std::strerror(errno));
  }
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& a : cmd->argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Later entries replace earlier ones of the same name: a child's getenv
  // takes the first match, so a duplicate would not override.
  std::vector<std::string> env_store;
  std::map<std::string, std::size_t, std::less<>> slot;  // name -> index in env_store
  auto put = [&](const std::string& kv) {
    const std::string name = kv.substr(0, kv.find('='));
    auto [it, fresh] = slot.emplace(name, env_store.size());
    if (fresh) {
      env_store.push_back(kv);
    } else {
      env_store[it->second] = kv;
    }
  };
  for (char** e = environ; *e; ++e) put(*e);
  for (const std::string& e : env) put(e);
  for (const std::string& e : cmd->env) put(e);
  std::vector<char*> envp;
  for (std::string& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  const auto started = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The worker blocks SIGTERM/SIGINT (one thread takes them with sigwait)
    // and ignores SIGPIPE; the command must start with neither.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    if (limits.cage) limits.cage->EnterFromChild();
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!cmd->cwd.empty() && chdir(cmd->cwd.c_str()) != 0) {
      int e = errno;
      (void)!write(exec_err[1], &e, sizeof e);
      _exit(127);
    }
    execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!write(exec_err[1], &e, sizeof e);
    _exit(127);
  }
  setpgid(pid, pid);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(exec_err[1]);
  int child_errno = 0;
  ssize_t got = read(exec_err[0], &child_errno, sizeof child_errno);  // EOF on successful exec
  close(exec_err[0]);
  if (got == static_cast<ssize_t>(sizeof child_errno)) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    waitpid(pid, nullptr, 0);
    return FailedPrecondition("cannot run '" + cmd->argv[0] + "'" +
                              (cmd->cwd.empty() ? "" : " in " + cmd->cwd) + ": " +
                              std::strerror(child_errno));
  }

  ExecResult res;
  std::size_t written = 0;
  int in_fd = in[1];
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  if (cmd->stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  signal(SIGPIPE, SIG_IGN);
  bool term_sent = false;
  std::chrono::steady_clock::time_point kill_at{};
  int open_fds = 2;
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    auto now = std::chrono::steady_clock::now();
    if (!term_sent) {
      bool expired = timeout && now - started >= *timeout;
      if (expired || stop.stop_requested()) {
        res.timed_out = expired;
        res.stopped = !expired;
        kill(-pid, SIGTERM);
        term_sent = true;
        kill_at = now + limits.kill_grace;
      }
    } else if (now >= kill_at) {
      kill(-pid, SIGKILL);
      kill_at = now + std::chrono::hours(1);
    }
    if (limits.cage && !res.memory_exceeded && limits.cage->OverMemory(pid)) {
      res.memory_exceeded = true;
      kill(-pid, SIGKILL);
    }
    pollfd fds[3];
    int n = 0;
    if (out[0] >= 0) fds[n++] = {out[0], POLLIN, 0};
    if (err[0] >= 0) fds[n++] = {err[0], POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    // Short waits: the loop also watches the deadline, `stop` and the child.
    poll(fds, static_cast<nfds_t>(n), open_fds > 0 ? 50 : 10);
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, cmd->stdin_data.data() + written, cmd->stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        bool again = w < 0 && (errno == EAGAIN || errno == EINTR);
        // EPIPE (the child closed its stdin) ends the feeding, not the run.
        if ((w < 0 && !again) || written == cmd->stdin_data.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[16384];
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r > 0) {
        Append(fds[i].fd == out[0] ? &res.stdout_tail : &res.stderr_tail, buf,
               static_cast<std::size_t>(r), limits.tail_bytes);
      } else {
        close(fds[i].fd);
        (fds[i].fd == out[0] ? out[0] : err[0]) = -1;
        --open_fds;
      }
    }
    // Checked every round, not only once both pipes closed: a background
    // grandchild (`sh -c 'daemon &'`) may hold them open long after the
    // command itself exited.
    if (waitpid(pid, &status, WNOHANG) == pid) reaped = true;
  }
  // Read what is left after the child exited.
  for (int* fd : {&out[0], &err[0]}) {
    if (*fd < 0) continue;
    fcntl(*fd, F_SETFL, O_NONBLOCK);
    char buf[16384];
    ssize_t r;
    while ((r = read(*fd, buf, sizeof buf)) > 0) {
      Append(*fd == out[0] ? &res.stdout_tail : &res.stderr_tail, buf, static_cast<std::size_t>(r),
             limits.tail_bytes);
    }
    close(*fd);
    *fd = -1;
  }
  if (in_fd >= 0) close(in_fd);
  // Whatever the child left in its group goes with it.
  kill(-pid, SIGKILL);
  res.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  if (limits.cage && !res.memory_exceeded && (res.signal != 0 || res.exit_code != 0)) {
    res.memory_exceeded = limits.cage->MemoryExceeded();
  }
  return res;
}

std::string ExecResultJson(const ExecResult& r) {
  json::object o{{"exit_code", r.signal ? json::value(nullptr) : json::value(r.exit_code)},
                 {"signal", r.signal},
                 {"stdout", r.stdout_tail},
                 {"stderr", r.stderr_tail},
                 {"duration_ms", r.duration_ms},
                 {"timed_out", r.timed_out}};
  if (r.memory_exceeded) o["memory_exceeded"] = true;
  return JsonText(o);
}

}  // namespace dray
