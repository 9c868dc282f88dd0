// Splitting a GEMM whose extents are not whole 16-byte vectors (kernels/cuda/gemm.cpp uses it).
//
// cuBLASLt's fast kernels (Hopper's TMA "nvjet" ones, CUTLASS's align8) want every operand's
// contiguous extent to be a whole number of 16-byte vectors; with one odd extent the heuristic falls
// back to kernels that load one element at a time. GPT-2's vocabulary (50257) is such an extent: on
// an H200 the tied head's two backward GEMMs ran on `cutlass_75 ... align1` kernels, 13.3 ms and
// 9.4 ms of a 57.7 ms training step, where the same work in aligned extents takes about 1.8 ms each.
// Padding the leading dimensions is not enough (the activations are padded already,
// ops/common.h's empty_gemm_output): the extent itself must be aligned.
//
// So a large GEMM is cut along each misaligned dimension into an aligned main part and a remainder
// of fewer than 16 bytes' worth of elements, each its own GEMM on the same memory:
//   M or N: two blocks of rows (columns) of C, independent;
//   K:      C = A[:, :k0] B[:k0, :] + A[:, k0:] B[k0:, :], the remainder first with the caller's beta,
//           then the main part adding to it (beta = 1): a 16-bit C is rounded once after the small
//           remainder and once at the end, not after the bulk.
// Offsets are whole vectors, so every part keeps the operands' pointer alignment. Row-major, as
// kernels/gemm.h: op(A) is [M, K] (A stored [K, M] when trans_a), op(B) [K, N] (B stored [N, K]
// when trans_b), C [M, N]; leading dimensions lda, ldb, ldc. Host-only and CUDA-free: tested on
// every machine (tests/kernels/gemm_split_test.cpp).
#pragma once
#include <cstdint>
#include <tuple>
#include <vector>

namespace hone::kernels {

struct GemmPart {
  int64_t M, N, K;
  int64_t a_offset = 0, b_offset = 0, c_offset = 0;  // elements from A, B, C
  bool accumulate = false;  // beta = 1 (adds to an earlier part's result) instead of the caller's beta
};

// Dimensions below this stay whole: their remainder is a sizeable share of the work, and small GEMMs
// are not where the time goes.
constexpr int64_t kGemmSplitMinExtent = 512;

// The parts of C = op(A) op(B) for operands of elem_bytes bytes, in the order to run them: one part
// (the whole GEMM) unless a dimension of at least kGemmSplitMinExtent is not a multiple of the
// elements per 16 bytes. No split either when a leading dimension is misaligned (nothing to gain).
inline std::vector<GemmPart> gemm_aligned_parts(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                                int64_t lda, int64_t ldb, int64_t ldc, int64_t elem_bytes) {
  std::vector<GemmPart> parts{GemmPart{M, N, K}};
  const int64_t per = elem_bytes > 0 && elem_bytes < 16 ? 16 / elem_bytes : 1;
  if (per == 1 || lda % per || ldb % per || ldc % per) return parts;
  // Cuts every part along the dimension `dim` (whole extent d) at d0 = d - d % per: the remainder's
  // operands start da, db, dc elements further. Along K the remainder runs first and the main part
  // adds to it; along M or N the two blocks are independent.
  auto cut = [&](int64_t GemmPart::*dim, int64_t d, auto offsets, bool along_k) {
    if (d < kGemmSplitMinExtent || d % per == 0) return;
    const int64_t d0 = d - d % per;
    const auto [da, db, dc] = offsets(d0);
    std::vector<GemmPart> next;
    for (const GemmPart& p : parts) {
      GemmPart main = p, rest = p;
      main.*dim = d0;
      rest.*dim = d - d0;
      rest.a_offset += da, rest.b_offset += db, rest.c_offset += dc;
      if (along_k) {
        main.accumulate = true;
        next.insert(next.end(), {rest, main});
      } else {
        next.insert(next.end(), {main, rest});
      }
    }
    parts = next;
  };
  using Offsets = std::tuple<int64_t, int64_t, int64_t>;
  cut(
      &GemmPart::M, M,
      [&](int64_t m0) {
        return Offsets{trans_a ? m0 : m0 * lda, 0, m0 * ldc};
      },
      false);
  cut(
      &GemmPart::N, N,
      [&](int64_t n0) {
        return Offsets{0, trans_b ? n0 * ldb : n0, n0};
      },
      false);
  cut(
      &GemmPart::K, K,
      [&](int64_t k0) {
        return Offsets{trans_a ? k0 * lda : k0, trans_b ? k0 : k0 * ldb, 0};
      },
      true);
  return parts;
}

}  // namespace hone::kernels
