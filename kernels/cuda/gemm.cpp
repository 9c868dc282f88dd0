// GEMM through cuBLASLt, row-major.
//
// cuBLAS is column-major. A row-major matrix X [r, c] with leading dimension ld is, bit for bit,
// the column-major matrix X^T [c, r] with the same ld. So the row-major product C = op(A) op(B)
// is computed as the column-major C^T = op(B)^T op(A)^T: swap the operands (B first), keep each
// operand's transpose flag, and swap M and N. No data moves.
//
// Compute types: float32 in full precision (CUBLAS_COMPUTE_32F) or TF32 tensor cores when
// set_tf32(true); bf16/f16 operands with float32 accumulation and scale; float64 in float64.
// The heuristic is asked for an algorithm once per configuration (cached_call: shape, types, leading
// dimensions, epilogue and the operands' real alignment, as a view into a fused qkv projection need
// not be 256-byte aligned, the heuristic's default); a large extent that is not whole 16-byte
// vectors is cut into aligned parts first (kernels/gemm_split.h).
//
// gemm_epilogue adds cuBLASLt's epilogues (bias, tanh GELU with its aux matrix, GELU gradient with
// the bias gradient, bias gradients of an operand) to one product. The mapping to the column-major
// call, the rules of when cuBLASLt may be asked, and the memo of configurations it has no algorithm
// for live in kernels/gemm_epilogue.{h,cpp} (host-only, tested without a GPU). Where it cannot fuse,
// the plain GEMM runs and kernels/cuda/gemm_epilogue.cu's passes finish the job.
//
// gemm_f32_out is autocast's weight-gradient GEMM: 16-bit operands, a float32 output (and bias
// gradient), optionally accumulating (beta 1), for float32 master weights.
#include <cublasLt.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda_api.h"
#include "kernels/env_switch.h"
#include "kernels/gemm_split.h"

namespace hone::kernels::cuda {

namespace {

std::atomic<bool> g_tf32{false};

void check_blas(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string("cuBLASLt ") + what + " failed: " + cublasLtGetStatusString(st));
}

// kernels/gemm_epilogue.h spells cuBLASLt's epilogue codes without including cublasLt.h.
static_assert(uint32_t(LtEpilogue::Default) == CUBLASLT_EPILOGUE_DEFAULT);
static_assert(uint32_t(LtEpilogue::Bias) == CUBLASLT_EPILOGUE_BIAS);
static_assert(uint32_t(LtEpilogue::GeluBias) == CUBLASLT_EPILOGUE_GELU_BIAS);
static_assert(uint32_t(LtEpilogue::GeluAuxBias) == CUBLASLT_EPILOGUE_GELU_AUX_BIAS);
static_assert(uint32_t(LtEpilogue::DGelu) == CUBLASLT_EPILOGUE_DGELU);
static_assert(uint32_t(LtEpilogue::DGeluBgrad) == CUBLASLT_EPILOGUE_DGELU_BGRAD);
static_assert(uint32_t(LtEpilogue::BgradA) == CUBLASLT_EPILOGUE_BGRADA);
static_assert(uint32_t(LtEpilogue::BgradB) == CUBLASLT_EPILOGUE_BGRADB);

template <class T> cudaDataType_t data_type();
template <> cudaDataType_t data_type<float>() { return CUDA_R_32F; }
template <> cudaDataType_t data_type<double>() { return CUDA_R_64F; }
template <> cudaDataType_t data_type<bf16>() { return CUDA_R_16BF; }
template <> cudaDataType_t data_type<f16>() { return CUDA_R_16F; }

// RAII holders for the descriptor objects.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~MatmulDesc() { if (d) cublasLtMatmulDescDestroy(d); }
};
struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  ~Layout() { if (l) cublasLtMatrixLayoutDestroy(l); }
};
struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() { if (p) cublasLtMatmulPreferenceDestroy(p); }
};

