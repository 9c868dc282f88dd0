// GEMM epilogues (issue #4): a row-major product C = op(A) op(B) [M, N] that also adds a bias,
// applies the tanh GELU, or produces a bias gradient in the same pass over C, as cuBLASLt's
// epilogues do (kernels/cuda/gemm.cpp runs them; this header is host-only and CUDA-free, so the
// row-major <-> column-major mapping, the eligibility rules and the fallback memo are tested on
// every machine; header-only, so that the CUDA library needs nothing from the CPU one).
//
//   kind          C                              bias                        aux
//   None          op(A) op(B)                    -                           -
//   Bias          op(A) op(B) + bias[j]          in:  [N]                    -
//   BiasGeluTanh  gelu_tanh(op(A) op(B) + b[j])  in:  [N]                    out: the pre-activation
//                                                                             [M, N] (null: not kept)
//   DGeluBgrad    op(A) op(B) * gelu_tanh'(aux)  out: [N], column sums of C  in:  the pre-activation
//   DGelu         op(A) op(B) * gelu_tanh'(aux)  -                           in:  the pre-activation
//   BgradA        op(A) op(B)                    out: [M], sum of op(A)      -
//                                                     [M, K] over K
//   BgradB        op(A) op(B)                    out: [N], sum of op(B)      -
//                                                     [K, N] over K
//
// aux is row-major [M, N] with leading dimension aux_ld. The GELU is the tanh form only (GPT-2's
// "gelu_new"): it is the one cuBLASLt has; the erf form stays on kernels/fused.h's bias_gelu.
// In a linear layer y = x W^T + b (x [R, K], W [N, K]): the forward is Bias (or BiasGeluTanh);
// the weight gradient dW = g^T x is the product with A = g (trans_a), and BgradA gives the bias
// gradient (the sum of g over the rows) with it; DGeluBgrad belongs to the data-gradient GEMM of
// the layer after a GELU (dH = dOut W2, then dPre = dH * gelu'(pre) and its column sums); DGelu is
// the same without the sums (on an H200 cuBLASLt's DGELU_BGRAD summed GPT-2's [16384, 3072] in a
// separate 320 us kernel, where the next layer's weight-gradient GEMM sums dPre in its BGRAD epilogue).
#pragma once
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>

