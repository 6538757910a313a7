// The `dray` command. Everything lives in the dray_cli library (RunCli in
// cli.h) so that tests can drive it; this file adds what the build knows of
// itself (dray_build_info.h is generated at build time by
// cmake/WriteBuildInfo.cmake).
#include "cli/cli.h"
#include "dray_build_info.h"

int main(int argc, char** argv) {
  return dray::RunCli(argc, argv, dray::BuildInfo{DRAY_VERSION, DRAY_REVISION});
}