// A column-major matrix (kernels/gemm_epilogue.h's LtLayout), batched.
void make_layout(Layout& out, cudaDataType_t type, const LtLayout& m, int64_t batch, int64_t stride) {
  check_blas(cublasLtMatrixLayoutCreate(&out.l, type, uint64_t(m.rows), uint64_t(m.cols), m.ld), "MatrixLayoutCreate");
  if (batch > 1) {
    const int32_t count = int32_t(batch);
    check_blas(cublasLtMatrixLayoutSetAttribute(out.l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
               "MatrixLayoutSetAttribute(BATCH_COUNT)");
    check_blas(cublasLtMatrixLayoutSetAttribute(out.l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                sizeof(stride)),
               "MatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
  }
}

template <class T> cublasComputeType_t compute_type() {
  if constexpr (std::is_same_v<T, double>) return CUBLAS_COMPUTE_64F;
  return std::is_same_v<T, float> && g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// One cublasLtMatmul of a plan (kernels/gemm_epilogue.h): descriptors, the heuristic's algorithm and
// the launch. `first`/`second`/`d` are the plan's operands (our B, A and C).
struct LtCall {
  MatmulDesc desc;
  Layout first, second, d;
  Preference pref;
  cublasLtMatmulHeuristicResult_t heuristic{};
  // With HONE_GEMM_AUTOTUNE=1: the heuristic's candidates (best guess first), timed on the first call
  // that may run them again (see tune) and then cleared.
  std::vector<cublasLtMatmulHeuristicResult_t> candidates;
};

// HONE_GEMM_AUTOTUNE=1 (off by default): each configuration's algorithm is the fastest of up to
// kTuneCandidates the heuristic proposes, timed on its first call, instead of the heuristic's first.
// Off by default: a choice by timing may differ from run to run, and so may the last bits of results.
bool autotune_on() { return switched_on("HONE_GEMM_AUTOTUNE"); }
constexpr int kTuneCandidates = 8, kTuneRuns = 3;
std::atomic<int64_t> g_tuned{0}, g_tuned_changed{0};
std::atomic<double> g_tune_saved_us{0};

// How cuBLASLt turns down an epilogue it has no kernel for (the heuristic, or the launch, before
// anything is enqueued): the caller then runs the fallback instead.
bool unsupported(cublasStatus_t st) { return st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE; }

// The epilogue's vectors of one call: the bias (gradient) and the aux matrix, where the plan has them.
void set_epilogue_pointers(LtCall& call, const LtGemmPlan& p, const void* bias, const void* aux) {
  if (p.bias_length > 0)
    check_blas(cublasLtMatmulDescSetAttribute(call.desc.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
               "MatmulDescSetAttribute(BIAS_POINTER)");
  if (p.aux_ld > 0)
    check_blas(
        cublasLtMatmulDescSetAttribute(call.desc.d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux)),
        "MatmulDescSetAttribute(EPILOGUE_AUX_POINTER)");
}

// Builds the call (operands T, output TC); false when the heuristic has no algorithm for it (only where
// `may_fail`, else that throws, naming the shape).
template <class T, class TC = T>
bool prepare(LtCall& call, const BlasContext& ctx, const LtGemmPlan& p, int64_t batch, int64_t stride_first,
             int64_t stride_second, int64_t stride_d, const void* first, const void* second, const void* d,
             const void* bias, const void* aux, bool may_fail) {
  const cudaDataType_t type = data_type<T>();
  const cudaDataType_t scale_type = std::is_same_v<T, double> ? CUDA_R_64F : CUDA_R_32F;
  check_blas(cublasLtMatmulDescCreate(&call.desc.d, compute_type<T>(), scale_type), "MatmulDescCreate");
  auto set = [&](cublasLtMatmulDescAttributes_t attr, const void* value, size_t size, const char* what) {
    check_blas(cublasLtMatmulDescSetAttribute(call.desc.d, attr, value, size), what);
  };
  const cublasOperation_t op_first = p.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = p.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N;
  set(CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first), "MatmulDescSetAttribute(TRANSA)");
  set(CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second), "MatmulDescSetAttribute(TRANSB)");
  if (p.epilogue != LtEpilogue::Default) {
    const auto epilogue = static_cast<cublasLtEpilogue_t>(p.epilogue);
    set(CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue), "MatmulDescSetAttribute(EPILOGUE)");
    // The bias (gradient) vector is in the output's type: cuBLASLt's default for non-8-bit outputs,
    // so CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE stays unset. The heuristic reads the pointers' alignment.
    set_epilogue_pointers(call, p, bias, aux);
    if (p.aux_ld > 0) {
      const int64_t aux_ld = p.aux_ld;
      set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld), "MatmulDescSetAttribute(EPILOGUE_AUX_LD)");
    }
  }
  make_layout(call.first, type, p.first, batch, stride_first);
  make_layout(call.second, type, p.second, batch, stride_second);
  make_layout(call.d, data_type<TC>(), p.d, batch, stride_d);

  check_blas(cublasLtMatmulPreferenceCreate(&call.pref.p), "MatmulPreferenceCreate");
  auto pref = [&](cublasLtMatmulPreferenceAttributes_t attr, const void* value, size_t size, const char* what) {
    check_blas(cublasLtMatmulPreferenceSetAttribute(call.pref.p, attr, value, size), what);
  };
  const uint64_t ws = ctx.workspace_bytes;
  pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws), "MatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
  const uint32_t align_first = pointer_alignment(first), align_second = pointer_alignment(second),
                 align_d = pointer_alignment(d);
  pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_first, sizeof(align_first),
       "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_A)");
  pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_second, sizeof(align_second),
       "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_B)");
  pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d, sizeof(align_d),
       "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_C)");
  pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d, sizeof(align_d),
       "MatmulPreferenceSetAttribute(MIN_ALIGNMENT_D)");

  int found = 0;
  const int requested = autotune_on() ? kTuneCandidates : 1;
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(requested));
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(reinterpret_cast<cublasLtHandle_t>(ctx.lt), call.desc.d, call.first.l,
                                     call.second.l, call.d.l, call.d.l, call.pref.p, requested, results.data(), &found);
  if (may_fail && (unsupported(st) || (st == CUBLAS_STATUS_SUCCESS && found == 0))) return false;
  check_blas(st, "MatmulAlgoGetHeuristic");
  if (found == 0)
    throw std::runtime_error("cuBLASLt found no algorithm for a " + std::to_string(p.n) + "x" + std::to_string(p.m) +
                             "x" + std::to_string(p.k) + " GEMM (batch " + std::to_string(batch) + ")");
  call.heuristic = results[0];
  if (found > 1) call.candidates.assign(results.begin(), results.begin() + found);
  return true;
}

