// Nemesis 4: the disk fills. The data dir is a small tmpfs (48 MiB) that a
// "neighbour" file also fills; submits with 4 KiB payloads and workers run
// until the disk is nearly full. Then submits must get 507 out_of_space with
// Retry-After, /readyz must say why, and the workers' completes must still
// be accepted (the reserve, DiskGuard). When the neighbour's file is deleted,
// submits must be accepted again without a restart. Nothing acknowledged may
// be lost. Needs root (mount); skipped, saying so, without it.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "chaos/load.h"
#include "support/server_process.h"
#include "support/wait.h"

namespace dray::chaos {
namespace {

using dray::testing::Http;
using dray::testing::HttpResult;
using dray::testing::ServerProcess;
using dray::testing::WaitFor;

class TmpfsDir {
 public:
  explicit TmpfsDir(std::size_t mib) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dray-diskfull-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return;
    path_ = tmpl;
    const std::string opts = "size=" + std::to_string(mib) + "m";
    mounted_ = mount("tmpfs", path_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~TmpfsDir() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

std::size_t CountStatus(const History& h, OpKind kind, int status, std::int64_t after_us = 0) {
  std::size_t n = 0;
  for (const Op& op : h.ops()) n += op.kind == kind && op.status == status && op.invoked_us >= after_us;
  return n;
}

TEST(ChaosDiskFullTest, AFullDiskRefusesSubmitsLetsRunningTasksReportAndRecovers) {
  TmpfsDir fs(48);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const std::string data = fs.path() + "/data";
  const std::string neighbour = fs.path() + "/neighbour";
  {  // another program's 24 MiB on the same disk
    std::ofstream f(neighbour, std::ios::binary);
    std::string mib(1 << 20, 'n');
    for (int i = 0; i < 24; ++i) f << mib;
  }
  ServerProcess server({"--disk-reserve-mb", "4"});
  server.set_data_dir(data);
  server.Start();
  History history;
  LoadOptions opt;
  opt.payload_padding = 4096;
  opt.retry_fail_ratio = 0.05;
  opt.final_fail_ratio = 0;
  MixedLoad load(server.port(), &history, opt);
  ASSERT_EQ(load.ConfigureQueue(), 200);
  load.StartSubmitters();
  load.StartWorkers();

  ASSERT_TRUE(WaitFor([&] { return CountStatus(history, OpKind::kSubmit, 507) > 0; },
                      std::chrono::seconds(60)))
      << "no submit was refused with 507 (the disk filled without the guard noticing?)";
  const std::int64_t full_at = history.NowUs();
  HttpResult ready = Http(server.port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("disk"), std::string::npos) << ready.body;
  HttpResult refused = Http(server.port(), "POST", "/v1/tasks", R"({"type":"t","queue":"chaos-probe"})");
  EXPECT_EQ(refused.status, 507) << refused.body;
  EXPECT_EQ(refused.headers.count("retry-after"), 1u);
  EXPECT_NE(refused.body.find("out_of_space"), std::string::npos) << refused.body;
  // The workers go on finishing what was accepted.
  const std::uint64_t outcomes_at_full = load.accepted_outcomes();
  EXPECT_TRUE(WaitFor([&] { return load.accepted_outcomes() >= outcomes_at_full + 50; },
                      std::chrono::seconds(30)))
      << "completes stopped when the disk filled";

  // The neighbour frees its space: submits are accepted again, no restart.
  std::filesystem::remove(neighbour);
  const std::int64_t freed_at = history.NowUs();
  EXPECT_TRUE(WaitFor([&] { return CountStatus(history, OpKind::kSubmit, 201, freed_at) > 0; },
                      std::chrono::seconds(30)))
      << "submits were not accepted again after space was freed";
  EXPECT_EQ(Http(server.port(), "GET", "/readyz").status, 200);

  Report report = load.DrainAndCheck(history, std::chrono::seconds(60));
  std::printf("disk full: %zu submits refused with 507, %zu completes/fails accepted while full; %s\n",
              CountStatus(history, OpKind::kSubmit, 507),
              CountStatus(history, OpKind::kComplete, 200, full_at) +
                  CountStatus(history, OpKind::kFail, 200, full_at),
              report.Summary().c_str());
  EXPECT_TRUE(report.ok()) << report.Summary(20);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dray::chaos
