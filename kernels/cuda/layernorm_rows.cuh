// The layer-norm forward row kernel that keeps rows in registers, shared by the residual + layer norm
// (fused.cu) and the plain layer norm (layernorm.cu) for rows of up to 1024 columns (GPT-2's, BERT's):
// the one-block-per-row kernels were latency-bound, with one row in flight per block.
#pragma once
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/env_switch.h"

namespace hone::kernels::cuda {

// Rows of at most kRegCols * blockDim.x columns, kRegRows rows at a time, each thread's elements
// (columns t + k blockDim.x, k < kRegCols) held in registers: the rows' loads are all issued before
// their first reduction, and the variance and output passes read the values from registers where the
// one-block-per-row kernels re-read them (from the cache at best); w and b are loaded once per block.
// With `res` null it is the plain layer norm of x (and `sum` must be null: nothing to write). The
// per-element arithmetic and each thread's order are those of the one-block-per-row kernels, so are
// the results.
constexpr int kRegCols = 4, kRegRows = 2;
template <class T, class X, class Y, class A>
__global__ void __launch_bounds__(kThreads)
    add_layernorm_forward_regs_kernel(int64_t rows, int64_t cols, const X* x, const T* res, const T* w, const T* b,
                                      A eps, T* sum, Y* y, A* mean_out, A* rstd_out) {
  __shared__ A scratch[32 * kRegRows];
  A wv[kRegCols], bv[kRegCols];
#pragma unroll
  for (int k = 0; k < kRegCols; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * blockDim.x;
    wv[k] = w && i < cols ? load(w[i]) : A(1);
    bv[k] = b && i < cols ? load(b[i]) : A(0);
  }
  for (int64_t r0 = int64_t(blockIdx.x) * kRegRows; r0 < rows; r0 += int64_t(gridDim.x) * kRegRows) {
    // Every load first: as far as the compiler knows the stores to `sum` could alias x or res, and
    // would hold back loads placed after them.
    A xv[kRegRows][kRegCols], rv[kRegRows][kRegCols];
#pragma unroll
    for (int q = 0; q < kRegRows; ++q)
#pragma unroll
      for (int k = 0; k < kRegCols; ++k) {
        const int64_t r = r0 + q, i = threadIdx.x + int64_t(k) * blockDim.x;
        const bool in = r < rows && i < cols;
        xv[q][k] = in ? A(load(x[r * cols + i])) : A(0);
        rv[q][k] = in && res ? A(load(res[r * cols + i])) : A(0);
      }
    A v[kRegRows][kRegCols], stat[kRegRows];
#pragma unroll
    for (int q = 0; q < kRegRows; ++q) {
      stat[q] = 0;
#pragma unroll
      for (int k = 0; k < kRegCols; ++k) {
        const int64_t r = r0 + q, i = threadIdx.x + int64_t(k) * blockDim.x;
        v[q][k] = 0;
        if (r >= rows || i >= cols) continue;
        if (res) {
          const T s = store<T>(xv[q][k] + rv[q][k]);
          sum[r * cols + i] = s;
          v[q][k] = load(s);
        } else {
          v[q][k] = xv[q][k];
        }
        stat[q] += v[q][k];
      }
    }
    block_sums(stat, scratch);
    A mu[kRegRows], rs[kRegRows];
#pragma unroll
    for (int q = 0; q < kRegRows; ++q) {
      mu[q] = stat[q] / A(cols);
      stat[q] = 0;
#pragma unroll
      for (int k = 0; k < kRegCols; ++k) {
        if (threadIdx.x + int64_t(k) * blockDim.x >= cols) continue;
        const A d = v[q][k] - mu[q];
        stat[q] += d * d;
      }
    }
    block_sums(stat, scratch);
#pragma unroll
    for (int q = 0; q < kRegRows; ++q) {
      const int64_t r = r0 + q;
      if (r >= rows) break;
      rs[q] = A(1) / sqrt(stat[q] / A(cols) + eps);
#pragma unroll
      for (int k = 0; k < kRegCols; ++k) {
        const int64_t i = threadIdx.x + int64_t(k) * blockDim.x;
        if (i >= cols) continue;
        const T yt = store<T>((v[q][k] - mu[q]) * rs[q] * wv[k] + bv[k]);
        if constexpr (std::is_same_v<Y, T>) {
          y[r * cols + i] = yt;
        } else {
          y[r * cols + i] = store<Y>(A(load(yt)));
        }
      }
      if (threadIdx.x == 0) {
        mean_out[r] = mu[q];
        rstd_out[r] = rs[q];
      }
    }
  }
}

// Whether rows of `cols` fit a register kernel (this one, or layernorm.cu's backward twin) run with
// `threads` threads per block.
inline bool layernorm_rows_in_registers(int64_t cols, int threads = kThreads) { return cols <= kRegCols * threads; }
// Whether the layer-norm forwards (plain and residual + layer norm) take this kernel for rows of `cols`.
inline bool layernorm_forward_in_registers(int64_t cols) {
  return layernorm_rows_in_registers(cols) && !switched_off("HONE_ADD_LAYERNORM_REGS");
}

// Its grid: a block per kRegRows rows, up to the grid limit (blocks then stride over the rows). (The
// launches stay in the .cu files: the CUDA emulator rewrites those.)
inline unsigned layernorm_regs_blocks(int64_t rows) { return row_blocks((rows + kRegRows - 1) / kRegRows); }

}  // namespace hone::kernels::cuda