template <class T>
cublasStatus_t launch_algo(const LtCall& call, const cublasLtMatmulAlgo_t& algo, const BlasContext& ctx, float alpha,
                           float beta, const void* first, const void* second, void* d, cudaStream_t stream) {
  const double alpha_d = alpha, beta_d = beta;
  const bool is_double = std::is_same_v<T, double>;
  const void* palpha = is_double ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha);
  const void* pbeta = is_double ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta);
  return cublasLtMatmul(reinterpret_cast<cublasLtHandle_t>(ctx.lt), call.desc.d, palpha, first, call.first.l, second,
                        call.second.l, pbeta, d, call.d.l, d, call.d.l, &algo, ctx.workspace, ctx.workspace_bytes,
                        stream);
}

// Times each candidate algorithm of `call` on these very operands (a warm-up run, then kTuneRuns, between
// CUDA events; the host waits for each) and keeps the fastest. Only where running the product again
// changes nothing: beta 0, so the output (and an epilogue's aux or bias-gradient output) is written
// afresh from inputs no run modifies. A candidate that fails to launch is passed over.
template <class T>
void tune(LtCall& call, const BlasContext& ctx, float alpha, const void* first, const void* second, void* d,
          cudaStream_t stream) {
  cudaEvent_t start = nullptr, stop = nullptr;
  check(cudaEventCreate(&start), "cudaEventCreate (GEMM autotune)");
  check(cudaEventCreate(&stop), "cudaEventCreate (GEMM autotune)");
  float best_ms = -1, first_ms = -1;
  size_t best = 0;
  for (size_t i = 0; i < call.candidates.size(); ++i) {
    const cublasLtMatmulAlgo_t& algo = call.candidates[i].algo;
    if (launch_algo<T>(call, algo, ctx, alpha, 0.f, first, second, d, stream) != CUBLAS_STATUS_SUCCESS) continue;
    check(cudaEventRecord(start, stream), "cudaEventRecord (GEMM autotune)");
    for (int r = 0; r < kTuneRuns; ++r) launch_algo<T>(call, algo, ctx, alpha, 0.f, first, second, d, stream);
    check(cudaEventRecord(stop, stream), "cudaEventRecord (GEMM autotune)");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize (GEMM autotune)");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime (GEMM autotune)");
    if (i == 0) first_ms = ms;
    if (best_ms < 0 || ms < best_ms) best_ms = ms, best = i;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  g_tuned.fetch_add(1);
  if (best != 0) {
    g_tuned_changed.fetch_add(1);
    if (first_ms > 0) g_tune_saved_us.fetch_add(1e3 * double(first_ms - best_ms) / kTuneRuns);
  }
  call.heuristic = call.candidates[best];
  call.candidates.clear();
}

