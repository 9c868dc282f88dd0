// What every CUDA attention path of hone agrees on (attention.cu's flash-style kernels and
// attention_gemm.cu's GEMM form): which keys a query sees, and the dropout mask, as kernels/attention.h
// defines them for the CPU.
#pragma once
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"

namespace hone::kernels::cuda {

struct AttentionGeometry {
  int64_t B, H, Tq, Tk, D, shift;  // shift = Tk - Tq: the causal diagonal is bottom-right aligned
  bool causal;
  const uint8_t* key_valid;
  float drop_p;
  uint64_t seed, offset;
};

inline AttentionGeometry attention_geometry(const AttentionShape& s, const AttentionOptions& o) {
  return {s.batch,  s.heads,     s.q_len,     s.kv_len, s.head_dim, s.kv_len - s.q_len,
          o.causal, o.key_valid, o.dropout_p, o.seed,   o.offset};
}

// Whether query i of batch b sees key j.
__device__ __forceinline__ bool visible(const AttentionGeometry& g, int64_t b, int64_t i, int64_t j) {
  return j < g.Tk && (!g.causal || j <= i + g.shift) && (!g.key_valid || g.key_valid[b * g.Tk + j]);
}

// The keys query row i may see are [0, key_end).
__device__ __forceinline__ int64_t key_end_of(const AttentionGeometry& g, int64_t i) {
  return g.causal ? min(g.Tk, max(int64_t(0), i + g.shift + 1)) : g.Tk;
}

// 1 / (1 - p) for a kept element, 0 for a dropped one, 1 without dropout.
template <class A>
__device__ __forceinline__ A dropout_factor(const AttentionGeometry& g, int64_t bh, int64_t i, int64_t j,
                                            A keep_scale) {
  if (g.drop_p <= 0.f) return A(1);
  const uint64_t idx = uint64_t((bh * g.Tq + i) * g.Tk + j);
  return philox::uniform(g.seed, g.offset, idx) >= g.drop_p ? keep_scale : A(0);
}

template <class T>
T keep_scale_of(const AttentionOptions& o) {
  return o.dropout_p > 0.f ? T(1) / (T(1) - T(o.dropout_p)) : T(1);
}

}  // namespace hone::kernels::cuda
