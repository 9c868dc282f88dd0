// The GEMM epilogues as passes of their own (kernels/cuda_api.h: gemm_epilogue_apply, strided_sum):
// what gemm_epilogue runs after the plain GEMM when cuBLASLt cannot fuse the epilogue, and the
// "separate pass" that the benchmarks hold the fused epilogue against.
//
// gemm_epilogue_apply: one thread per element of C (grid-stride), strided rows (ldc, aux_ld).
// strided_sum: block (tile of kSumTile outputs, chunk of kSumChunk reduced elements), one thread
// per output summing its chunk in double; chunk_total_kernel (common.cuh) adds each output's chunk
// partials in chunk order. The chunking depends on the shape only: deterministic, no atomics.
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
  const int64_t chunks = (n_red + kSumChunk - 1) / kSumChunk;
  Scratch part(size_t(chunks * n_out) * sizeof(double), stream);
  if (chunks > 0) {
    const dim3 grid(static_cast<unsigned>((n_out + kSumTile - 1) / kSumTile),
                    static_cast<unsigned>(chunks > 65535 ? 65535 : chunks));
    strided_sum_partial_kernel<<<grid, kSumTile, 0, stream>>>(n_out, n_red, dptr(x), stride_out, stride_red,
                                                              part.as<double>());
    check_launch("strided_sum");
  }
  chunk_total_kernel<<<grid_for(n_out), kThreads, 0, stream>>>(chunks, n_out, part.as<double>(), dptr(out));
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