template <class T>
cublasStatus_t launch(LtCall& call, const BlasContext& ctx, float alpha, float beta, const void* first,
                      const void* second, void* d, cudaStream_t stream) {
  if (!call.candidates.empty() && beta == 0.f) tune<T>(call, ctx, alpha, first, second, d, stream);
  return launch_algo<T>(call, call.heuristic.algo, ctx, alpha, beta, first, second, d, stream);
}

// The prepared call of a configuration, built (descriptors, layouts, the heuristic's algorithm) on its
// first use and kept: a GPT-2 training step makes ~230 GEMM calls of a few dozen configurations, and
// asking cuBLASLt's heuristic each time costs host time the GPU may wait for. Per thread (descriptors
// are not shared); the epilogue's pointers are set on each use. Null where the heuristic has no algorithm
// (only with may_fail): that answer is not kept here, as try_lt_call's memo keeps it.
template <class T, class TC = T>
LtCall* cached_call(const BlasContext& ctx, const LtGemmPlan& p, int64_t batch, int64_t stride_first,
                    int64_t stride_second, int64_t stride_d, const void* first, const void* second, const void* d,
                    const void* bias, const void* aux, bool may_fail) {
  thread_local std::map<std::vector<int64_t>, std::unique_ptr<LtCall>> calls;
  const std::vector<int64_t> key{reinterpret_cast<int64_t>(ctx.lt),
                                 autotune_on(),
                                 int64_t(ctx.workspace_bytes),
                                 data_type<T>(),
                                 data_type<TC>(),
                                 compute_type<T>(),
                                 p.trans_first,
                                 p.trans_second,
                                 p.m,
                                 p.n,
                                 p.k,
                                 p.first.ld,
                                 p.second.ld,
                                 p.d.ld,
                                 int64_t(p.epilogue),
                                 p.bias_length,
                                 p.aux_ld,
                                 batch,
                                 stride_first,
                                 stride_second,
                                 stride_d,
                                 pointer_alignment(first),
                                 pointer_alignment(second),
                                 pointer_alignment(d),
                                 p.bias_length > 0 ? pointer_alignment(bias) : 0,
                                 p.aux_ld > 0 ? pointer_alignment(aux) : 0};
  auto it = calls.find(key);
  if (it != calls.end()) {
    set_epilogue_pointers(*it->second, p, bias, aux);
    return it->second.get();
  }
  if (calls.size() >= 4096) calls.clear();  // a bound for programs that sweep shapes
  auto call = std::make_unique<LtCall>();
  if (!prepare<T, TC>(*call, ctx, p, batch, stride_first, stride_second, stride_d, first, second, d, bias, aux,
                      may_fail))
    return nullptr;
  return calls.emplace(key, std::move(call)).first->second.get();
}

void require_lt(const BlasContext& ctx, const char* what) {
  if (!ctx.lt) throw std::runtime_error(std::string(what) + ": no cuBLASLt handle in the BlasContext");
}

// -1: not decided yet (read HONE_GEMM_EPILOGUE on first use), else 0/1.
std::atomic<int> g_epilogues{-1};
EpilogueMemo g_memo;

