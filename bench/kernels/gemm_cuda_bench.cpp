// GPU GEMMs at GPT-2 124M training shapes (M = 16 x 1024 rows; (N, K) = qkv (2304, 768), attn proj
// (768, 768), fc (3072, 768), mlp proj (768, 3072), lm head (50304, 768)), in bfloat16, float32 and
// float32 with TF32 tensor cores. Every case is CUDA-only and registers only when a device is present;
// all are timed with CUDA events on the default stream and report a "TFLOP/s" counter (2 M N K per
// second; the epilogue's own work is not counted).
//
//   cuda/gemm/<dtype>/<layer>/hone_lt     our cuBLASLt path (kernels::cuda::gemm_strided_batched),
//                                         forward layout y = x W^T (W stored [N, K])
//   cuda/gemm/<dtype>/<layer>/cublas      a plain cublasGemmEx call with default settings (the
//                                         "TN" call of a linear layer; CUBLAS_GEMM_DEFAULT, the
//                                         handle's default math mode, the same compute type)
//   cuda/gemm_bias/.../epilogue           kernels::cuda::gemm_epilogue, Bias
//   cuda/gemm_bias/.../separate           the GEMM, then the bias added by our broadcasting add into a
//                                         new array (ops::linear before the epilogue)
//   cuda/gemm_bias_gelu/.../epilogue      gemm_epilogue, BiasGeluTanh keeping the pre-activation (fc)
//   cuda/gemm_bias_gelu/.../separate      the GEMM, then our fused bias_gelu_forward (GPT-2's MLP)
//   cuda/wgrad_bgrad/.../epilogue         the weight gradient dW [N, K] = g^T x (g [M, N], x [M, K])
//                                         with BgradA: the bias gradient from the same GEMM
//   cuda/wgrad_bgrad/.../separate         the same GEMM, then the column sums of g (strided_sum, as
//                                         gemm_f32_out with HONE_GEMM_BGRAD_EPILOGUE=0)
//
// The epilogue cases also report "fused" (1 when cuBLASLt ran the epilogue, 0 when gemm_epilogue fell
// back to the GEMM + our own pass). The lm head has no bias in GPT-2, so it appears in cuda/gemm only.
// tools/device-check.sh runs this binary (bench/gemm_cuda_bench) with --benchmark_filter=cuda.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/runtime.h"

#if defined(HONE_WITH_CUDA)
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "bench/kernels/cuda_timing.h"
#include "bench/kernels/device_array.h"
#include "kernels/cuda_api.h"
#include "kernels/fused.h"
#endif

namespace {

#if defined(HONE_WITH_CUDA)
namespace hk = hone::kernels;
namespace kc = hone::kernels::cuda;

constexpr int64_t kRows = 16 * 1024;

struct Layer {
  const char* name;
  int64_t N, K;
  bool has_bias;
};
constexpr Layer kLayers[] = {{"qkv", 2304, 768, true},
                             {"attn_proj", 768, 768, true},
                             {"fc", 3072, 768, true},
                             {"mlp_proj", 768, 3072, true},
                             {"lm_head", 50304, 768, false}};

enum class Prec { BF16, F32, TF32 };
const char* prec_name(Prec p) { return p == Prec::BF16 ? "bf16" : p == Prec::F32 ? "f32" : "tf32"; }

enum class Op { Gemm, GemmBias, GemmBiasGelu, WgradBgrad };
const char* op_name(Op o) {
  switch (o) {
    case Op::Gemm: return "gemm";
    case Op::GemmBias: return "gemm_bias";
    case Op::GemmBiasGelu: return "gemm_bias_gelu";
    case Op::WgradBgrad: return "wgrad_bgrad";
  }
  return "?";
}

struct Case {
  Op op;
  Prec prec;
  Layer layer;
  bool variant;  // gemm: cublas (else hone_lt); others: separate (else epilogue)
  std::string name() const {
    const char* v = op == Op::Gemm ? (variant ? "cublas" : "hone_lt") : (variant ? "separate" : "epilogue");
    return std::string("cuda/") + op_name(op) + "/" + prec_name(prec) + "/" + layer.name + "_" +
           std::to_string(kRows) + "x" + std::to_string(layer.N) + "x" + std::to_string(layer.K) + "/" + v;
  }
};

void check_blas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + " failed: " + cublasGetStatusString(st));
}

using hone::bench::DeviceArray;
// Operands: values in [-1, 1), a pattern of 4M repeated.
const hone::bench::Fill kOperands{-1.f, 1.f, int64_t(1) << 22, 7};

// The cuBLASLt handle and workspace our path gets from the engine (32 MiB, as engine/core/cuda_runtime),
// and a plain cuBLAS handle for the peer.
struct Handles {
  kc::BlasContext lt;
  cublasHandle_t blas = nullptr;
  Handles() {
    cublasLtHandle_t h;
    check_blas(cublasLtCreate(&h), "cublasLtCreate");
    lt.lt = h;
    lt.workspace_bytes = size_t(32) << 20;
    kc::check(cudaMalloc(&lt.workspace, lt.workspace_bytes), "cudaMalloc (workspace)");
    check_blas(cublasCreate(&blas), "cublasCreate");
  }
  ~Handles() {
    cublasDestroy(blas);
    cudaFree(lt.workspace);
    cublasLtDestroy(lt.lt);
  }
};
Handles& handles() {
  static Handles h;
  return h;
}

