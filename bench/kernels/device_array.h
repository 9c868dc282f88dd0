// Device memory for the CUDA kernel benchmarks, freed on scope exit: as cudaMalloc gives it, or filled
// with `period` values drawn uniformly from [lo, hi) (seeded) and repeated, so that gigabytes of
// operands need not be generated on the host. CUDA builds only.
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cuda_api.h"

namespace hone::bench {

struct Fill {
  float lo = -1.f, hi = 1.f;
  int64_t period = int64_t(1) << 20;
  uint32_t seed = 1;
};

template <class T>
struct DeviceArray {
  T* p = nullptr;
  explicit DeviceArray(int64_t n) {
    kernels::cuda::check(cudaMalloc(reinterpret_cast<void**>(&p), size_t(std::max<int64_t>(n, 1)) * sizeof(T)),
                         "cudaMalloc (bench)");
  }
  DeviceArray(int64_t n, const Fill& f) : DeviceArray(n) {
    std::mt19937 rng(f.seed);
    std::uniform_real_distribution<float> u(f.lo, f.hi);
    std::vector<T> pattern(size_t(std::min(n, f.period)));
    for (T& v : pattern) v = T(u(rng));
    for (int64_t at = 0; at < n; at += int64_t(pattern.size())) {
      const int64_t len = std::min<int64_t>(int64_t(pattern.size()), n - at);
      kernels::cuda::check(cudaMemcpy(p + at, pattern.data(), size_t(len) * sizeof(T), cudaMemcpyHostToDevice),
                           "cudaMemcpy (bench)");
    }
  }
  ~DeviceArray() { cudaFree(p); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
};

}  // namespace hone::bench