template <class T> int dtype_code();  // the engine's DType order
template <> int dtype_code<float>() { return 0; }
template <> int dtype_code<double>() { return 1; }
template <> int dtype_code<bf16>() { return 2; }
template <> int dtype_code<f16>() { return 3; }

// The memo's key of one configuration: everything cuBLASLt's choice of an algorithm depends on.
// `dtype`: the engine's DType code of the operands (gemm_f32_out adds 16, and 32 more when accumulating).
EpilogueKey memo_key(int dtype, bool tf32, EpilogueKind kind, bool trans_a, bool trans_b, int64_t M, int64_t N,
                     int64_t K, int64_t lda, int64_t ldb, int64_t ldc, const void* A, const void* B, const void* C,
                     const void* bias, const void* aux, int64_t aux_ld) {
  EpilogueKey key;
  check(cudaGetDevice(&key.device), "cudaGetDevice (cuBLASLt epilogue)");
  key.dtype = dtype;
  key.tf32 = tf32;
  key.kind = kind;
  key.trans_a = trans_a, key.trans_b = trans_b, key.has_aux = aux != nullptr;
  key.M = M, key.N = N, key.K = K, key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.aux_ld = aux ? aux_ld : 0;
  key.align_a = pointer_alignment(A), key.align_b = pointer_alignment(B), key.align_c = pointer_alignment(C);
  key.align_bias = pointer_alignment(bias), key.align_aux = aux ? pointer_alignment(aux) : 0;
  return key;
}

// One cuBLASLt call of the configuration `key` (operands T, output TC; alpha 1): true when it ran;
// false, remembered in the memo, when cuBLASLt has no algorithm for it (then nothing was enqueued).
template <class T, class TC>
bool try_lt_call(const BlasContext& ctx, const EpilogueKey& key, float beta, const T* A, const T* B, TC* C,
                 const void* bias, const void* aux, cudaStream_t stream) {
  if (g_memo.unsupported(key)) return false;
  const LtGemmPlan p = plan_lt_gemm(key.kind, key.trans_a, key.trans_b, key.M, key.N, key.K, key.lda, key.ldb, key.ldc,
                                    key.has_aux, key.aux_ld);
  if (LtCall* call = cached_call<T, TC>(ctx, p, 1, 0, 0, 0, B, A, C, bias, aux, true)) {
    const cublasStatus_t st = launch<T>(*call, ctx, 1.f, beta, B, A, C, stream);
    if (st == CUBLAS_STATUS_SUCCESS) return true;
    if (!unsupported(st)) check_blas(st, "Matmul (epilogue)");
  }
  g_memo.mark_unsupported(key);
  return false;
}

// Whether gemm_f32_out asks cuBLASLt for the bias gradient (its BGRADA/BGRADB epilogue: a reduction kernel of
// its own after the GEMM; opt-in, HONE_GEMM_BGRAD_EPILOGUE=1) or runs the plain GEMM and then our column sums
// (the default): on an H200 cuBLASLt's reduction took 26 us a call in the GPT-2 124M step, ours 17 + 2 us
// (30.8 against 31.2 ms a step; bench/RESULTS.md).
bool bias_grad_in_epilogue() { return switched_on("HONE_GEMM_BGRAD_EPILOGUE"); }

// The plain GEMM and our own kernels: what gemm_epilogue does when cuBLASLt cannot fuse the epilogue.
template <class T>
void gemm_then_epilogue(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                        const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, const Epilogue<T>& ep,
                        cudaStream_t stream) {
  if (M > 0 && N > 0) {
    if (K > 0) {
      gemm_strided_batched<T>(ctx, trans_a, trans_b, M, N, K, 1.f, A, lda, 0, B, ldb, 0, 0.f, C, ldc, 0, 1, stream);
    } else {
      check(cudaMemset2DAsync(C, size_t(ldc) * sizeof(T), 0, size_t(N) * sizeof(T), size_t(M), stream),
            "cudaMemset2DAsync (gemm_epilogue, K = 0)");
    }
    gemm_epilogue_apply<T>(ep.kind, M, N, C, ldc, ep.bias, ep.aux, ep.aux_ld, stream);
  }
  const BiasGradSum s = fallback_bias_grad(ep.kind, trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (s.source == BiasGradSum::Source::None) return;
  const T* x = s.source == BiasGradSum::Source::C ? C : s.source == BiasGradSum::Source::A ? A : B;
  strided_sum<T>(s.n_out, s.n_red, x, s.stride_out, s.stride_red, ep.bias, stream);
}

}  // namespace

