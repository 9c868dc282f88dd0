// The GEMM epilogues as passes of their own (kernels/cuda_api.h: gemm_epilogue_apply, strided_sum):
// what gemm_epilogue runs after the plain GEMM when cuBLASLt cannot fuse the epilogue, and the
// "separate pass" that the benchmarks hold the fused epilogue against.
//
// gemm_epilogue_apply: one thread per element of C (grid-stride), strided rows (ldc, aux_ld).
// strided_sum: block (tile of kSumTile outputs, chunk of kSumChunk reduced elements), one thread
// per output summing its chunk in double; chunk_total_kernel (common.cuh) adds each output's chunk
// partials in a fixed order. The chunking depends on the shape only: deterministic, no atomics.
// The bias gradients of 16-bit layers (contiguous columns of a [rows, ld] matrix) take
// column_sum_partial_kernel instead: 16-byte loads, a tile of 256 columns and 128 rows per block.
#include "kernels/cuda/common.cuh"
#include "kernels/fused.h"

namespace hone::kernels::cuda {

namespace {

constexpr int64_t kSumChunk = 64;
constexpr int kSumTile = 256;

template <class T>
__global__ void epilogue_apply_kernel(EpilogueKind kind, int64_t M, int64_t N, T* c, int64_t ldc, const T* bias,
                                      T* aux, int64_t aux_ld) {
  using A = dacc_t<T>;
  HONE_GRID_STRIDE(idx, M * N) {
    const int64_t i = idx / N, j = idx - i * N;
    A v = load(c[i * ldc + j]);
    if (kind == EpilogueKind::DGeluBgrad || kind == EpilogueKind::DGelu) {
      v *= gelu_slope(true, load(aux[i * aux_ld + j]));
    } else {
      v += load(bias[j]);
      if (kind == EpilogueKind::BiasGeluTanh) {
        if (aux) aux[i * aux_ld + j] = store<T>(v);
        v = gelu_of(true, v);
      }
    }
    c[i * ldc + j] = store<T>(v);
  }
}

template <class T>
__global__ void strided_sum_partial_kernel(int64_t n_out, int64_t n_red, const T* x, int64_t stride_out,
                                           int64_t stride_red, double* part) {
  const int64_t i = int64_t(blockIdx.x) * kSumTile + threadIdx.x;
  if (i >= n_out) return;
  const int64_t chunks = (n_red + kSumChunk - 1) / kSumChunk;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t j_end = min(n_red, (chunk + 1) * kSumChunk);
    double s = 0;
    for (int64_t j = chunk * kSumChunk; j < j_end; ++j) s += double(load(x[i * stride_out + j * stride_red]));
    part[chunk * n_out + i] = s;
  }
}

// Column sums of a row-major 16-bit matrix x [n_rows, ld] (columns [0, n_cols), contiguous): GPT-2's bias
// gradients, 16384 rows of 768 to 3072 columns, where strided_sum_partial_kernel's 2-byte loads and double
// adds reached a fraction of the bandwidth. Block (blockIdx.x: kColLanes * V columns, blockIdx.y: a chunk of
// kColChunkRows rows): thread (x, y) sums the V columns of its 16-byte unit over the chunk's rows y,
// y + kRowLanes, ... in float (16 values of 16-bit precision each), then the kRowLanes row lanes of each
// column are added in lane order through shared memory. Partials in double for chunk_total_kernel; the
// chunking depends on the shape only: deterministic, no atomics.
constexpr int kColLanes = 32, kRowLanes = 8;
constexpr int64_t kColChunkRows = 128;
template <class T>
__global__ void __launch_bounds__(kColLanes* kRowLanes)
    column_sum_partial_kernel(int64_t n_rows, int64_t n_cols, const T* x, int64_t ld, double* part) {
  constexpr int V = Pack16<T>::kSize;
  static_assert(V == kRowLanes, "a block's threads finish one column each");
  // Thread x's V sums at x * (V + 1): the skew keeps the stores (and most loads) off each other's banks.
  __shared__ float lane_sums[kRowLanes][kColLanes * (V + 1)];
  const int64_t first_col = (int64_t(blockIdx.x) * kColLanes + threadIdx.x) * V;
  const int64_t r_end = min(n_rows, (int64_t(blockIdx.y) + 1) * kColChunkRows);
  float s[V] = {};
  if (first_col < n_cols) {
#pragma unroll 4
    for (int64_t r = int64_t(blockIdx.y) * kColChunkRows + threadIdx.y; r < r_end; r += kRowLanes) {
      const Pack16<T> in = *reinterpret_cast<const Pack16<T>*>(x + r * ld + first_col);
#pragma unroll
      for (int j = 0; j < V; ++j) s[j] += load(in.v[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < V; ++j) lane_sums[threadIdx.y][threadIdx.x * (V + 1) + j] = s[j];
  __syncthreads();
  const int t = threadIdx.y * kColLanes + threadIdx.x;  // this thread's column of the block's tile
  const int64_t col = int64_t(blockIdx.x) * kColLanes * V + t;
  if (col >= n_cols) return;
  float total = 0;
#pragma unroll
  for (int y = 0; y < kRowLanes; ++y) total += lane_sums[y][(t / V) * (V + 1) + t % V];
  part[int64_t(blockIdx.y) * n_cols + col] = total;
}

// Whether column_sum_partial_kernel can sum x (16-bit T): outputs contiguous (stride_out 1) in whole 16-byte
// units, every row starting 16-byte aligned, and the chunks within the grid's y limit.
template <class T>
bool column_sums_fit(int64_t n_out, int64_t n_red, const T* x, int64_t stride_out, int64_t stride_red) {
  constexpr int64_t V = Pack16<T>::kSize;
  return stride_out == 1 && n_out % V == 0 && stride_red % V == 0 && aligned_for<Pack16<T>>(x) && n_red > 0 &&
         (n_red + kColChunkRows - 1) / kColChunkRows <= 65535;
}

}  // namespace

template <class T>
void gemm_epilogue_apply(EpilogueKind kind, int64_t M, int64_t N, T* C, int64_t ldc, const T* bias, T* aux,
                         int64_t aux_ld, cudaStream_t stream) {
  if (kind != EpilogueKind::Bias && kind != EpilogueKind::BiasGeluTanh && kind != EpilogueKind::DGeluBgrad &&
      kind != EpilogueKind::DGelu)
    return;
  const int64_t n = M * N;
  if (n == 0) return;
  epilogue_apply_kernel<<<grid_for(n), kThreads, 0, stream>>>(kind, M, N, dptr(C), ldc, dptr(bias), dptr(aux),
                                                              aux_ld);
  check_launch("gemm_epilogue_apply");
}

template <class T, class TOut>
void strided_sum(int64_t n_out, int64_t n_red, const T* x, int64_t stride_out, int64_t stride_red, TOut* out,
                 cudaStream_t stream) {
  if (n_out == 0) return;
  bool columns = false;  // 16-bit contiguous columns: column_sum_partial_kernel
  if constexpr (sizeof(T) == 2) columns = column_sums_fit(n_out, n_red, x, stride_out, stride_red);
  const int64_t rows_per_chunk = columns ? kColChunkRows : kSumChunk;
  const int64_t chunks = (n_red + rows_per_chunk - 1) / rows_per_chunk;
  Scratch part(size_t(chunks * n_out) * sizeof(double), stream);
  if (columns) {
    if constexpr (sizeof(T) == 2) {  // (no instantiation for the other types)
      constexpr int V = Pack16<T>::kSize;
      const dim3 grid(static_cast<unsigned>((n_out + kColLanes * V - 1) / (kColLanes * V)),
                      static_cast<unsigned>(chunks));
      column_sum_partial_kernel<<<grid, dim3(kColLanes, kRowLanes), 0, stream>>>(n_red, n_out, dptr(x), stride_red,
                                                                                 part.as<double>());
      check_launch("strided_sum (column sums)");
    }
  } else if (chunks > 0) {
    const dim3 grid(static_cast<unsigned>((n_out + kSumTile - 1) / kSumTile),
                    static_cast<unsigned>(chunks > 65535 ? 65535 : chunks));
    strided_sum_partial_kernel<<<grid, kSumTile, 0, stream>>>(n_out, n_red, dptr(x), stride_out, stride_red,
                                                              part.as<double>());
    check_launch("strided_sum");
  }
  chunk_total_kernel<<<chunk_total_blocks(n_out), dim3(32, kChunkLanes), 0, stream>>>(chunks, n_out, part.as<double>(),
                                                                                      dptr(out));
  check_launch("strided_sum (totals)");
}

#define HONE_INSTANTIATE(T)                                                                                \
  template void gemm_epilogue_apply<T>(EpilogueKind, int64_t, int64_t, T*, int64_t, const T*, T*, int64_t, \
                                       cudaStream_t);                                                      \
  template void strided_sum<T, T>(int64_t, int64_t, const T*, int64_t, int64_t, T*, cudaStream_t);
HONE_FUSED_FOR_EACH_TYPE(HONE_INSTANTIATE)
#undef HONE_INSTANTIATE
// 16-bit operands, float32 bias gradients (gemm_f32_out's fallback).
template void strided_sum<bf16, float>(int64_t, int64_t, const bf16*, int64_t, int64_t, float*, cudaStream_t);
template void strided_sum<f16, float>(int64_t, int64_t, const f16*, int64_t, int64_t, float*, cudaStream_t);

}  // namespace hone::kernels::cuda
