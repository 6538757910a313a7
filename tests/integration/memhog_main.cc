// A child for the memory enforcement test: takes N MiB and touches every
// page of it, then holds it for a while and exits 0.
//   dray_memhog MIB [HOLD_MS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: dray_memhog MIB [HOLD_MS]\n");
    return 2;
  }
  const std::size_t mib = std::strtoull(argv[1], nullptr, 10);
  const long hold_ms = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 2000;
  auto* p = static_cast<char*>(std::malloc(mib << 20));
  if (!p) {
    std::fprintf(stderr, "malloc of %zu MiB failed\n", mib);
    return 3;
  }
  for (std::size_t i = 0; i < (mib << 20); i += 4096) p[i] = static_cast<char>(i);
  std::printf("holding %zu MiB\n", mib);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  std::free(p);
  return 0;
}
