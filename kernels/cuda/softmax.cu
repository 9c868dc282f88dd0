// CUDA softmax / log-softmax over the rows of a contiguous [rows, cols] array: one block per row
// (grid-stride over rows), max and sum by block trees in the accumulation type. The row is read
// from global memory in each pass (L2 keeps it for the widths we meet); exp values are not kept
// in 16-bit between passes, so bf16/f16 are rounded once, on the final store.
#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

constexpr int kBlock = 256;

template <class T>
__global__ void softmax_forward_kernel(int64_t rows, int64_t cols, const T* x, T* y, bool log) {
  using A = dacc_t<T>;
  __shared__ A scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    A m = -INFINITY;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const A v = load(xr[i]);
      m = v > m ? v : m;
    }
    m = block_max(m, scratch);
    A s = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += exp_acc(load(xr[i]) - m);
    s = block_sum(s, scratch);
    if (log) {
      const A shift = m + log_acc(s);
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = store<T>(load(xr[i]) - shift);
    } else {
      const A inv = A(1) / s;
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = store<T>(exp_acc(load(xr[i]) - m) * inv);
    }
  }
}

template <class T>
__global__ void softmax_backward_kernel(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log) {
  using A = dacc_t<T>;
  __shared__ A scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* yr = y + r * cols;
    const T* gr = gy + r * cols;
    T* out = gx + r * cols;
    A s = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += log ? load(gr[i]) : load(gr[i]) * load(yr[i]);
    s = block_sum(s, scratch);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const A yi = load(yr[i]), gi = load(gr[i]);
      out[i] = store<T>(log ? gi - exp_acc(yi) * s : yi * (gi - s));
    }
  }
}

}  // namespace

template <class T>
void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y, bool log, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  softmax_forward_kernel<<<row_blocks(rows), kBlock, 0, stream>>>(rows, cols, dptr(x), dptr(y), log);
  check_launch("softmax_forward");
}

template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  softmax_backward_kernel<<<row_blocks(rows), kBlock, 0, stream>>>(rows, cols, dptr(y), dptr(gy), dptr(gx), log);
  check_launch("softmax_backward");
}

#define HONE_INSTANTIATE(T)                                                                        \
  template void softmax_forward<T>(int64_t, int64_t, const T*, T*, bool, cudaStream_t);            \
  template void softmax_backward<T>(int64_t, int64_t, const T*, const T*, T*, bool, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
