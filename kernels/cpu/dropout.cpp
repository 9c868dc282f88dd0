// CPU dropout. One Philox block gives the random numbers of four consecutive elements, so the
// loop walks blocks; the keep test is the one of kernels/dropout.h (element i uses block i / 4,
// lane i % 4), which is what makes the CPU and CUDA masks identical.
#include "kernels/cpu/strided_loop.h"
#include "kernels/dropout.h"

namespace hone::kernels {

template <class T>
void dropout_apply(int64_t n, double p, uint64_t seed, uint64_t offset, const T* x, T* y) {
  using A = acc_t<T>;
  // p == 1 makes the scale infinite; it is never used then, since no element is kept.
  const A scale = p < 1.0 ? A(1.0 / (1.0 - p)) : A(0);
  const int64_t blocks = static_cast<int64_t>(philox::blocks_for(static_cast<uint64_t>(n)));
  // Chunks of whole blocks (a multiple of 4 elements): every element is computed independently.
  cpu::parallel_chunks(blocks, 1 << 12, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      philox::for_each_in_block(seed, offset, static_cast<uint64_t>(b), static_cast<uint64_t>(n),
                                [&](uint64_t i, float u) { y[i] = static_cast<double>(u) >= p ? T(A(x[i]) * scale) : T(A(0)); });
  });
}

template void dropout_apply<float>(int64_t, double, uint64_t, uint64_t, const float*, float*);
template void dropout_apply<double>(int64_t, double, uint64_t, uint64_t, const double*, double*);
template void dropout_apply<bf16>(int64_t, double, uint64_t, uint64_t, const bf16*, bf16*);
template void dropout_apply<f16>(int64_t, double, uint64_t, uint64_t, const f16*, f16*);

}  // namespace hone::kernels
