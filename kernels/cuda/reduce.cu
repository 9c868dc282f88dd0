// CUDA reductions over the middle axis of a contiguous [outer, r, inner] array (the layout the
// ops bring every reduction to, see kernels/reduce.h).
//
// inner == 1 (rows): one block per row, each thread summing a strided slice of the row, then a
//   block tree. inner > 1 (columns): a 32 x 8 block walks 32 adjacent columns (coalesced reads),
//   the 8 thread rows taking every 8th j, then the 8 partials are added in a fixed order.
// Sums accumulate in double, like the CPU's, so long sums (losses, statistics) keep their
// digits. Every thread's share of the work is fixed by the launch shape: deterministic.
#include <cmath>

#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

constexpr int kRowThreads = 256;
constexpr int kColX = 32, kColY = 8;

// NaN wins a max, as on the CPU (`v > m || isnan(v)`).
__device__ __forceinline__ double max_nan(double m, double v) { return (v > m || isnan(v)) ? v : m; }

template <class T>
__global__ void reduce_rows_kernel(ReduceOp op, int64_t outer, int64_t r, const T* x, T* out) {
  __shared__ double scratch[32];
  const bool sum = op == ReduceOp::Sum;
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = x + o * r;
    double acc = sum ? 0.0 : -INFINITY;
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) {
      const double v = double(load(row[j]));
      acc = sum ? acc + v : max_nan(acc, v);
    }
    if (sum) {
      acc = block_sum(acc, scratch);
    } else {
      // A NaN must survive the tree: block_max's comparisons would drop it.
      const bool has_nan = __syncthreads_or(isnan(acc));
      acc = has_nan ? NAN : block_max(acc, scratch);
    }
    if (threadIdx.x == 0) out[o] = store<T>(static_cast<dacc_t<T>>(acc));
    __syncthreads();
  }
}

template <class T>
__global__ void reduce_cols_kernel(ReduceOp op, int64_t outer, int64_t r, int64_t inner, const T* x, T* out) {
  __shared__ double part[kColY][kColX];
  const bool sum = op == ReduceOp::Sum;
  const int64_t tiles = (inner + kColX - 1) / kColX;
  for (int64_t t = blockIdx.x; t < outer * tiles; t += gridDim.x) {
    const int64_t o = t / tiles, i = (t % tiles) * kColX + threadIdx.x;
    double acc = sum ? 0.0 : -INFINITY;
    if (i < inner)
      for (int64_t j = threadIdx.y; j < r; j += kColY) {
        const double v = double(load(x[(o * r + j) * inner + i]));
        acc = sum ? acc + v : max_nan(acc, v);
      }
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      double total = part[0][threadIdx.x];
      for (int y = 1; y < kColY; ++y) total = sum ? total + part[y][threadIdx.x] : max_nan(total, part[y][threadIdx.x]);
      out[o * inner + i] = store<T>(static_cast<dacc_t<T>>(total));
    }
    __syncthreads();
  }
}

// argmax: the first index of the maximum (ties go to the smaller index).
template <class T>
__global__ void argmax_rows_kernel(int64_t outer, int64_t r, const T* x, int64_t* out) {
  using A = dacc_t<T>;
  __shared__ A best_v[kRowThreads];
  __shared__ int64_t best_i[kRowThreads];
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* row = x + o * r;
    A bv = -INFINITY;
    int64_t bi = r;  // "none yet"
    for (int64_t j = threadIdx.x; j < r; j += blockDim.x) {
      const A v = load(row[j]);
      if (bi == r || v > bv) bv = v, bi = j;
    }
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
      if (int(threadIdx.x) < w) {
        const A v2 = best_v[threadIdx.x + w];
        const int64_t i2 = best_i[threadIdx.x + w];
        const A v1 = best_v[threadIdx.x];
        const int64_t i1 = best_i[threadIdx.x];
        const bool take2 = i2 != r && (i1 == r || v2 > v1 || (v2 == v1 && i2 < i1));
        if (take2) best_v[threadIdx.x] = v2, best_i[threadIdx.x] = i2;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = best_i[0] == r ? 0 : best_i[0];
    __syncthreads();
  }
}

template <class T>
__global__ void argmax_cols_kernel(int64_t outer, int64_t r, int64_t inner, const T* x, int64_t* out) {
  using A = dacc_t<T>;
  HONE_GRID_STRIDE(k, outer * inner) {
    const int64_t o = k / inner, i = k % inner;
    int64_t best = 0;
    A bv = load(x[(o * r) * inner + i]);
    for (int64_t j = 1; j < r; ++j) {
      const A v = load(x[(o * r + j) * inner + i]);
      if (v > bv) bv = v, best = j;
    }
    out[k] = best;
  }
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(n < 1 ? 1 : (n > 65535 * 16 ? 65535 * 16 : n)); }

}  // namespace

template <class T>
void reduce_middle(ReduceOp op, int64_t outer, int64_t r, int64_t inner, const T* x, T* out, cudaStream_t stream) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    reduce_rows_kernel<<<blocks_for(outer), kRowThreads, 0, stream>>>(op, outer, r, dptr(x), dptr(out));
  } else {
    const int64_t tiles = outer * ((inner + kColX - 1) / kColX);
    reduce_cols_kernel<<<blocks_for(tiles), dim3(kColX, kColY), 0, stream>>>(op, outer, r, inner, dptr(x),
                                                                             dptr(out));
  }
  check_launch("reduce_middle");
}

template <class T>
void argmax_middle(int64_t outer, int64_t r, int64_t inner, const T* x, int64_t* out, cudaStream_t stream) {
  if (outer * inner == 0) return;
  if (inner == 1)
    argmax_rows_kernel<<<blocks_for(outer), kRowThreads, 0, stream>>>(outer, r, dptr(x), out);
  else
    argmax_cols_kernel<<<grid_for(outer * inner), kThreads, 0, stream>>>(outer, r, inner, dptr(x), out);
  check_launch("argmax_middle");
}

#define HONE_INSTANTIATE(T)                                                                         \
  template void reduce_middle<T>(ReduceOp, int64_t, int64_t, int64_t, const T*, T*, cudaStream_t);  \
  template void argmax_middle<T>(int64_t, int64_t, int64_t, const T*, int64_t*, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
