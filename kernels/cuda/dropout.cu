// CUDA dropout: one thread per Philox block (four consecutive elements), with the keep test of
// kernels/dropout.h, so the mask is bit-identical to the CPU's for the same (seed, offset).
#include "kernels/cuda/common.cuh"
#include "kernels/dropout.h"

namespace hone::kernels::cuda {

namespace {

template <class T>
__global__ void dropout_kernel(int64_t n, double p, uint64_t seed, uint64_t offset, dacc_t<T> scale, const T* x, T* y) {
  using A = dacc_t<T>;
  const int64_t blocks = int64_t(philox::blocks_for(uint64_t(n)));
  HONE_GRID_STRIDE(b, blocks) {
    philox::for_each_in_block(seed, offset, uint64_t(b), uint64_t(n), [&](uint64_t i, float u) {
      // Exactly the CPU's comparison: a multiple of 2^-24 against p, in double.
      y[i] = double(u) >= p ? store<T>(load(x[i]) * scale) : store<T>(A(0));
    });
  }
}

}  // namespace

template <class T>
void dropout_apply(int64_t n, double p, uint64_t seed, uint64_t offset, const T* x, T* y, cudaStream_t stream) {
  if (n == 0) return;
  using A = acc_t<T>;
  const A scale = p < 1.0 ? A(1.0 / (1.0 - p)) : A(0);  // as the CPU computes it
  const int64_t blocks = int64_t(philox::blocks_for(uint64_t(n)));
  dropout_kernel<<<grid_for(blocks), kThreads, 0, stream>>>(n, p, seed, offset, scale, dptr(x), dptr(y));
  check_launch("dropout_apply");
}

template void dropout_apply<float>(int64_t, double, uint64_t, uint64_t, const float*, float*, cudaStream_t);
template void dropout_apply<double>(int64_t, double, uint64_t, uint64_t, const double*, double*, cudaStream_t);
template void dropout_apply<bf16>(int64_t, double, uint64_t, uint64_t, const bf16*, bf16*, cudaStream_t);
template void dropout_apply<f16>(int64_t, double, uint64_t, uint64_t, const f16*, f16*, cudaStream_t);

}  // namespace hone::kernels::cuda
