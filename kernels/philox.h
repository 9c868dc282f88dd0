// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC'11), the generator cuRAND and PyTorch use for dropout.
//
// Why counter-based: element i of a dropout mask is a pure function of (seed, offset, i), so the
// CPU and a CUDA kernel produce the same mask for the same seed and offset, a backward pass can
// regenerate a mask instead of storing it, and a resumed run only needs (seed, offset).
#pragma once
#include <cstdint>

#include "kernels/host_device.h"

namespace hone::philox {

struct U32x4 { uint32_t v[4]; };

HONE_HD void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// One 128-bit block of randomness for a 128-bit counter and a 64-bit key.
HONE_HD U32x4 philox4x32_10(U32x4 ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(M0, ctr.v[0], hi0, lo0);
    mulhilo(M1, ctr.v[2], hi1, lo1);
    ctr = U32x4{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += W0;
    key1 += W1;
  }
  return ctr;
}

// Four uniform floats in [0, 1) for block `block` of the stream (seed, offset).
// Element i of a stream uses block i / 4, lane i % 4.
HONE_HD U32x4 block(uint64_t seed, uint64_t offset, uint64_t block_index) {
  const uint64_t c = offset + block_index;
  U32x4 ctr{{static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u}};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// 24 random bits -> a float in [0, 1) with every value exactly representable.
HONE_HD float to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

// The uniform number of element `index` of the stream (seed, offset).
HONE_HD float uniform(uint64_t seed, uint64_t offset, uint64_t index) {
  const U32x4 r = block(seed, offset, index >> 2);
  return to_unit_float(r.v[index & 3]);
}

// f(i, u) for each element i of block `block_index` (elements 4*block_index .. +3, those below n) of
// the stream (seed, offset), u its uniform number: one Philox call serves four elements, which is
// how the mask kernels walk a stream (a thread per block).
template <class F>
HONE_HD void for_each_in_block(uint64_t seed, uint64_t offset, uint64_t block_index, uint64_t n, F&& f) {
  const U32x4 r = block(seed, offset, block_index);
  for (int lane = 0; lane < 4; ++lane) {
    const uint64_t i = 4 * block_index + uint64_t(lane);
    if (i >= n) break;
    f(i, to_unit_float(r.v[lane]));
  }
}

// Number of 128-bit blocks a stream of n elements consumes: advance the offset by this much
// between two uses so that they never share random numbers.
HONE_HD uint64_t blocks_for(uint64_t n) { return (n + 3) / 4; }

}  // namespace hone::philox
