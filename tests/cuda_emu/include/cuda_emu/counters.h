// The CUDA emulator's counters (tests/cuda_emu/runtime.cpp keeps them): the host's waits for the
// device, for tests that check where a program makes the host wait as a GPU would, and the kernel
// launches by kernel, for tests that hold a training step to a launch budget.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hone::emu {

// The runtime calls that make a host wait for the device on a GPU, counted since the process
// started: explicit synchronisations (stream, device, event), copies to host memory (they return
// when the data is there) and cudaFree (it waits for the device to be idle); with the copies from
// pageable host memory (which may wait for the stream), cudaMalloc (which costs far more than a
// kernel launch) and the stream-ordered cudaMallocAsync (cheap: served from the device's pool). A
// test can so check that a training step waits only where it reads a logged value. Copies to the
// device from page-locked memory (cudaHostAlloc) are counted apart: those never wait.
struct HostWaits {
  uint64_t synchronize = 0, device_to_host = 0, free = 0;  // each of these waits
  uint64_t host_to_device = 0, malloc = 0;                 // these may wait (pageable source), or cost
  uint64_t malloc_async = 0, host_to_device_pinned = 0;    // these do not
};
HostWaits host_waits();

// The device's default memory pool (where cudaMallocAsync serves from): its release threshold (0, the
// CUDA default, gives its unused memory back at every synchronisation) and the cudaMemPoolTrimTo calls
// since the process started.
struct MemPoolState {
  uint64_t release_threshold = 0, trims = 0;
};
MemPoolState mem_pool();
// Makes the next n cudaMalloc calls fail with cudaErrorMemoryAllocation (a full device).
void fail_next_mallocs(int n);

// Kernel launches since the process started, by the kernel expression at the launch site (e.g.
// "layernorm_forward_kernel<T, A>"); launches the emulator refused are not counted.
std::map<std::string, uint64_t> launches();

// One cublasLtMatmul as the library saw it (tests/cuda_emu/cublaslt.cpp records each one that ran):
// for tests that check a step's GEMMs are laid out for the GPU's fast kernels. Tensor-core GEMM
// kernels on sm80/sm90 (TMA on Hopper) need every matrix's base address and leading dimension
// (and batch stride) to be multiples of 16 bytes; cuBLASLt runs anything else on slow kernels.
struct GemmCall {
  int elem_bytes = 0;                      // of A and B
  int d_elem_bytes = 0;                    // of D (4 for autocast's float32 weight gradients)
  int64_t m = 0, n = 0, k = 0, batch = 1;  // column-major, as cuBLASLt sees them
  int64_t lda = 0, ldb = 0, ldd = 0;       // in elements
  int64_t stride_a = 0, stride_b = 0, stride_d = 0;
  uintptr_t a = 0, b = 0, d = 0, bias = 0;  // addresses (bias 0 when none)
  uint32_t epilogue = 0;
  // The first thing that is not a multiple of 16 bytes ("lda 50257 elements"), or "" when all are.
  std::string misaligned() const;
};
std::vector<GemmCall> gemm_calls();
// cublasLtMatmulAlgoGetHeuristic calls since the process started: host time a program should spend once
// per GEMM configuration, not once per call.
uint64_t heuristic_queries();

}  // namespace hone::emu
