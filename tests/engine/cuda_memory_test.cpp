// Device memory around kernel scratch (engine/core/cuda_runtime.cpp, cuda_allocator.cpp): the pool
// that cudaMallocAsync serves kernel scratch from keeps its memory across synchronisations, and gives
// it back when a tensor's cudaMalloc finds the device full. Needs the CUDA emulator's counters.
#include <gtest/gtest.h>

#include <cstdint>

#include "engine/core/allocator.h"
#include "engine/core/tensor.h"

#if defined(HONE_CUDA_EMULATED)
#include "cuda_emu/counters.h"
#endif

namespace hone {
namespace {

TEST(CudaMemory, ScratchPoolKeepsItsMemoryUntilTheDeviceIsFull) {
#if !defined(HONE_CUDA_EMULATED)
  GTEST_SKIP() << "the memory pool's settings are read through the CUDA emulator (build-emu)";
#else
  const Tensor x = Tensor::from_vector<float>({1, 2, 3}, {3}).to(Device::cuda());
  EXPECT_EQ(emu::mem_pool().release_threshold, UINT64_MAX)
      << "the pool would hand its memory back at every synchronisation";
  const uint64_t trims = emu::mem_pool().trims;
  emu::fail_next_mallocs(1);  // the next cudaMalloc finds the device full, the retry succeeds
  const Tensor big = Tensor::empty({int64_t(37) << 18}, DType::F32, Device::cuda());  // 37 MiB: a new block
  EXPECT_EQ(emu::mem_pool().trims, trims + 1) << "the pool's kept memory was not offered to the retry";
  EXPECT_EQ(big.to(Device::cpu()).numel(), int64_t(37) << 18);
#endif
}

}  // namespace
}  // namespace hone
