// The process's random stream for dropout and initialisation. A Philox stream is identified by
// (seed, offset); every consumer takes a fresh range of offsets, so two uses never share random
// numbers, and saving (seed, offset) in a checkpoint is enough to resume the exact stream.
#pragma once
#include <cstdint>

namespace hone {

struct Generator {
  uint64_t seed = 0x5eed;
  uint64_t offset = 0;
  // Reserves the Philox blocks for n random numbers; returns the offset to use.
  uint64_t take(uint64_t n) {
    const uint64_t start = offset;
    offset += (n + 3) / 4;
    return start;
  }
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // resets the offset too

}  // namespace hone
