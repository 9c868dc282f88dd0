#include "engine/core/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

namespace hone {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kLarge = size_t(1) << 20;         // cache blocks from 1 MiB
constexpr size_t kCacheCap = size_t(8) << 30;      // never hold more than 8 GiB of free blocks

size_t rounded(size_t nbytes) {
  if (nbytes >= kLarge) return (nbytes + kLarge - 1) / kLarge * kLarge;
  const size_t r = (nbytes + kAlign - 1) / kAlign * kAlign;
  return r == 0 ? kAlign : r;
}

struct CpuCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // exact rounded size -> block
  size_t cached = 0;
};

CpuCache& cache() {
  static CpuCache* c = new CpuCache();  // never destroyed: storages may be freed during exit
  return *c;
}

}  // namespace

void* cpu_alloc(size_t nbytes) {
  const size_t size = rounded(nbytes);
  if (size >= kLarge) {
    CpuCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlign, size);
  if (!p) {
    cpu_empty_cache();
    p = std::aligned_alloc(kAlign, size);
    if (!p) throw std::bad_alloc();
  }
  return p;
}

void cpu_free(void* p, size_t nbytes) {
  if (!p) return;
  const size_t size = rounded(nbytes);
  if (size >= kLarge) {
    CpuCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached + size <= kCacheCap) {
      c.free_blocks.emplace(size, p);
      c.cached += size;
      return;
    }
  }
  std::free(p);
}

size_t cpu_cached_bytes() {
  CpuCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

void cpu_empty_cache() {
  CpuCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, p] : c.free_blocks) std::free(p);
  c.free_blocks.clear();
  c.cached = 0;
}

}  // namespace hone
