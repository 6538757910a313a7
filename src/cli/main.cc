// The `dray` command. Everything lives in cli.cc so that tests can drive it.
#include "cli/cli.h"

int main(int argc, char** argv) { return dray::RunCli(argc, argv); }
