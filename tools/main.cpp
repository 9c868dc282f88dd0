// The hone command line. Subcommands arrive with their issues; for now: `hone version`.
#include <cstdio>
#include <cstring>

#include "kernels/gemm.h"
#include "kernels/runtime.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "version") == 0) {
    std::printf("hone 0.1 (sgemm: %s, cuda device: %s)\n", hone::kernels::sgemm_backend(),
                hone::kernels::cuda_device_present() ? "yes" : "no");
    return 0;
  }
  std::fprintf(stderr, "usage: hone version\n");
  return 2;
}
