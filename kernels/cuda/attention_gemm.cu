// float32 attention through cuBLAS GEMMs (the "math" form), for the calls cuDNN's fused attention does
// not take (it is bf16/f16 only). Our own kernel (attention.cu) does every score with CUDA-core FMAs:
// on an H200 GPT-2 124M's attention (B=16, H=12, T=1024, D=64) took it 41 ms a layer, forward and
// backward, about 2 TFLOP/s. Here each product is one strided-batched GEMM over the B*H heads, and the
// score matrix [B*H, Tq, Tk] exists, per call, in a caller's workspace (never kept between calls:
// the backward recomputes it from q, k and the saved log-sum-exp):
//
//   forward:  S = scale q k^T; P = softmax over the visible keys (causal bottom-right, key padding;
//             lse saved); P_drop = P * keep / (1 - p) (the Philox keep test of kernels/attention.h, so
//             the same mask as our kernel and the CPU); out = P_drop v.
//   backward: S again, P from lse; dv = P_drop^T dout; dP_drop = dout v^T;
//             dS = P * (dP_drop * keep / (1 - p) - D), D_i = dout_i . out_i; dq = scale dS k,
//             dk = scale dS^T q.
//
// A query that sees no key has lse -inf, a zero row of P and so zero output and gradients, as our
// kernel. Deterministic (cuBLAS GEMMs without split-K atomics, fixed-order row reductions).
#include <cmath>
#include <stdexcept>

#include "kernels/cuda/attention_geometry.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda_api.h"

namespace hone::kernels::cuda {

namespace {

constexpr int kRowThreads = 256;

// Rows of the score matrix are padded to whole 16-byte vectors (ld floats), so that the GEMMs that write
// and read it run on the tensor-core kernels whatever Tk is.
int64_t score_ld(int64_t Tk) { return (Tk + 3) / 4 * 4; }

// The rows of the score matrix [B*H*Tq, Tk] (ld floats apart; row = (b*H + h)*Tq + i) with the
// attention they belong to: which keys a row sees and the dropout factor of each element are
// attention_geometry.cuh's, as for our kernel.
struct ScoreRows {
  AttentionGeometry g;
  int64_t ld;
  float keep_scale;
  __device__ bool visible_at(int64_t row, int64_t j) const { return visible(g, row / (g.H * g.Tq), row % g.Tq, j); }
  __device__ float drop_at(int64_t row, int64_t j) const {
    return dropout_factor(g, row / g.Tq, row % g.Tq, j, keep_scale);
  }
};

// One block per row of S (scores already scaled): the log-sum-exp over the visible keys into lse, and
// the row replaced by P times its dropout factors (P where `apply_dropout` is false).
__global__ void softmax_rows_kernel(ScoreRows r, int64_t rows, float* s, float* lse, bool apply_dropout) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float* sr = s + row * r.ld;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < r.g.Tk; j += blockDim.x)
      if (r.visible_at(row, j)) m = fmaxf(m, sr[j]);
    m = block_max(m, scratch);
    float l = 0.f;
    if (m != -INFINITY)
      for (int64_t j = threadIdx.x; j < r.g.Tk; j += blockDim.x)
        if (r.visible_at(row, j)) l += expf(sr[j] - m);
    l = block_sum(l, scratch);
    const float row_lse = m == -INFINITY ? -INFINITY : m + logf(l);
    if (threadIdx.x == 0) lse[row] = row_lse;
    for (int64_t j = threadIdx.x; j < r.g.Tk; j += blockDim.x) {
      const float p = row_lse != -INFINITY && r.visible_at(row, j) ? expf(sr[j] - row_lse) : 0.f;
      sr[j] = apply_dropout ? p * r.drop_at(row, j) : p;
    }
  }
}

// P of the backward from S (recomputed) and the forward's lse, in place; with dropout also P_drop into pd.
__global__ void probs_from_lse_kernel(ScoreRows r, int64_t rows, float* s, const float* lse, float* pd) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float l = lse[row];
    float* sr = s + row * r.ld;
    for (int64_t j = threadIdx.x; j < r.g.Tk; j += blockDim.x) {
      const float p = l != -INFINITY && r.visible_at(row, j) ? expf(sr[j] - l) : 0.f;
      sr[j] = p;
      if (pd) pd[row * r.ld + j] = p * r.drop_at(row, j);
    }
  }
}

// dS = P * (dP_drop * dropout factor - D) in place of dP_drop, with D = dout_row . out_row (D wide).
__global__ void dscores_kernel(ScoreRows r, int64_t rows, int64_t D, const float* p, const float* dout,
                               const float* out, float* dp) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    float d = 0.f;
    for (int64_t c = threadIdx.x; c < D; c += blockDim.x) d += dout[row * D + c] * out[row * D + c];
    d = block_sum(d, scratch);
    for (int64_t j = threadIdx.x; j < r.g.Tk; j += blockDim.x) {
      const int64_t at = row * r.ld + j;
      dp[at] = p[at] * (dp[at] * r.drop_at(row, j) - d);
    }
  }
}

