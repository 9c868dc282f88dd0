// Memory for tensors. CPU memory is 64-byte aligned (one cache line, one AVX-512 vector), so
// kernels may use aligned loads at the start of every storage. CUDA memory comes from a caching
// allocator: cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, so freed
// blocks are kept in size buckets and handed out again, as PyTorch's caching allocator does.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/core/device.h"

namespace hone {

// Large CPU blocks are cached too: a training step frees and re-allocates the same activation
// sizes every step, and returning them to the OS (munmap) means page faults on every first
// touch next step. Blocks of 1 MiB and more are rounded to 1 MiB multiples and kept for reuse
// (up to a cap); smaller ones go straight to the C allocator, which caches them itself.
void* cpu_alloc(size_t nbytes);
void cpu_free(void* p, size_t nbytes);
// Bytes held in the CPU cache (free, ready for reuse) and a way to release them.
size_t cpu_cached_bytes();
void cpu_empty_cache();

struct DeviceMemoryStats {
  size_t allocated_bytes = 0;       // in use by tensors now
  size_t reserved_bytes = 0;        // obtained from cudaMalloc (in use + cached)
  size_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes
  uint64_t cuda_malloc_calls = 0;   // cache misses
  uint64_t cache_hits = 0;
};

// The caching CUDA allocator. Without a CUDA build these throw (alloc) or do nothing.
void* cuda_alloc(size_t nbytes, int device);
void cuda_free(void* p, int device);
DeviceMemoryStats cuda_memory_stats(int device = 0);
void cuda_reset_peak_memory(int device = 0);
// "peak device memory: X GiB allocated by tensors, Y GiB reserved" for the runs that report it.
std::string cuda_peak_memory_text(int device = 0);
// Returns every cached, unused block to the driver.
void cuda_empty_cache();

}  // namespace hone
