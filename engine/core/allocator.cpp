#include "engine/core/allocator.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

namespace hone {

void* cpu_alloc(size_t nbytes) {
  constexpr size_t kAlign = 64;
  const size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void cpu_free(void* p) { std::free(p); }

}  // namespace hone
