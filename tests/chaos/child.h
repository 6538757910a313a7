// Processes and networks the chaos tests fault: a dray_chaos_client child
// (to pause with SIGSTOP), and a network namespace joined to the host by a
// veth pair (to cut off with the link down).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "chaos/history.h"
#include "dray/status.h"

namespace dray::chaos {

// A dray_chaos_client child process.
class ChildClient {
 public:
  // `prefix` runs before the binary (e.g. {"ip", "netns", "exec", "ns1"},
  // which execs it in place, so the pid is the client's own).
  ChildClient(std::string binary, std::vector<std::string> args, std::vector<std::string> prefix = {});
  ~ChildClient();  // SIGKILL if still running
  ChildClient(const ChildClient&) = delete;
  ChildClient& operator=(const ChildClient&) = delete;

  // Starts it and waits for its "running" line.
  Status Start();
  void Pause();   // SIGSTOP
  void Resume();  // SIGCONT
  // SIGTERM (after SIGCONT), waits, and reads the history it wrote.
  StatusOr<std::vector<Op>> Stop(const std::string& history_path);
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
};

// A network namespace with a veth pair to the host: the host side has
// host_addr(), the namespace side ns_addr(), both in a /30 of 10.213.0.0/16
// picked from `index`. Only these addresses are used; nothing else changes.
class NetNs {
 public:
  // Fails (Unavailable) where the process may not create namespaces.
  static StatusOr<std::unique_ptr<NetNs>> Create(int index);
  ~NetNs();  // deletes the namespace and the pair

  const std::string& name() const { return name_; }
  const std::string& host_addr() const { return host_addr_; }
  const std::string& ns_addr() const { return ns_addr_; }
  // The namespace side's link down: packets to and from it are dropped,
  // connections hang rather than reset (a partition, not a refusal).
  Status Cut();
  Status Heal();

 private:
  NetNs() = default;
  std::string name_, host_if_, ns_if_, host_addr_, ns_addr_;
};

}  // namespace dray::chaos