void set_tf32(bool enabled) { g_tf32 = enabled; }
bool tf32_enabled() { return g_tf32; }

GemmAutotuneStats gemm_autotune_stats() { return {g_tuned.load(), g_tuned_changed.load(), g_tune_saved_us.load()}; }

void set_gemm_epilogues(bool enabled) { g_epilogues = enabled ? 1 : 0; }
bool gemm_epilogues_enabled() {
  int v = g_epilogues.load();
  if (v < 0) {
    const int from_env = switched_off("HONE_GEMM_EPILOGUE") ? 0 : 1;
    g_epilogues.compare_exchange_strong(v, from_env);
    v = g_epilogues.load();
  }
  return v != 0;
}
size_t gemm_epilogue_fallback_count() { return g_memo.size(); }
void clear_gemm_epilogue_fallbacks() { g_memo.clear(); }

template <class T>
void gemm_strided_batched(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                          float alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                          int64_t stride_b, float beta, T* C, int64_t ldc, int64_t stride_c, int64_t batch,
                          cudaStream_t stream) {
  if (M == 0 || N == 0 || batch == 0) return;
  require_lt(ctx, "cuda gemm");
  if (batch > INT32_MAX) throw std::invalid_argument("cuda gemm: batch too large");
  // An odd large extent (GPT-2's vocabulary) runs as aligned parts (kernels/gemm_split.h).
  for (const GemmPart& part : gemm_aligned_parts(trans_a, trans_b, M, N, K, lda, ldb, ldc, int64_t(sizeof(T)))) {
    // Column-major view (kernels/gemm_epilogue.h): C^T [N, M] = op(B)^T [N, K] x op(A)^T [K, M].
    const LtGemmPlan p =
        plan_lt_gemm(EpilogueKind::None, trans_a, trans_b, part.M, part.N, part.K, lda, ldb, ldc, false, 0);
    const T *a = A + part.a_offset, *b = B + part.b_offset;
    T* c = C + part.c_offset;
    LtCall* call = cached_call<T>(ctx, p, batch, stride_b, stride_a, stride_c, b, a, c, nullptr, nullptr, false);
    check_blas(launch<T>(*call, ctx, alpha, part.accumulate ? 1.f : beta, b, a, c, stream), "Matmul");
  }
}

template <class T>
bool gemm_epilogue(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, const Epilogue<T>& ep,
                   cudaStream_t stream) {
  check_epilogue_args(ep.kind, N, ep.bias, ep.aux, ep.aux_ld, "cuda::gemm_epilogue");
  require_lt(ctx, "cuda::gemm_epilogue");
  const bool fusable = ep.kind != EpilogueKind::None && gemm_epilogues_enabled() &&
                       !lt_epilogue_ineligibility(ep.kind, M, N, K, ep.bias, ep.aux, ep.aux_ld);
  if (!fusable) {
    gemm_then_epilogue<T>(ctx, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, ep, stream);
    return ep.kind == EpilogueKind::None;
  }
  const EpilogueKey key = memo_key(dtype_code<T>(), std::is_same_v<T, float> && g_tf32, ep.kind, trans_a, trans_b, M, N,
                                   K, lda, ldb, ldc, A, B, C, ep.bias, ep.aux, ep.aux_ld);
  if (try_lt_call<T, T>(ctx, key, 0.f, A, B, C, ep.bias, ep.aux, stream)) return true;
  gemm_then_epilogue<T>(ctx, trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, ep, stream);
  return false;
}