namespace hone::kernels {

enum class EpilogueKind : int32_t { None, Bias, BiasGeluTanh, DGeluBgrad, BgradA, BgradB, DGelu };

inline const char* epilogue_kind_name(EpilogueKind kind) {
  switch (kind) {
    case EpilogueKind::None: return "none";
    case EpilogueKind::Bias: return "bias";
    case EpilogueKind::BiasGeluTanh: return "bias_gelu_tanh";
    case EpilogueKind::DGeluBgrad: return "dgelu_bgrad";
    case EpilogueKind::BgradA: return "bgrad_a";
    case EpilogueKind::BgradB: return "bgrad_b";
    case EpilogueKind::DGelu:
      return "dgelu";
  }
  return "?";
}

// The cublasLtEpilogue_t values we use (kernels/cuda/gemm.cpp static_asserts that they match).
enum class LtEpilogue : uint32_t {
  Default = 1,
  Bias = 4,
  GeluBias = 36,
  GeluAuxBias = 164,
  DGelu = 192,
  DGeluBgrad = 208,
  BgradA = 256,
  BgradB = 512,
};

// A stored column-major matrix as cublasLtMatrixLayoutCreate takes it.
struct LtLayout {
  int64_t rows = 0, cols = 0, ld = 0;
};

// The column-major call that computes the row-major C = op(A) op(B) with an epilogue.
// A row-major X [r, c] (leading dimension ld) is bit for bit the column-major X^T [c, r] with the
// same ld, so cuBLASLt computes D^T = op(B)^T op(A)^T: its first operand ("A" to cuBLASLt) is our
// B, its second our A, each keeping its own transpose flag, and m = N, n = M. Every epilogue
// vector follows: our bias over the columns of C is cuBLASLt's bias over the rows of D; our
// BgradA (a reduction of our A) is cuBLASLt's BGRADB and our BgradB its BGRADA.
struct LtGemmPlan {
  int64_t m = 0, n = 0, k = 0;        // D [m, n] = op(first) [m, k] op(second) [k, n]
  bool trans_first = false;           // CUBLASLT_MATMUL_DESC_TRANSA: our trans_b
  bool trans_second = false;          // CUBLASLT_MATMUL_DESC_TRANSB: our trans_a
  LtLayout first, second, d;          // first = our B, second = our A, d = our C
  LtEpilogue epilogue = LtEpilogue::Default;
  int64_t bias_length = 0;            // elements of the bias (gradient) vector; 0: none
  bool bias_is_output = false;        // a gradient the epilogue writes (else an input it reads)
  int64_t aux_ld = 0;                 // 0: no aux matrix
  bool aux_is_output = false;
};
// has_aux matters for BiasGeluTanh only (without aux: GELU_BIAS); DGeluBgrad and DGelu always read aux.
inline LtGemmPlan plan_lt_gemm(EpilogueKind kind, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                               int64_t lda, int64_t ldb, int64_t ldc, bool has_aux, int64_t aux_ld) {
  LtGemmPlan p;
  p.m = N;
  p.n = M;
  p.k = K;
  // Our B, stored row-major [K, N] (or [N, K] with trans_b), is column-major [N, K] (or [K, N]).
  p.trans_first = trans_b;
  p.first = {trans_b ? K : N, trans_b ? N : K, ldb};
  // Our A, stored row-major [M, K] (or [K, M] with trans_a), is column-major [K, M] (or [M, K]).
  p.trans_second = trans_a;
  p.second = {trans_a ? M : K, trans_a ? K : M, lda};
  p.d = {N, M, ldc};
  switch (kind) {
    case EpilogueKind::None: break;
    case EpilogueKind::Bias:
      p.epilogue = LtEpilogue::Bias;
      p.bias_length = N;  // the rows of D
      break;
    case EpilogueKind::BiasGeluTanh:
      p.epilogue = has_aux ? LtEpilogue::GeluAuxBias : LtEpilogue::GeluBias;
      p.bias_length = N;
      if (has_aux) {
        p.aux_ld = aux_ld;
        p.aux_is_output = true;
      }
      break;
    case EpilogueKind::DGeluBgrad:
      p.epilogue = LtEpilogue::DGeluBgrad;
      p.bias_length = N;  // reduced over the columns of D (our rows)
      p.bias_is_output = true;
      p.aux_ld = aux_ld;
      break;
    case EpilogueKind::DGelu:
      p.epilogue = LtEpilogue::DGelu;
      p.aux_ld = aux_ld;
      break;
    case EpilogueKind::BgradA:
      // A reduction of our A = cuBLASLt's B over k: one value per column of D (our row).
      p.epilogue = LtEpilogue::BgradB;
      p.bias_length = M;
      p.bias_is_output = true;
      break;
    case EpilogueKind::BgradB:
      p.epilogue = LtEpilogue::BgradA;
      p.bias_length = N;
      p.bias_is_output = true;
      break;
  }
  return p;
}

// DGeluBgrad and DGelu read aux; BiasGeluTanh writes it when given one.
inline bool epilogue_uses_aux(EpilogueKind kind, const void* aux) {
  return kind == EpilogueKind::DGeluBgrad || kind == EpilogueKind::DGelu ||
         (kind == EpilogueKind::BiasGeluTanh && aux != nullptr);
}
// Every kind but None and DGelu reads or writes the bias vector.
inline bool epilogue_uses_bias(EpilogueKind kind) { return kind != EpilogueKind::None && kind != EpilogueKind::DGelu; }

// Largest power of two (at most 256) that divides the address: what cuBLASLt's heuristic is told
// about an operand's alignment, and part of the memo's key.
inline uint32_t pointer_alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && (a % align) != 0) align /= 2;
  return align;
}

// Why the epilogue cannot be handed to cuBLASLt for these operands (nullptr: it can). The rules
// of cublasLt.h and of cuBLASLt's documentation: the bias and aux pointers 16-byte aligned, the
// aux leading dimension a multiple of 8 and at least N (the rows of cuBLASLt's D); and an empty
// product (M, N or K zero), which we never hand to cuBLASLt.
inline const char* lt_epilogue_ineligibility(EpilogueKind kind, int64_t M, int64_t N, int64_t K, const void* bias,
                                             const void* aux, int64_t aux_ld) {
  if (M == 0 || N == 0 || K == 0) return "an empty product";
  if (kind == EpilogueKind::None) return nullptr;
  if (epilogue_uses_bias(kind) && pointer_alignment(bias) < 16) return "the bias vector is not 16-byte aligned";
  if (epilogue_uses_aux(kind, aux)) {
    if (pointer_alignment(aux) < 16) return "the aux matrix is not 16-byte aligned";
    if (aux_ld % 8 != 0) return "the aux leading dimension is not a multiple of 8";
    if (aux_ld < N) return "the aux leading dimension is smaller than N";
  }
  return nullptr;
}

