// Per-device CUDA state (see cuda_runtime.h). Created lazily, under a mutex, and never destroyed:
// tensors and handles may outlive static destructors at exit.
#if defined(HONE_WITH_CUDA)
#include "engine/core/cuda_runtime.h"

#include <cublasLt.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/core/allocator.h"

namespace hone::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct DeviceState {
  std::once_flag stream_once, blas_once, record_once;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  kernels::cuda::IndexError* record = nullptr;
};

DeviceState& state(int device) {
  static std::mutex mu;
  static auto* states = new std::vector<std::unique_ptr<DeviceState>>();
  if (device < 0) throw std::invalid_argument("cuda: negative device index " + std::to_string(device));
  std::lock_guard<std::mutex> lock(mu);
  if (static_cast<size_t>(device) >= states->size()) states->resize(device + 1);
  auto& s = (*states)[device];
  if (!s) s = std::make_unique<DeviceState>();
  return *s;
}

void make_current(int device) {
  int current = -1;
  check(cudaGetDevice(&current), "cudaGetDevice");
  if (current != device) check(cudaSetDevice(device), "cudaSetDevice");
}

}  // namespace

cudaStream_t stream(int device) {
  make_current(device);
  DeviceState& s = state(device);
  std::call_once(s.stream_once, [&] {
    check(cudaStreamCreate(&s.stream), "cudaStreamCreate");
    // Kernel scratch comes from cudaMallocAsync's pool, which would otherwise hand its memory back at
    // every synchronisation (a training step has one per logged value) and map it again in the next
    // step; the caching allocator trims the pool when cudaMalloc finds the device full.
    kernels::cuda::keep_scratch_pool_memory(device);
    // Kernel scratch that finds the device full first gets the blocks this cache holds free.
    kernels::cuda::set_memory_pressure_handler([] { cuda_empty_cache(); });
  });
  return s.stream;
}

cudaStream_t stream(const Device& device) {
  if (!device.is_cuda()) throw std::logic_error("cuda::stream: " + device.str() + " is not a CUDA device");
  return stream(device.index);
}

kernels::cuda::BlasContext blas(int device) {
  make_current(device);
  DeviceState& s = state(device);
  std::call_once(s.blas_once, [&] {
    const cublasStatus_t st = cublasLtCreate(&s.lt);
    if (st != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error(std::string("cublasLtCreate failed: ") + cublasLtGetStatusString(st));
    check(cudaMalloc(&s.workspace, kWorkspaceBytes), "cudaMalloc (cuBLASLt workspace)");
  });
  return {s.lt, s.workspace, kWorkspaceBytes};
}

kernels::cuda::IndexError* index_error_record(int device) {
  make_current(device);
  DeviceState& s = state(device);
  std::call_once(s.record_once, [&] {
    check(cudaMalloc(reinterpret_cast<void**>(&s.record), sizeof(kernels::cuda::IndexError)), "cudaMalloc (index error record)");
    check(cudaMemset(s.record, 0, sizeof(kernels::cuda::IndexError)), "cudaMemset (index error record)");
  });
  return s.record;
}

void raise_deferred_errors(int device) {
  DeviceState& s = state(device);
  if (!s.record) return;  // no indexing kernel ran on this device yet
  make_current(device);
  kernels::cuda::IndexError e{};
  check(cudaMemcpy(&e, s.record, sizeof(e), cudaMemcpyDeviceToHost), "cudaMemcpy (index error record)");
  if (!e.flag) return;
  check(cudaMemset(s.record, 0, sizeof(e)), "cudaMemset (index error record)");
  throw std::invalid_argument(std::string(kernels::cuda::index_op_name(e.op)) + " on cuda:" +
                              std::to_string(device) + ": index " + std::to_string(e.value) + " at flat position " +
                              std::to_string(e.position) + " is out of range (valid: 0 to " +
                              std::to_string(e.limit - 1) + "); reported at the next synchronisation, so "
                              "results computed since then are not to be trusted");
}

void synchronize(int device) {
  check(cudaStreamSynchronize(stream(device)), "cudaStreamSynchronize");
  raise_deferred_errors(device);
}

}  // namespace hone::cuda
#endif  // HONE_WITH_CUDA
