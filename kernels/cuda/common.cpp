// Host-side pieces shared by the CUDA kernel families: error checks and names, kernel scratch, and
// the page-locked upload ring.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

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

bool keep_scratch_pool_memory(int device) {
  cudaMemPool_t pool = nullptr;
  uint64_t keep_all = UINT64_MAX;
  if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess &&
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all) == cudaSuccess)
    return true;
  cudaGetLastError();
  return false;
}

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

namespace {

// The page-locked staging ring of upload_async, one per device (an event belongs to the device it
// was created on). Regions are handed out in order around the ring; each one's copy is followed by
// an event, and a region is written again only once its event has completed (the host then waits,
// which with 16 MB of ring and a training step's ~0.3 MB of uploads happens only when the host is
// ~50 steps ahead of the device).
class UploadRing {
 public:
  static constexpr size_t kBytes = size_t(16) << 20;
  static constexpr size_t kMaxStaged = size_t(4) << 20;

  // The staged copy, or false (nothing done) when the ring cannot take it.
  bool stage(void* dst, const void* host, size_t bytes, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes > kMaxStaged || broken_) return false;
    if (!base_ && cudaHostAlloc(reinterpret_cast<void**>(&base_), kBytes, cudaHostAllocPortable) != cudaSuccess) {
      cudaGetLastError();
      broken_ = true;
      return false;
    }
    const size_t need = (bytes + 255) / 256 * 256;
    if (head_ + need > kBytes) head_ = 0;  // wrap: the tail end stays unused this round
    while (!pending_.empty() && pending_.front().begin < head_ + need && head_ < pending_.front().end) retire_front();
    while (!pending_.empty() && cudaEventQuery(pending_.front().done) == cudaSuccess) retire_front();  // tidy
    cudaGetLastError();  // cudaEventQuery's "not ready" is not an error to keep
    std::memcpy(base_ + head_, host, bytes);
    check(cudaMemcpyAsync(dst, base_ + head_, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync (upload)");
    cudaEvent_t done = take_event();
    check(cudaEventRecord(done, stream), "cudaEventRecord (upload)");
    pending_.push_back({head_, head_ + need, done});
    head_ += need;
    return true;
  }

 private:
  struct Region {
    size_t begin, end;
    cudaEvent_t done;
  };
  void retire_front() {
    const Region r = pending_.front();
    pending_.pop_front();
    if (cudaEventQuery(r.done) != cudaSuccess)
      check(cudaEventSynchronize(r.done), "cudaEventSynchronize (upload ring)");
    free_events_.push_back(r.done);
  }
  cudaEvent_t take_event() {
    if (!free_events_.empty()) {
      cudaEvent_t e = free_events_.back();
      free_events_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags (upload)");
    return e;
  }

  std::mutex mu_;
  char* base_ = nullptr;  // never freed: the ring lives as long as the process
  bool broken_ = false;
  size_t head_ = 0;
  std::deque<Region> pending_;
  std::vector<cudaEvent_t> free_events_;
};

constexpr int kMaxDevices = 64;

}  // namespace

void upload_async(void* dst, const void* host, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  static UploadRing rings[kMaxDevices];
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice (upload)");
  if (device >= 0 && device < kMaxDevices && rings[device].stage(dst, host, bytes, stream)) return;
  check(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync (upload)");
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
