// Host-side pieces shared by the CUDA kernel families: error checks and names.
#include <atomic>
#include <stdexcept>
#include <string>

#include "kernels/cuda_api.h"

namespace hone::kernels::cuda {

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that the next call starts clean
  throw std::runtime_error(std::string("CUDA ") + what + " failed: " + cudaGetErrorString(err));
}

namespace {
std::atomic<void (*)()> g_memory_pressure_handler{nullptr};
}

void set_memory_pressure_handler(void (*release_cached_memory)()) { g_memory_pressure_handler = release_cached_memory; }

void* scratch_alloc(size_t bytes, cudaStream_t stream, const char* what) {
  void* p = nullptr;
  cudaError_t err = cudaMallocAsync(&p, bytes, stream);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    if (auto release = g_memory_pressure_handler.load()) {
      release();
      err = cudaMallocAsync(&p, bytes, stream);
    }
  }
  check(err, what);
  return p;
}

void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return;
  throw std::runtime_error(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorString(err));
}

const char* index_op_name(int32_t op) {
  switch (op) {
    case kOpEmbedding: return "embedding";
    case kOpIndexSelect: return "index_select";
    case kOpGather: return "gather";
    case kOpCrossEntropy: return "cross_entropy";
  }
  return "an indexing op";
}

}  // namespace hone::kernels::cuda
