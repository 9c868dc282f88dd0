// The emulator's activity records (tests/cuda_emu/cupti.cpp): the runtime, the emulated cuBLASLt
// report what ran, with host-clock timestamps, while a client has CUPTI's activity API enabled.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace hone::emu {

uint64_t activity_clock_ns();
// True while kernel (resp. copy, memset) records are wanted: callers skip the clock otherwise.
bool recording_kernels();
bool recording_copies();
void record_kernel(const char* name, uint64_t start_ns, uint64_t end_ns);
void record_copy(cudaMemcpyKind kind, size_t bytes, uint64_t start_ns, uint64_t end_ns);
void record_memset(int value, size_t bytes, uint64_t start_ns, uint64_t end_ns);

// Records its scope as one kernel named `name` (the emulated libraries' work: a GEMM, a cuDNN graph).
class KernelActivity {
 public:
  explicit KernelActivity(const char* name) : name_(name), start_(recording_kernels() ? activity_clock_ns() : 0) {}
  ~KernelActivity() {
    if (start_) record_kernel(name_, start_, activity_clock_ns());
  }
  KernelActivity(const KernelActivity&) = delete;
  KernelActivity& operator=(const KernelActivity&) = delete;

 private:
  const char* name_;
  uint64_t start_;
};

}  // namespace hone::emu
