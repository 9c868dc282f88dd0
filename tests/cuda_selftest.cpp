// hone_cuda_selftest: the CUDA kernel checks of tests/kernels/cuda_kernel_checks.h without
// GoogleTest, for a GPU machine that has a CUDA toolkit but no test framework. Prints one line
// per check and exits non-zero when one fails (or 0 with a note when there is no device).
//
//   tools/device-check.sh builds and runs it; by hand:
//   cmake --build BUILD --target hone_cuda_selftest && BUILD/tests/hone_cuda_selftest
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include "kernels/cuda_kernel_checks.h"
#include "kernels/runtime.h"

int main() {
  if (!hone::kernels::cuda_device_present()) {
    std::printf("[hone_cuda_selftest] no CUDA device: nothing to check\n");
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("[hone_cuda_selftest] device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  int failed = 0;
  for (const auto& [name, check] : hone::cudacheck::all_checks()) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string err;
    try {
      err = check();
    } catch (const std::exception& e) {
      err = std::string("exception: ") + e.what();
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-6s %-28s %8.1f ms  %s\n", err.empty() ? "PASS" : "FAIL", name.c_str(), ms, err.c_str());
    failed += !err.empty();
  }
  std::printf("[hone_cuda_selftest] %d check(s) failed\n", failed);
  return failed ? 1 : 0;
}