template <class T>
bool gemm_f32_out(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                  int64_t lda, const T* B, int64_t ldb, float* C, int64_t ldc, float beta, EpilogueKind kind,
                  float* bias, cudaStream_t stream) {
  if (kind != EpilogueKind::None && kind != EpilogueKind::BgradA && kind != EpilogueKind::BgradB)
    throw std::invalid_argument("cuda::gemm_f32_out: only the bias-gradient epilogues (BgradA, BgradB)");
  check_epilogue_args(kind, N, bias, nullptr, 0, "cuda::gemm_f32_out");
  require_lt(ctx, "cuda::gemm_f32_out");
  if (M == 0 || N == 0 || K == 0) return false;  // nothing a cuBLASLt call would do: the caller's path
  // One cuBLASLt call for `part` of the product (GemmPart{M, N, K}: all of it) with epilogue k. 16-bit
  // operands, float32 output: apart from the one-type GEMMs in the memo; accumulating (beta != 0) apart too,
  // so that a configuration cuBLASLt refuses with beta = 1 still fuses with beta = 0.
  auto try_part = [&](const GemmPart& part, EpilogueKind k) {
    const float part_beta = part.accumulate ? 1.f : beta;
    const T *a = A + part.a_offset, *b = B + part.b_offset;
    float* c = C + part.c_offset;
    const EpilogueKey key = memo_key(16 + dtype_code<T>() + (part_beta != 0.f ? 32 : 0), false, k, trans_a, trans_b,
                                     part.M, part.N, part.K, lda, ldb, ldc, a, b, c, bias, nullptr, 0);
    return try_lt_call<T, float>(ctx, key, part_beta, a, b, c, bias, nullptr, stream);
  };
  if (kind != EpilogueKind::None && gemm_epilogues_enabled() && bias_grad_in_epilogue() &&
      !lt_epilogue_ineligibility(kind, M, N, K, bias, nullptr, 0) && try_part(GemmPart{M, N, K}, kind))
    return true;
  // Without an epilogue, an odd large extent (the tied head's weight gradient, [50257, 768]) runs as
  // aligned parts (kernels/gemm_split.h). The first part's refusal leaves nothing enqueued; a later
  // one's (never seen: the parts differ only in extents) could not be undone, so it throws.
  const std::vector<GemmPart> parts = gemm_aligned_parts(trans_a, trans_b, M, N, K, lda, ldb, ldc, int64_t(sizeof(T)));
  for (size_t i = 0; i < parts.size(); ++i) {
    if (try_part(parts[i], EpilogueKind::None)) continue;
    if (i == 0) return false;
    throw std::runtime_error("cuda::gemm_f32_out: cuBLASLt refused one part of a split " + std::to_string(M) + "x" +
                             std::to_string(N) + "x" + std::to_string(K) + " GEMM after running another");
  }
  // The bias gradient by our own pass, from the 16-bit operand, into float32.
  const BiasGradSum s = fallback_bias_grad(kind, trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (s.source == BiasGradSum::Source::None) return true;
  strided_sum<T, float>(s.n_out, s.n_red, s.source == BiasGradSum::Source::A ? A : B, s.stride_out, s.stride_red, bias,
                        stream);
  return true;
}

template bool gemm_f32_out<bf16>(const BlasContext&, bool, bool, int64_t, int64_t, int64_t, const bf16*, int64_t,
                                 const bf16*, int64_t, float*, int64_t, float, EpilogueKind, float*, cudaStream_t);
template bool gemm_f32_out<f16>(const BlasContext&, bool, bool, int64_t, int64_t, int64_t, const f16*, int64_t,
                                const f16*, int64_t, float*, int64_t, float, EpilogueKind, float*, cudaStream_t);

#define HONE_INSTANTIATE(T)                                                                                 \
  template void gemm_strided_batched<T>(const BlasContext&, bool, bool, int64_t, int64_t, int64_t, float,  \
                                        const T*, int64_t, int64_t, const T*, int64_t, int64_t, float, T*,  \
                                        int64_t, int64_t, int64_t, cudaStream_t);                           \
  template bool gemm_epilogue<T>(const BlasContext&, bool, bool, int64_t, int64_t, int64_t, const T*,       \
                                 int64_t, const T*, int64_t, T*, int64_t, const Epilogue<T>&, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