template <class T> cudaDataType_t cuda_type() { return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF; }

template <class T> void bm_case(benchmark::State& state, Case c) {
  Handles& h = handles();
  kc::set_tf32(c.prec == Prec::TF32);
  const int64_t M = kRows, N = c.layer.N, K = c.layer.K;
  const bool wgrad = c.op == Op::WgradBgrad;
  // Forward: x [M, K], W [N, K], y [M, N] (+ aux [M, N]). Weight gradient: g [M, N], x [M, K], dW [N, K].
  DeviceArray<T> x(M * K, kOperands), w(wgrad ? 0 : N * K, kOperands), g(wgrad ? M * N : 0, kOperands),
      bias(N, kOperands);
  const bool two_outputs = c.op == Op::GemmBias || c.op == Op::GemmBiasGelu;
  DeviceArray<T> y(wgrad ? N * K : M * N), extra(two_outputs ? M * N : 0);
  bool fused = true;
  // The forward product y = x W^T into `out`, plain or with an epilogue writing y (and aux).
  auto forward = [&](T* out) {
    kc::gemm_strided_batched<T>(h.lt, false, true, M, N, K, 1.f, x.p, K, 0, w.p, K, 0, 0.f, out, N, 0, 1, nullptr);
  };
  auto forward_epilogue = [&](hk::EpilogueKind kind, T* aux) {
    const kc::Epilogue<T> ep{kind, bias.p, aux, aux ? N : 0};
    fused = kc::gemm_epilogue<T>(h.lt, false, true, M, N, K, x.p, K, w.p, K, y.p, N, ep, nullptr);
  };
  auto run = [&] {
    switch (c.op) {
      case Op::Gemm:
        if (!c.variant) return forward(y.p);
        {
          const float alpha = 1.f, beta = 0.f;
          const cublasComputeType_t compute =
              c.prec == Prec::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
          const cudaDataType_t type = cuda_type<T>();
          check_blas(cublasGemmEx(h.blas, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &alpha, w.p, type, int(K),
                                  x.p, type, int(K), &beta, y.p, type, int(N), compute, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx");
        }
        return;
      case Op::GemmBias:
        if (!c.variant) return forward_epilogue(hk::EpilogueKind::Bias, nullptr);
        forward(y.p);
        {
          const int64_t shape[2] = {M, N}, sy[2] = {N, 1}, sb[2] = {0, 1};
          kc::binary_forward<T>(hk::BinaryOp::Add, 2, shape, y.p, sy, bias.p, sb, extra.p, nullptr);
        }
        return;
      case Op::GemmBiasGelu:
        if (!c.variant) return forward_epilogue(hk::EpilogueKind::BiasGeluTanh, extra.p);
        forward(extra.p);
        kc::bias_gelu_forward<T>(hk::UnaryOp::GeluTanh, M, N, extra.p, bias.p, y.p, nullptr);
        return;
      case Op::WgradBgrad:
        if (!c.variant) {
          const kc::Epilogue<T> ep{hk::EpilogueKind::BgradA, bias.p};
          fused = kc::gemm_epilogue<T>(h.lt, true, false, N, K, M, g.p, N, x.p, K, y.p, K, ep, nullptr);
          return;
        }
        kc::gemm_strided_batched<T>(h.lt, true, false, N, K, M, 1.f, g.p, N, 0, x.p, K, 0, 0.f, y.p, K, 0, 1, nullptr);
        kc::strided_sum<T>(N, M, g.p, 1, N, bias.p, nullptr);
        return;
    }
  };
  hone::bench::keep_scratch_pool();
  run();  // warm-up: heuristics, the stream-ordered pool, the memo
  kc::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (bench)");
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double seconds = 0;
  for (auto _ : state) {
    cudaEventRecord(start, nullptr);
    run();
    cudaEventRecord(stop, nullptr);
    kc::check(cudaEventSynchronize(stop), "cudaEventSynchronize (bench)");
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms * 1e-3);
    seconds += ms * 1e-3;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  kc::set_tf32(false);
  const double flops = 2.0 * double(M) * double(N) * double(K);
  state.counters["TFLOP/s"] = seconds > 0 ? flops * double(state.iterations()) / seconds * 1e-12 : 0.0;
  if (c.op != Op::Gemm && !c.variant) state.counters["fused"] = fused ? 1 : 0;
}
#endif

const bool registered = [] {
#if defined(HONE_WITH_CUDA)
  if (!hone::kernels::cuda_device_present()) return false;
  std::vector<Case> cases;
  for (Op op : {Op::Gemm, Op::GemmBias, Op::GemmBiasGelu, Op::WgradBgrad})
    for (Prec prec : {Prec::BF16, Prec::F32, Prec::TF32})
      for (const Layer& l : kLayers) {
        if (op != Op::Gemm && !l.has_bias) continue;
        if (op == Op::GemmBiasGelu && std::string(l.name) != "fc") continue;
        for (bool variant : {false, true}) cases.push_back({op, prec, l, variant});
      }
  for (const Case& c : cases) {
    auto* b = c.prec == Prec::BF16 ? benchmark::RegisterBenchmark(c.name().c_str(), bm_case<hone::bf16>, c)
                                   : benchmark::RegisterBenchmark(c.name().c_str(), bm_case<float>, c);
    b->Unit(benchmark::kMicrosecond)->UseManualTime();
  }
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