// Throws std::invalid_argument when the epilogue's vectors are missing or the aux matrix is too
// narrow (aux_ld < N); `what` names the caller.
inline void check_epilogue_args(EpilogueKind kind, int64_t N, const void* bias, const void* aux, int64_t aux_ld,
                                const char* what) {
  const std::string name = std::string(what) + " (" + epilogue_kind_name(kind) + "): ";
  if (epilogue_uses_bias(kind) && !bias) throw std::invalid_argument(name + "the bias vector is null");
  if ((kind == EpilogueKind::DGeluBgrad || kind == EpilogueKind::DGelu) && !aux)
    throw std::invalid_argument(name + "the aux matrix is null");
  if (epilogue_uses_aux(kind, aux) && aux_ld < N)
    throw std::invalid_argument(name + "aux_ld " + std::to_string(aux_ld) + " is smaller than N = " +
                                std::to_string(N));
}

// The bias gradient of the fallback (the plain GEMM and our own kernels) as a reduction of a
// strided matrix: out[i] = sum over j < n_red of X[i * stride_out + j * stride_red], where X is
// C (after the GELU gradient), A or B.
struct BiasGradSum {
  enum class Source { None, C, A, B };
  Source source = Source::None;
  int64_t n_out = 0, n_red = 0, stride_out = 0, stride_red = 0;
};
inline BiasGradSum fallback_bias_grad(EpilogueKind kind, bool trans_a, bool trans_b, int64_t M, int64_t N,
                                      int64_t K, int64_t lda, int64_t ldb, int64_t ldc) {
  using S = BiasGradSum::Source;
  switch (kind) {
    case EpilogueKind::DGeluBgrad:  // C [M, N] summed over its rows
      return {S::C, N, M, 1, ldc};
    case EpilogueKind::BgradA:  // op(A) [M, K] summed over K
      return trans_a ? BiasGradSum{S::A, M, K, 1, lda} : BiasGradSum{S::A, M, K, lda, 1};
    case EpilogueKind::BgradB:  // op(B) [K, N] summed over K
      return trans_b ? BiasGradSum{S::B, N, K, ldb, 1} : BiasGradSum{S::B, N, K, 1, ldb};
    default: return {};
  }
}

// The GEMM configurations for which cuBLASLt returned no algorithm with the epilogue, so that the
// next call of that configuration goes straight to the fallback (one heuristic query per
// configuration, not one per call). Thread-safe.
struct EpilogueKey {
  int device = 0;
  int dtype = 0;  // the engine's DType code of the operands
  bool tf32 = false;
  EpilogueKind kind = EpilogueKind::None;
  bool trans_a = false, trans_b = false, has_aux = false;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0, aux_ld = 0;
  uint32_t align_a = 0, align_b = 0, align_c = 0, align_bias = 0, align_aux = 0;
  auto tie() const {
    return std::tie(device, dtype, tf32, kind, trans_a, trans_b, has_aux, M, N, K, lda, ldb, ldc, aux_ld, align_a,
                    align_b, align_c, align_bias, align_aux);
  }
  bool operator<(const EpilogueKey& o) const { return tie() < o.tie(); }
  bool operator==(const EpilogueKey& o) const { return tie() == o.tie(); }
};

class EpilogueMemo {
 public:
  bool unsupported(const EpilogueKey& key) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_.count(key) != 0;
  }
  // Returns true the first time a key is recorded.
  bool mark_unsupported(const EpilogueKey& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_.insert(key).second;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_.size();
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    keys_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::set<EpilogueKey> keys_;
};

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The obviously-right row-major GEMM with an epilogue, in T (float or double) with double
// accumulation, straight from the table above. bias/aux as above (aux may be null for
// BiasGeluTanh); the GELU and its slope are ref::unary / ref::unary_grad of UnaryOp::GeluTanh.
template <class T>
void gemm_epilogue(EpilogueKind kind, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, T* bias, T* aux, int64_t aux_ld);
}  // namespace hone::kernels::ref
