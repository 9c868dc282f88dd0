// Timing CUDA work in Google Benchmark: each iteration is bracketed by CUDA events on the legacy
// default stream (which the engine's and the kernels' streams stay ordered with) and reported as
// manual time, so register the benchmark with ->UseManualTime(). Only CUDA builds include this.
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda_api.h"

namespace hone::bench {

// Keeps the current device's kernel scratch pool as the engine's runtime does for training
// (kernels::cuda::keep_scratch_pool_memory): otherwise every timed call that takes scratch (the column
// sums, the LayerNorm backward's partials) would map device memory again and be timed doing it.
inline void keep_scratch_pool() {
  int device = 0;
  if (cudaGetDevice(&device) == cudaSuccess) kernels::cuda::keep_scratch_pool_memory(device);
}

// Runs run() once per iteration of state, timing each with CUDA events.
template <class F>
void time_with_cuda_events(benchmark::State& state, F&& run) {
  keep_scratch_pool();
  cudaEvent_t start, stop;
  kernels::cuda::check(cudaEventCreate(&start), "cudaEventCreate (bench)");
  kernels::cuda::check(cudaEventCreate(&stop), "cudaEventCreate (bench)");
  for (auto _ : state) {
    cudaEventRecord(start, nullptr);
    run();
    cudaEventRecord(stop, nullptr);
    kernels::cuda::check(cudaEventSynchronize(stop), "cudaEventSynchronize (bench)");
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

}  // namespace hone::bench