ScoreRows score_rows(const AttentionShape& s, const AttentionOptions& o) {
  return {attention_geometry(s, o), score_ld(s.kv_len), keep_scale_of<float>(o)};
}

// S [BH, Tq, Tk] (rows ld apart) = scale q k^T over the heads.
void scores(const BlasContext& blas, const AttentionShape& s, float scale, const float* q, const float* k, float* S,
            cudaStream_t stream) {
  const int64_t Tq = s.q_len, Tk = s.kv_len, D = s.head_dim, ld = score_ld(Tk);
  gemm_strided_batched<float>(blas, false, true, Tq, Tk, D, scale, q, D, Tq * D, k, D, Tk * D, 0.f, S, ld, Tq * ld,
                              s.batch * s.heads, stream);
}

}  // namespace

int64_t attention_gemm_scratch_elems(const AttentionShape& s) {
  return s.batch * s.heads * s.q_len * score_ld(s.kv_len);
}

void attention_gemm_forward(const BlasContext& blas, const AttentionShape& s, const AttentionOptions& o, const float* q,
                            const float* k, const float* v, float* out, float* lse, float* scratch,
                            cudaStream_t stream) {
  const int64_t rows = s.batch * s.heads * s.q_len, Tq = s.q_len, Tk = s.kv_len, D = s.head_dim;
  if (rows == 0 || Tk == 0 || D == 0) throw std::invalid_argument("attention_gemm_forward: an empty shape");
  scores(blas, s, o.scale, q, k, scratch, stream);
  softmax_rows_kernel<<<row_blocks(rows), kRowThreads, 0, stream>>>(score_rows(s, o), rows, scratch, lse, true);
  check_launch("attention_gemm_forward (softmax)");
  const int64_t ld = score_ld(Tk);
  gemm_strided_batched<float>(blas, false, false, Tq, D, Tk, 1.f, scratch, ld, Tq * ld, v, D, Tk * D, 0.f, out, D,
                              Tq * D, s.batch * s.heads, stream);
}

void attention_gemm_backward(const BlasContext& blas, const AttentionShape& s, const AttentionOptions& o,
                             const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* dout, float* dq, float* dk, float* dv, float* scratch, float* scratch2,
                             cudaStream_t stream) {
  const int64_t BH = s.batch * s.heads, rows = BH * s.q_len, Tq = s.q_len, Tk = s.kv_len, D = s.head_dim;
  if (rows == 0 || Tk == 0 || D == 0) throw std::invalid_argument("attention_gemm_backward: an empty shape");
  const ScoreRows r = score_rows(s, o);
  const int64_t ld = r.ld;
  const bool dropout = o.dropout_p > 0.f;
  float *P = scratch, *dS = scratch2;
  scores(blas, s, o.scale, q, k, P, stream);
  // P, and P_drop in the second buffer for dv (without dropout dv reads P itself).
  probs_from_lse_kernel<<<row_blocks(rows), kRowThreads, 0, stream>>>(r, rows, P, lse, dropout ? dS : nullptr);
  check_launch("attention_gemm_backward (probabilities)");
  // dv [Tk, D] = P_drop^T [Tk, Tq] dout [Tq, D].
  gemm_strided_batched<float>(blas, true, false, Tk, D, Tq, 1.f, dropout ? dS : P, ld, Tq * ld, dout, D, Tq * D, 0.f,
                              dv, D, Tk * D, BH, stream);
  // dP_drop [Tq, Tk] = dout [Tq, D] v^T [D, Tk], then dS in place.
  gemm_strided_batched<float>(blas, false, true, Tq, Tk, D, 1.f, dout, D, Tq * D, v, D, Tk * D, 0.f, dS, ld, Tq * ld,
                              BH, stream);
  dscores_kernel<<<row_blocks(rows), kRowThreads, 0, stream>>>(r, rows, D, P, dout, out, dS);
  check_launch("attention_gemm_backward (score gradient)");
  // dq [Tq, D] = scale dS [Tq, Tk] k [Tk, D]; dk [Tk, D] = scale dS^T [Tk, Tq] q [Tq, D].
  gemm_strided_batched<float>(blas, false, false, Tq, D, Tk, o.scale, dS, ld, Tq * ld, k, D, Tk * D, 0.f, dq, D, Tq * D,
                              BH, stream);
  gemm_strided_batched<float>(blas, true, false, Tk, D, Tq, o.scale, dS, ld, Tq * ld, q, D, Tq * D, 0.f, dk, D, Tk * D,
                              BH, stream);
}

}  // namespace hone::kernels::cuda
