// Caching allocator for CUDA device memory (see allocator.h for why).
//
// Blocks are rounded up (512 B for small sizes, 2 MiB multiples above 1 MiB) and kept per
// device in a multimap from size to pointer. A request takes the smallest cached block that is
// at least as large and at most twice the rounded size (so one huge block does not serve many
// tiny requests). When cudaMalloc fails, the cache is emptied (and cudaMallocAsync's pool trimmed)
// and the call retried once.
//
// HONE_CUDA_CACHING=0 turns the cache off (as PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING=1): every
// tensor gets a cudaMalloc of its exact size and gives it back when freed. Slower, but a kernel that
// reads past its tensor, or reads memory nobody wrote, then shows in tools that watch allocations
// (compute-sanitizer on a GPU, the CUDA emulator's guard pages and NaN fill in tests/cuda_emu).
#include "engine/core/allocator.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#if defined(HONE_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

#include "kernels/env_switch.h"

namespace hone {

#if defined(HONE_WITH_CUDA)
namespace {

size_t round_size(size_t n) {
  if (n <= (1u << 20)) return (n + 511) / 512 * 512;
  constexpr size_t k2M = 2u << 20;
  return (n + k2M - 1) / k2M * k2M;
}

struct DeviceCache {
  std::multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> live;  // pointer -> rounded size
  DeviceMemoryStats stats;
};

struct Caches {
  std::mutex mu;
  std::vector<DeviceCache> devices;
  DeviceCache& at(int d) {
    if (d < 0) throw std::invalid_argument("cuda allocator: negative device index");
    if (static_cast<size_t>(d) >= devices.size()) devices.resize(d + 1);
    return devices[d];
  }
};

Caches& caches() {
  static Caches* c = new Caches();  // never destroyed: tensors may be freed during exit
  return *c;
}

void check(cudaError_t err, const char* what, size_t nbytes = 0) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  std::string msg = std::string("CUDA ") + what + " failed: " + cudaGetErrorString(err);
  if (nbytes) msg += " (requested " + std::to_string(nbytes) + " bytes)";
  throw std::runtime_error(msg);
}

void release_cached(DeviceCache& dc, int device) {
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(device);
  for (auto& [size, p] : dc.free_blocks) {
    cudaFree(p);
    dc.stats.reserved_bytes -= size;
  }
  dc.free_blocks.clear();
  // cudaMallocAsync's pool keeps what kernel scratch gave back (engine/core/cuda_runtime.cpp):
  // return that to the driver as well, once the device is done with it, for the retried cudaMalloc.
  cudaMemPool_t pool = nullptr;
  if (cudaDeviceSynchronize() == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess)
    cudaMemPoolTrimTo(pool, 0);
  cudaGetLastError();  // (a failure here only means less to hand over)
  cudaSetDevice(prev);
}

bool caching_enabled() {
  static const bool enabled = !kernels::switched_off("HONE_CUDA_CACHING");
  return enabled;
}

}  // namespace

void* cuda_alloc(size_t nbytes, int device) {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  DeviceCache& dc = c.at(device);
  const bool caching = caching_enabled();
  const size_t wanted = nbytes == 0 ? 1 : nbytes;
  const size_t size = caching ? round_size(wanted) : wanted;
  auto it = caching ? dc.free_blocks.lower_bound(size) : dc.free_blocks.end();
  void* p = nullptr;
  size_t got = size;
  if (it != dc.free_blocks.end() && it->first <= 2 * size) {
    p = it->second;
    got = it->first;
    dc.free_blocks.erase(it);
    dc.stats.cache_hits++;
  } else {
    int prev = 0;
    check(cudaGetDevice(&prev), "cudaGetDevice");
    check(cudaSetDevice(device), "cudaSetDevice");
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached(dc, device);
      err = cudaMalloc(&p, size);
    }
    cudaSetDevice(prev);
    check(err, "cudaMalloc", size);
    dc.stats.reserved_bytes += size;
    dc.stats.cuda_malloc_calls++;
  }
  dc.live[p] = got;
  dc.stats.allocated_bytes += got;
  if (dc.stats.allocated_bytes > dc.stats.peak_allocated_bytes)
    dc.stats.peak_allocated_bytes = dc.stats.allocated_bytes;
  return p;
}

void cuda_free(void* p, int device) {
  if (!p) return;
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  DeviceCache& dc = c.at(device);
  auto it = dc.live.find(p);
  if (it == dc.live.end()) return;  // not ours: ignore rather than corrupt the cache
  dc.stats.allocated_bytes -= it->second;
  if (caching_enabled()) {
    dc.free_blocks.emplace(it->second, p);
  } else {
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device);
    cudaFree(p);
    cudaSetDevice(prev);
    dc.stats.reserved_bytes -= it->second;
  }
  dc.live.erase(it);
}

DeviceMemoryStats cuda_memory_stats(int device) {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.at(device).stats;
}

void cuda_reset_peak_memory(int device) {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  auto& s = c.at(device).stats;
  s.peak_allocated_bytes = s.allocated_bytes;
}

void cuda_empty_cache() {
  auto& c = caches();
  std::lock_guard<std::mutex> lock(c.mu);
  for (size_t d = 0; d < c.devices.size(); ++d) release_cached(c.devices[d], static_cast<int>(d));
}

#else  // no CUDA in this build

void* cuda_alloc(size_t, int) {
  throw std::runtime_error("this hone build has no CUDA support (configure with nvcc available)");
}
void cuda_free(void*, int) {}
DeviceMemoryStats cuda_memory_stats(int) { return {}; }
void cuda_reset_peak_memory(int) {}
void cuda_empty_cache() {}

#endif

std::string cuda_peak_memory_text(int device) {
  const DeviceMemoryStats m = cuda_memory_stats(device);
  char buf[128];
  std::snprintf(buf, sizeof buf, "peak device memory: %.2f GiB allocated by tensors, %.2f GiB reserved",
                double(m.peak_allocated_bytes) / double(1ull << 30), double(m.reserved_bytes) / double(1ull << 30));
  return buf;
}

}  // namespace hone
