// Kernel-level checks of kernels/cuda against the CPU kernels and the references, written once
// and run two ways: as GoogleTest cases (cuda_kernels_test.cpp, skipped without a device) and by
// the standalone tests/cuda_selftest.cpp (for a GPU machine without GoogleTest).
// Each check returns "" when it passes, else a description of the first mismatch.
#pragma once
#if defined(HONE_WITH_CUDA)
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cuda_api.h"
#if defined(HONE_CUDA_EMULATED)
#include "cuda_emu/counters.h"
#endif
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/fused.h"
#include "kernels/gemm.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/indexing.h"
#include "kernels/layernorm.h"
#include "kernels/optim.h"
#include "kernels/philox.h"
#include "kernels/softmax.h"
#include "scoped_env.h"

namespace hone::cudacheck {

namespace kc = hone::kernels::cuda;

// Launches of kernels whose launch expression contains `name` so far: under the CUDA emulator, which
// counts them (a check that a path really ran); -1 on a GPU.
inline int64_t launches_of(const std::string& name) {
#if defined(HONE_CUDA_EMULATED)
  int64_t n = 0;
  for (const auto& [kernel, count] : emu::launches())
    if (kernel.find(name) != std::string::npos) n += int64_t(count);
  return n;
#else
  (void)name;
  return -1;
#endif
}

// Device copy of a host vector, freed on scope exit.
template <class T>
struct DeviceVec {
  T* p = nullptr;
  size_t n = 0;
  explicit DeviceVec(const std::vector<T>& h) : n(h.size()) {
    kc::check(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(T)), "cudaMalloc (test)");
    if (n) kc::check(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy (test)");
  }
  explicit DeviceVec(size_t count) : DeviceVec(std::vector<T>(count)) {}
  ~DeviceVec() { cudaFree(p); }
  DeviceVec(const DeviceVec&) = delete;
  std::vector<T> get() const {
    std::vector<T> h(n);
    kc::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (test)");
    if (n) kc::check(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy (test)");
    return h;
  }
};

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox::uniform(seed, 0, i);
  return v;
}

// "" when |got - want| <= tol * max(1, |want|) everywhere (equal infinities, e.g. the -inf
// log-sum-exp of a row that sees no key, and NaN against NaN count as equal).
template <class A, class B>
std::string compare(const std::vector<A>& got, const std::vector<B>& want, double tol, const std::string& what) {
  if (got.size() != want.size()) return what + ": size " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = double(got[i]), w = double(want[i]);
    if ((std::isnan(g) && std::isnan(w)) || (std::isinf(w) && g == w)) continue;
    if (!(std::fabs(g - w) <= tol * std::max(1.0, std::fabs(w)))) {
      std::ostringstream os;
      os << what << ": element " << i << " is " << g << ", expected " << w << " (tol " << tol << ")";
      return os.str();
    }
  }
  return "";
}

struct Blas {
  kc::BlasContext ctx;
  Blas() {
    cublasLtHandle_t h;
    if (cublasLtCreate(&h) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasLtCreate failed");
    ctx.lt = h;
    ctx.workspace_bytes = 32 << 20;
    kc::check(cudaMalloc(&ctx.workspace, ctx.workspace_bytes), "cudaMalloc (workspace)");
  }
  ~Blas() {
    cudaFree(ctx.workspace);
    cublasLtDestroy(ctx.lt);
  }
};

// HONE_GEMM_AUTOTUNE=1: a configuration's candidate algorithms are timed once, on its first call
// with beta 0, whose result is still the product; a call that accumulates (beta 1) is never timed
// (running it again would add the product twice) and adds it once.
inline std::string check_gemm_autotune() {
  Blas blas;
  kc::set_tf32(false);
  const test::ScopedEnv on("HONE_GEMM_AUTOTUNE", "1");
  const int64_t M = 41, N = 23, K = 37;
  const auto A = random_floats(M * K, 91), B = random_floats(K * N, 92);
  std::vector<float> want(M * N);
  kernels::ref::gemm<float>(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, want.data(), N);
  DeviceVec<float> dA(A), dB(B), dC(M * N);
  const kc::GemmAutotuneStats before = kc::gemm_autotune_stats();
  for (int call = 1; call <= 2; ++call) {
    kc::gemm_strided_batched<float>(blas.ctx, false, false, M, N, K, 1.f, dA.p, K, 0, dB.p, N, 0, 0.f, dC.p, N, 0, 1,
                                    nullptr);
    const std::string err = compare(dC.get(), want, 1e-4, "autotuned gemm, call " + std::to_string(call));
    if (!err.empty()) return err;
  }
  const kc::GemmAutotuneStats tuned = kc::gemm_autotune_stats();
  if (tuned.timed != before.timed + 1)
    return "autotune timed a configuration " + std::to_string(tuned.timed - before.timed) + " times in two calls";
  // Accumulating, into rows N + 3 apart (a configuration of its own, not timed yet).
  const int64_t ldc = N + 3;
  const auto prior = random_floats(M * ldc, 93);
  std::vector<float> sum(prior);
  kernels::ref::gemm<float>(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 1.f, sum.data(), ldc);
  DeviceVec<float> dAcc(prior);
  kc::gemm_strided_batched<float>(blas.ctx, false, false, M, N, K, 1.f, dA.p, K, 0, dB.p, N, 0, 1.f, dAcc.p, ldc, 0, 1,
                                  nullptr);
  if (kc::gemm_autotune_stats().timed != tuned.timed) return "autotune timed a GEMM that accumulates (beta 1)";
  return compare(dAcc.get(), sum, 1e-4, "autotuned gemm accumulating (beta 1)");
}

// GEMM vs the reference on odd shapes, every transpose combination, batched with a broadcast
// operand, fp32 (TF32 off) and bf16 inputs.
inline std::string check_gemm() {
  Blas blas;
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {128, 96, 64}, {13, 300, 31}};
  kc::set_tf32(false);
  for (auto& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int64_t M = s[0], N = s[1], K = s[2], batch = 3;
        const int64_t lda = ta ? M + 1 : K + 2, ldb = tb ? K + 3 : N + 1, ldc = N;
        const int64_t sa = (ta ? K : M) * lda, sb = 0;  // B broadcast over the batch
        const auto A = random_floats(batch * sa, 11), B = random_floats((ta + tb + 1) * (tb ? N : K) * ldb, 12);
        std::vector<float> want(batch * M * N);
        for (int64_t b = 0; b < batch; ++b)
          kernels::ref::gemm<float>(ta, tb, M, N, K, 1.f, A.data() + b * sa, lda, B.data() + b * sb, ldb, 0.f,
                                    want.data() + b * M * N, ldc);
        DeviceVec<float> dA(A), dB(B), dC(want.size());
        kc::gemm_strided_batched<float>(blas.ctx, ta, tb, M, N, K, 1.f, dA.p, lda, sa, dB.p, ldb, sb, 0.f, dC.p, ldc,
                                        M * N, batch, nullptr);
        const std::string what = "gemm f32 M" + std::to_string(M) + " N" + std::to_string(N) + " K" +
                                 std::to_string(K) + " ta" + std::to_string(ta) + " tb" + std::to_string(tb);
        std::string err = compare(dC.get(), want, 1e-4, what);
        if (!err.empty()) return err;
        // bf16 operands, float accumulation: compare with the reference on the rounded inputs.
        std::vector<bf16> Ah(A.begin(), A.end()), Bh(B.begin(), B.end());
        std::vector<float> Ar(Ah.begin(), Ah.end()), Br(Bh.begin(), Bh.end());
        for (int64_t b = 0; b < batch; ++b)
          kernels::ref::gemm<float>(ta, tb, M, N, K, 1.f, Ar.data() + b * sa, lda, Br.data() + b * sb, ldb, 0.f,
                                    want.data() + b * M * N, ldc);
        DeviceVec<bf16> hA(Ah), hB(Bh), hC(want.size());
        kc::gemm_strided_batched<bf16>(blas.ctx, ta, tb, M, N, K, 1.f, hA.p, lda, sa, hB.p, ldb, sb, 0.f, hC.p, ldc,
                                       M * N, batch, nullptr);
        const auto got16 = hC.get();
        err = compare(std::vector<float>(got16.begin(), got16.end()), want, 2e-2, what + " bf16");
        if (!err.empty()) return err;
      }
  return "";
}

// GEMMs with a large odd extent, which kernels/gemm_split.h cuts into aligned parts (M, N and K each,
// with two at once): f32 and bf16 through gemm_strided_batched with beta 0 and 0.5 (the K remainder
// runs first with the caller's beta), and bf16 -> float32 through gemm_f32_out with beta 0 and 1.
inline std::string check_gemm_split() {
  Blas blas;
  const bool tf32 = kc::tf32_enabled();
  kc::set_tf32(false);
  const int64_t shapes[][3] = {{515, 9, 12}, {7, 521, 16}, {5, 12, 1027}, {519, 13, 515}, {9, 515, 517}};
  auto padded = [](int64_t n) { return (n + 7) / 8 * 8 + 8; };  // whole 16-byte vectors for bf16 and f32
  std::string err;
  uint64_t seed = 900;
  for (auto& sh : shapes)
    for (int ta = 0; ta < 2 && err.empty(); ++ta)
      for (int tb = 0; tb < 2 && err.empty(); ++tb)
        for (float beta : {0.f, 0.5f}) {
          const int64_t M = sh[0], N = sh[1], K = sh[2];
          const int64_t lda = padded(ta ? M : K), ldb = padded(tb ? K : N), ldc = padded(N);
          const auto A = random_floats((ta ? K : M) * lda, ++seed), B = random_floats((tb ? N : K) * ldb, ++seed);
          const auto C0 = random_floats(M * ldc, ++seed);
          const std::string what = "gemm_split M" + std::to_string(M) + " N" + std::to_string(N) + " K" +
                                   std::to_string(K) + " ta" + std::to_string(ta) + " tb" + std::to_string(tb) +
                                   " beta" + std::to_string(beta);
          std::vector<float> want = C0;
          kernels::ref::gemm<float>(ta, tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
          DeviceVec<float> dA(A), dB(B), dC(C0);
          kc::gemm_strided_batched<float>(blas.ctx, ta, tb, M, N, K, 1.f, dA.p, lda, 0, dB.p, ldb, 0, beta, dC.p, ldc,
                                          0, 1, nullptr);
          if (!(err = compare(dC.get(), want, 1e-4, what + " f32")).empty()) break;
          // bf16 operands and C: the reference on the rounded values.
          std::vector<bf16> Ah(A.begin(), A.end()), Bh(B.begin(), B.end()), Ch(C0.begin(), C0.end());
          std::vector<float> Ar(Ah.begin(), Ah.end()), Br(Bh.begin(), Bh.end()), Cr(Ch.begin(), Ch.end());
          want = Cr;
          kernels::ref::gemm<float>(ta, tb, M, N, K, 1.f, Ar.data(), lda, Br.data(), ldb, beta, want.data(), ldc);
          DeviceVec<bf16> hA(Ah), hB(Bh), hC(Ch);
          kc::gemm_strided_batched<bf16>(blas.ctx, ta, tb, M, N, K, 1.f, hA.p, lda, 0, hB.p, ldb, 0, beta, hC.p, ldc, 0,
                                         1, nullptr);
          const auto got16 = hC.get();
          if (!(err = compare(std::vector<float>(got16.begin(), got16.end()), want, 2e-2, what + " bf16")).empty())
            break;
          // bf16 operands, float32 C (beta 0 or 1, as the weight gradients use it).
          const float beta32 = beta == 0.f ? 0.f : 1.f;
          want = C0;
          kernels::ref::gemm<float>(ta, tb, M, N, K, 1.f, Ar.data(), lda, Br.data(), ldb, beta32, want.data(), ldc);
          DeviceVec<float> fC(C0);
          if (!kc::gemm_f32_out<bf16>(blas.ctx, ta, tb, M, N, K, hA.p, lda, hB.p, ldb, fC.p, ldc, beta32,
                                      kernels::EpilogueKind::None, nullptr, nullptr))
            err = what + " gemm_f32_out: cuBLASLt has no float32-output GEMM for it";
          else
            err = compare(fC.get(), want, 1e-4, what + " gemm_f32_out");
          if (!err.empty()) break;
        }
  kc::set_tf32(tf32);
  return err;
}

// Autocast's weight-gradient GEMM (gemm_f32_out): 16-bit operands, float32 C and bias gradient, with
// cuBLASLt's epilogue and (epilogues off) the plain float32-output GEMM plus our own bias pass. Both
// against the float reference on the rounded operands, tight (the result is never rounded to 16 bits).
inline std::string check_gemm_f32_out() {
  Blas blas;
  const bool tf32 = kc::tf32_enabled(), epilogues = kc::gemm_epilogues_enabled();
  kc::set_tf32(false);
  const int64_t shapes[][3] = {{16, 24, 40}, {33, 17, 65}, {8, 56, 9}};
  std::string err;
  const size_t memo_before = kc::gemm_epilogue_fallback_count();
  int with_epilogue = 0;  // bias-gradient calls while epilogues were on
  for (int on = 1; on >= 0 && err.empty(); --on) {
    kc::set_gemm_epilogues(on == 1);
    for (auto& sh : shapes)
      for (int ta = 0; ta < 2 && err.empty(); ++ta)
        for (int kind = 0; kind < 3 && err.empty(); ++kind) {
          const int64_t M = sh[0], N = sh[1], K = sh[2], tb = 1 - ta;
          const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
          const auto A = random_floats((ta ? K : M) * lda, 21), B = random_floats((tb ? N : K) * ldb, 22);
          std::vector<bf16> Ah(A.begin(), A.end()), Bh(B.begin(), B.end());
          std::vector<float> Ar(Ah.begin(), Ah.end()), Br(Bh.begin(), Bh.end()), want(M * N);
          kernels::ref::gemm<float>(ta, tb, M, N, K, 1.f, Ar.data(), lda, Br.data(), ldb, 0.f, want.data(), ldc);
          const kernels::EpilogueKind k = kind == 0   ? kernels::EpilogueKind::None
                                          : kind == 1 ? kernels::EpilogueKind::BgradA
                                                      : kernels::EpilogueKind::BgradB;
          // BgradA: op(A) [M, K] summed over K; BgradB: op(B) [K, N] summed over K.
          std::vector<double> bias_want(kind == 1 ? M : N, 0.0);
          for (int64_t i = 0; i < M && kind == 1; ++i)
            for (int64_t kk = 0; kk < K; ++kk) bias_want[i] += Ar[ta ? kk * lda + i : i * lda + kk];
          for (int64_t j = 0; j < N && kind == 2; ++j)
            for (int64_t kk = 0; kk < K; ++kk) bias_want[j] += Br[tb ? j * ldb + kk : kk * ldb + j];
          DeviceVec<bf16> dA(Ah), dB(Bh);
          // beta = 1 onto C's earlier values (gradient accumulation) for the bias-gradient kinds.
          const float beta = kind ? 1.f : 0.f;
          const auto c0 = random_floats(size_t(M * N), 23);
          if (kind)
            for (size_t i = 0; i < want.size(); ++i) want[i] += c0[i];
          DeviceVec<float> dC(kind ? c0 : std::vector<float>(size_t(M * N), std::nanf(""))), dbias(bias_want.size());
          const bool ran = kc::gemm_f32_out<bf16>(blas.ctx, ta, tb, M, N, K, dA.p, lda, dB.p, ldb, dC.p, ldc, beta, k,
                                                  kind ? dbias.p : nullptr, nullptr);
          with_epilogue += on && kind;
          const std::string what = "gemm_f32_out M" + std::to_string(M) + " N" + std::to_string(N) + " K" +
                                   std::to_string(K) + " ta" + std::to_string(ta) + " kind " + std::to_string(kind) +
                                   (on ? "" : " (epilogues off)");
          if (!ran) {
            err = what + ": no float32-output GEMM ran";
            break;
          }
          err = compare(dC.get(), want, 1e-5, what);
          if (err.empty() && kind) err = compare(dbias.get(), bias_want, 1e-5, what + " bias gradient");
        }
  }
  kc::set_tf32(tf32);
  kc::set_gemm_epilogues(epilogues);
  // Which path cuBLASLt took is worth knowing on a GPU: configurations it had no float32-output
  // bias-gradient epilogue for are remembered (and ran the plain GEMM plus our bias pass).
  std::printf("[gemm_epilogue] gemm_f32_out: %zu of %d bias-gradient configurations fell back to our bias pass\n",
              kc::gemm_epilogue_fallback_count() - memo_before, with_epilogue);
  return err;
}

// strided_sum (the bias gradients' own pass) against sums in double: 16-bit columns through the 16-byte
// column-sum kernel (one and several 256-column tiles, chunks of 128 rows with a partial last one, a
// leading dimension past the columns), into float32 and into T; and the shapes it cannot take (columns
// not a multiple of 8, also over 16 chunks of 64 rows; a misaligned start, strided outputs) through the
// generic kernel.
template <class T>
std::string check_column_sums_of() {
  struct Case {
    int64_t n_out, n_red, stride_out, stride_red, offset;
  };
  const Case cases[] = {{8, 300, 1, 8, 0},      {776, 1000, 1, 784, 0}, {264, 129, 1, 264, 0},
                        {768, 2048, 1, 768, 0}, {13, 37, 1, 13, 0},     {16, 50, 1, 16, 1},
                        {16, 40, 40, 1, 0},     {24, 1, 1, 24, 0},      {13, 1000, 1, 13, 0}};
  const std::string type = std::is_same_v<T, bf16> ? "bf16" : "f16";
  for (const Case& c : cases) {
    const size_t n = size_t(c.offset + (c.n_out - 1) * c.stride_out + (c.n_red - 1) * c.stride_red + 1);
    const auto v = random_floats(n, 31 + uint64_t(c.n_out));
    std::vector<T> h(v.begin(), v.end());
    std::vector<double> want(size_t(c.n_out), 0.0);
    for (int64_t i = 0; i < c.n_out; ++i)
      for (int64_t j = 0; j < c.n_red; ++j) want[i] += double(float(h[c.offset + i * c.stride_out + j * c.stride_red]));
    DeviceVec<T> x(h);
    DeviceVec<float> out32(size_t(c.n_out));
    DeviceVec<T> out16(size_t(c.n_out));
    kc::strided_sum<T, float>(c.n_out, c.n_red, x.p + c.offset, c.stride_out, c.stride_red, out32.p, nullptr);
    kc::strided_sum<T, T>(c.n_out, c.n_red, x.p + c.offset, c.stride_out, c.stride_red, out16.p, nullptr);
    const std::string what = "strided_sum " + type + " " + std::to_string(c.n_out) + " outputs of " +
                             std::to_string(c.n_red) + " (strides " + std::to_string(c.stride_out) + ", " +
                             std::to_string(c.stride_red) + ", offset " + std::to_string(c.offset) + ")";
    std::string err = compare(out32.get(), want, 1e-5, what + " into float32");
    if (err.empty()) {
      const std::vector<T> got = out16.get();
      err = compare(std::vector<float>(got.begin(), got.end()), want, 1e-2, what + " into " + type);
    }
    if (!err.empty()) return err;
  }
  return "";
}
inline std::string check_column_sums() {
  std::string err = check_column_sums_of<bf16>();
  return err.empty() ? check_column_sums_of<f16>() : err;
}

// The dropout mask (and values) equal the CPU's bit for bit.
inline std::string check_dropout() {
  const struct { int64_t n; double p; uint64_t seed, offset; } cases[] = {
      {1, 0.5, 1, 0}, {7, 0.1, 42, 3}, {1000, 0.5, 7, 123}, {4097, 0.9, 0x5eed, 1u << 20}, {33, 1.0, 3, 0}};
  for (const auto& c : cases) {
    const auto x = random_floats(c.n, 5, 0.5f, 2.f);
    std::vector<float> want(c.n);
    kernels::dropout_apply<float>(c.n, c.p, c.seed, c.offset, x.data(), want.data());
    DeviceVec<float> dx(x), dy(c.n);
    kc::dropout_apply<float>(c.n, c.p, c.seed, c.offset, dx.p, dy.p, nullptr);
    const auto got = dy.get();
    if (std::memcmp(got.data(), want.data(), c.n * sizeof(float)) != 0)
      return "dropout n=" + std::to_string(c.n) + " p=" + std::to_string(c.p) + ": CUDA mask differs from the CPU's";
  }
  return "";
}

// Multi-tensor AdamW equals the CPU update (up to fused multiply-adds), global norm and clipping.
inline std::string check_adamw_and_norm() {
  const std::vector<int64_t> sizes = {1, 3, 40000, 16384, 7};
  std::vector<std::vector<float>> p, g, m, v;
  for (size_t t = 0; t < sizes.size(); ++t) {
    p.push_back(random_floats(sizes[t], 100 + t));
    g.push_back(random_floats(sizes[t], 200 + t));
    m.push_back(random_floats(sizes[t], 300 + t, 0.f, 0.1f));
    v.push_back(random_floats(sizes[t], 400 + t, 0.f, 0.1f));
  }
  std::vector<std::unique_ptr<DeviceVec<float>>> dp, dg, dm, dv;
  std::vector<kc::AdamWTensor> tensors;
  for (size_t t = 0; t < sizes.size(); ++t) {
    dp.push_back(std::make_unique<DeviceVec<float>>(p[t]));
    dg.push_back(std::make_unique<DeviceVec<float>>(g[t]));
    dm.push_back(std::make_unique<DeviceVec<float>>(m[t]));
    dv.push_back(std::make_unique<DeviceVec<float>>(v[t]));
    tensors.push_back({dp[t]->p, dg[t]->p, dm[t]->p, dv[t]->p, sizes[t], t % 2 ? 0.f : 0.1f});
  }
  // Autocast copies written with the new weights: bf16 for the large tensor (vector path), f16 for
  // the 7-element one (the element-wise tail).
  DeviceVec<bf16> copy_bf16{size_t(sizes[2])};
  DeviceVec<f16> copy_f16{size_t(sizes[4])};
  tensors[2].copy_bf16 = copy_bf16.p;
  tensors[4].copy_f16 = copy_f16.p;
  kernels::AdamWParams hp{1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, 7};
  kc::adamw_multi(tensors.data(), int(tensors.size()), hp, nullptr);
  {
    const std::vector<float> p2 = dp[2]->get(), p4 = dp[4]->get();
    const std::vector<bf16> c2 = copy_bf16.get();
    const std::vector<f16> c4 = copy_f16.get();
    for (size_t i = 0; i < p2.size(); ++i)
      if (float(c2[i]) != float(bf16(p2[i])))
        return "adamw bf16 copy element " + std::to_string(i) + ": " + std::to_string(float(c2[i])) + " for weight " +
               std::to_string(p2[i]);
    for (size_t i = 0; i < p4.size(); ++i)
      if (float(c4[i]) != float(f16(p4[i])))
        return "adamw f16 copy element " + std::to_string(i) + ": " + std::to_string(float(c4[i])) + " for weight " +
               std::to_string(p4[i]);
  }
  double sq = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    kernels::AdamWParams ht = hp;
    ht.weight_decay = t % 2 ? 0.f : 0.1f;
    kernels::adamw_update(sizes[t], p[t].data(), g[t].data(), m[t].data(), v[t].data(), ht);
    for (float x : g[t]) sq += double(x) * x;
    for (auto [got, want, what] : {std::tuple{dp[t]->get(), p[t], "param"}, std::tuple{dm[t]->get(), m[t], "m"},
                                   std::tuple{dv[t]->get(), v[t], "v"}}) {
      const std::string err = compare(got, want, 1e-6, std::string("adamw ") + what + " of tensor " + std::to_string(t));
      if (!err.empty()) return err;
    }
  }
  std::vector<const float*> gp;
  std::vector<float*> gm;
  for (auto& d : dg) gp.push_back(d->p), gm.push_back(d->p);
  DeviceVec<int64_t> dummy(1);
  DeviceVec<float> norm(1);
  kc::global_grad_norm(gp.data(), sizes.data(), int(sizes.size()), norm.p, nullptr);
  std::string err = compare(norm.get(), std::vector<double>{std::sqrt(sq)}, 1e-6, "global_grad_norm");
  if (!err.empty()) return err;
  const float max_norm = float(std::sqrt(sq) / 2);
  kc::clip_by_norm(gm.data(), sizes.data(), int(sizes.size()), norm.p, max_norm, nullptr);
  const double scale = max_norm / (std::sqrt(sq) + 1e-6);
  std::vector<double> want;
  for (float x : g[2]) want.push_back(x * scale);
  return compare(dg[2]->get(), want, 1e-6, "clip_by_norm");
}

// Unary forward/backward for every op, a broadcasting binary op and a strided converting copy.
inline std::string check_elementwise() {
  const int64_t n = 1003;
  const auto x = random_floats(n, 9, 0.1f, 2.f), gy = random_floats(n, 10);
  for (int op = 0; op <= int(kernels::UnaryOp::Pow); ++op) {
    const auto u = kernels::UnaryOp(op);
    std::vector<float> y(n), gx(n);
    kernels::unary_forward<float>(u, n, x.data(), y.data(), 1.7);
    kernels::unary_backward<float>(u, n, x.data(), y.data(), gy.data(), gx.data(), 1.7);
    DeviceVec<float> dx(x), dy(n), dgy(gy), dgx(n);
    kc::unary_forward<float>(u, n, dx.p, dy.p, 1.7, nullptr);
    kc::unary_backward<float>(u, n, dx.p, dy.p, dgy.p, dgx.p, 1.7, nullptr);
    std::string err = compare(dy.get(), y, 1e-5, std::string("unary forward ") + kernels::unary_op_name(u));
    if (err.empty()) err = compare(dgx.get(), gx, 1e-5, std::string("unary backward ") + kernels::unary_op_name(u));
    if (!err.empty()) return err;
  }
  // [5, 1, 7] * [1, 6, 7] -> [5, 6, 7]
  const int64_t shape[3] = {5, 6, 7}, sa[3] = {7, 0, 1}, sb[3] = {0, 7, 1};
  const auto a = random_floats(35, 1), b = random_floats(42, 2);
  std::vector<float> want(210);
  kernels::binary_forward<float>(kernels::BinaryOp::Mul, 3, shape, a.data(), sa, b.data(), sb, want.data());
  DeviceVec<float> da(a), db(b), dout(210);
  kc::binary_forward<float>(kernels::BinaryOp::Mul, 3, shape, da.p, sa, db.p, sb, dout.p, nullptr);
  std::string err = compare(dout.get(), want, 0, "binary mul broadcast");
  if (!err.empty()) return err;
  // Transposed float32 view -> contiguous bf16.
  const int64_t tshape[2] = {6, 35}, ts[2] = {1, 6}, cs[2] = {35, 1};
  std::vector<bf16> want16(210);
  kernels::copy_strided(0, 2, 2, tshape, want.data(), ts, want16.data(), cs);
  DeviceVec<bf16> d16(210);
  kc::copy_strided(0, 2, 2, tshape, dout.p, ts, d16.p, cs, nullptr);
  const auto got16 = d16.get();
  for (size_t i = 0; i < got16.size(); ++i)
    if (got16[i].bits != want16[i].bits) return "copy_strided f32 -> bf16 (transposed) differs at " + std::to_string(i);
  // Dense runs (the flat vector kernel when both ends are aligned, else the strided one): f32 -> bf16
  // and back, 100003 elements (a tail past the last 8), from an aligned start and from one element in.
  const int64_t dense_n = 100003;
  const auto big = random_floats(dense_n + 1, 3, -100.f, 100.f);
  DeviceVec<float> dbig(big);
  DeviceVec<bf16> dlow(dense_n + 1);
  DeviceVec<float> dback(dense_n + 1);
  for (int64_t start : {0, 1}) {
    const int64_t len = dense_n - start, one = 1;
    kc::copy_strided(0, 2, 1, &len, dbig.p + start, &one, dlow.p + start, &one, nullptr);
    kc::copy_strided(2, 0, 1, &len, dlow.p + start, &one, dback.p + start, &one, nullptr);
    const auto low = dlow.get();
    const auto back = dback.get();
    for (int64_t i = start; i < dense_n; ++i) {
      if (low[size_t(i)].bits != bf16(big[size_t(i)]).bits)
        return "flat copy f32 -> bf16 differs at " + std::to_string(i) + " (start " + std::to_string(start) + ")";
      if (back[size_t(i)] != float(low[size_t(i)]))
        return "flat copy bf16 -> f32 differs at " + std::to_string(i) + " (start " + std::to_string(start) + ")";
    }
  }
  return "";
}

// Row kernels: softmax and layer norm forward/backward against the CPU kernels; the layer-norm
// backward run twice must agree bit for bit.
inline std::string check_rows() {
  const int64_t rows = 37, cols = 777;
  const auto x = random_floats(rows * cols, 21, -3.f, 3.f), gy = random_floats(rows * cols, 22);
  const auto w = random_floats(cols, 23), b = random_floats(cols, 24);
  for (bool log : {false, true}) {
    std::vector<float> y(rows * cols), gx(rows * cols);
    kernels::softmax_forward<float>(rows, cols, x.data(), y.data(), log);
    kernels::softmax_backward<float>(rows, cols, y.data(), gy.data(), gx.data(), log);
    DeviceVec<float> dx(x), dy(rows * cols), dgy(gy), dgx(rows * cols);
    kc::softmax_forward<float>(rows, cols, dx.p, dy.p, log, nullptr);
    kc::softmax_backward<float>(rows, cols, dy.p, dgy.p, dgx.p, log, nullptr);
    std::string err = compare(dy.get(), y, 1e-5, log ? "log_softmax forward" : "softmax forward");
    if (err.empty()) err = compare(dgx.get(), gx, 1e-5, log ? "log_softmax backward" : "softmax backward");
    if (!err.empty()) return err;
  }
  std::vector<float> y(rows * cols), mean(rows), rstd(rows), gx(rows * cols), gw(cols), gb(cols);
  kernels::layernorm_forward<float>(rows, cols, x.data(), w.data(), b.data(), 1e-5, y.data(), mean.data(), rstd.data());
  kernels::layernorm_backward<float>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy.data(), gx.data(),
                                     gw.data(), gb.data());
  DeviceVec<float> dx(x), dw(w), db(b), dy(rows * cols), dm(rows), dr(rows), dgy(gy), dgx(rows * cols), dgw(cols),
      dgb(cols), dgw2(cols);
  kc::layernorm_forward<float>(rows, cols, dx.p, dw.p, db.p, 1e-5, dy.p, dm.p, dr.p, nullptr);
  kc::layernorm_backward<float>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgy.p, dgx.p, dgw.p, dgb.p, nullptr);
  kc::layernorm_backward<float>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgy.p, nullptr, dgw2.p, nullptr, nullptr);
  for (auto [got, want, what] : {std::tuple{dy.get(), y, "layernorm y"}, std::tuple{dr.get(), rstd, "layernorm rstd"},
                                 std::tuple{dgx.get(), gx, "layernorm dx"}, std::tuple{dgw.get(), gw, "layernorm dweight"},
                                 std::tuple{dgb.get(), gb, "layernorm dbias"}}) {
    const std::string err = compare(got, want, 2e-5, what);
    if (!err.empty()) return err;
  }
  const auto w1 = dgw.get(), w2 = dgw2.get();
  if (std::memcmp(w1.data(), w2.data(), cols * sizeof(float)) != 0) return "layernorm dweight is not deterministic";
  // 777 and 1500 columns take the fused backward (one block per row group), and 7000, too wide for
  // its shared memory (2 * 7000 floats), the two-pass path.
  for (auto [wr, wc] : {std::pair<int64_t, int64_t>{19, 1500}, std::pair<int64_t, int64_t>{5, 7000}}) {
    const auto wx = random_floats(wr * wc, 26, -3.f, 3.f), wgy = random_floats(wr * wc, 27), ww = random_floats(wc, 28);
    std::vector<float> wy(wr * wc), wm(wr), wrs(wr), wgx(wr * wc), wgw(wc), wgb(wc);
    kernels::layernorm_forward<float>(wr, wc, wx.data(), ww.data(), nullptr, 1e-5, wy.data(), wm.data(), wrs.data());
    kernels::layernorm_backward<float>(wr, wc, wx.data(), ww.data(), wm.data(), wrs.data(), wgy.data(), wgx.data(),
                                       wgw.data(), wgb.data());
    DeviceVec<float> dwx(wx), dww(ww), dwm(wm), dwr(wrs), dwgy(wgy), dwgx(wr * wc), dwgw(wc), dwgb(wc);
    kc::layernorm_backward<float>(wr, wc, dwx.p, dww.p, dwm.p, dwr.p, dwgy.p, dwgx.p, dwgw.p, dwgb.p, nullptr);
    for (auto [got, want, what] :
         {std::tuple{dwgx.get(), wgx, "wide layernorm dx"}, std::tuple{dwgw.get(), wgw, "wide layernorm dweight"},
          std::tuple{dwgb.get(), wgb, "wide layernorm dbias"}}) {
      const std::string err = compare(got, want, 2e-5, what);
      if (!err.empty()) return err;
    }
  }
  // A bf16 gy read as is: the float32 backward of gy cast up.
  const std::vector<bf16> gyh(gy.begin(), gy.end());
  const std::vector<float> gy_up(gyh.begin(), gyh.end());
  DeviceVec<bf16> dgyh(gyh);
  DeviceVec<float> dgy_up(gy_up), dgx_f(rows * cols), dgw_f(cols), dgb_f(cols), dgx_l(rows * cols), dgw_l(cols),
      dgb_l(cols);
  kc::layernorm_backward<float>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgy_up.p, dgx_f.p, dgw_f.p, dgb_f.p, nullptr);
  kc::layernorm_backward_lowp_gy<float, bf16>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgyh.p, dgx_l.p, dgw_l.p, dgb_l.p,
                                              nullptr);
  for (auto [got, want, what] : {std::tuple{dgx_l.get(), dgx_f.get(), "layernorm dx from bf16 gy"},
                                 std::tuple{dgw_l.get(), dgw_f.get(), "layernorm dweight from bf16 gy"},
                                 std::tuple{dgb_l.get(), dgb_f.get(), "layernorm dbias from bf16 gy"}}) {
    const std::string err = compare(got, want, 1e-6, what);
    if (!err.empty()) return err;
  }
  // accumulate_gx: dx added into the gradient already in gx, what adding after gives (to float rounding).
  const auto prior = random_floats(rows * cols, 25);
  // The float32 one with the parameter gradients too (the row-group kernel, as in training), the bf16-gy
  // one without (the dx-only kernel).
  DeviceVec<float> dacc(prior), dacc_l(prior), dacc_gw(cols), dacc_gb(cols);
  kc::layernorm_backward<float>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgy.p, dacc.p, dacc_gw.p, dacc_gb.p, nullptr, true);
  if (dacc_gw.get() != dgw.get() || dacc_gb.get() != dgb.get())
    return "layernorm dweight/dbias differ when dx is accumulated into gx";
  DeviceVec<bf16> dtwin(rows * cols);  // gx's final values rounded to bf16, written beside them
  kc::layernorm_backward_lowp_gy<float, bf16>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgyh.p, dacc_l.p, nullptr, nullptr,
                                              nullptr, true, dtwin.p);
  std::vector<float> sum(rows * cols), sum_l(rows * cols);
  const auto alone = dgx.get(), alone_l = dgx_l.get();
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = prior[i] + alone[i], sum_l[i] = prior[i] + alone_l[i];
  std::string acc_err = compare(dacc.get(), sum, 1e-6, "layernorm dx accumulated into gx vs dx added after");
  if (acc_err.empty())
    acc_err = compare(dacc_l.get(), sum_l, 1e-6, "layernorm dx (bf16 gy) accumulated into gx vs dx added after");
  if (acc_err.empty()) {
    const std::vector<float> total = dacc_l.get();
    const std::vector<bf16> twin = dtwin.get();
    for (size_t i = 0; i < twin.size(); ++i)
      if (float(twin[i]) != float(bf16(total[i])))
        return "layernorm gx_lowp element " + std::to_string(i) + " is not gx rounded to bf16";
  }
  return acc_err;
}

// The LayerNorm backward's 16-byte register kernel (float32 rows of a multiple of 4 columns, up to 1024:
// 768, a last warp part full at 516, 1024, one thread's worth at 8) against the CPU and against the fused
// kernel it replaces (HONE_LAYERNORM_BACKWARD_VEC=0): float32 gy with the parameter gradients, a weightless layer
// norm, and bf16 gy accumulated into gx with gx's bf16 twin. Its row sums add in another order: to float
// rounding.
inline std::string check_layernorm_backward_vec() {
  for (const int64_t cols : {768, 516, 1024, 8}) {
    const int64_t rows = 37, n = rows * cols;
    const auto x = random_floats(n, 81, -3.f, 3.f), gy = random_floats(n, 82), w = random_floats(cols, 83),
               prior = random_floats(n, 84);
    std::vector<float> y(n), mean(rows), rstd(rows), gx(n), gw(cols), gb(cols);
    kernels::layernorm_forward<float>(rows, cols, x.data(), w.data(), nullptr, 1e-5, y.data(), mean.data(),
                                      rstd.data());
    kernels::layernorm_backward<float>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy.data(), gx.data(),
                                       gw.data(), gb.data());
    const std::vector<bf16> gyh(gy.begin(), gy.end());
    DeviceVec<float> dx(x), dw(w), dm(mean), dr(rstd), dgy(gy);
    DeviceVec<bf16> dgyh(gyh);
    std::vector<float> results[2][6];  // [vec][gx, gw, gb, weightless gx, accumulated gx, its twin (as float)]
    for (int vec = 0; vec < 2; ++vec) {
      const test::ScopedEnv sw("HONE_LAYERNORM_BACKWARD_VEC", vec ? nullptr : "0");
      DeviceVec<float> dgx(n), dgw(cols), dgb(cols), dplain(n), dacc(prior), dacc_gw(cols), dacc_gb(cols);
      DeviceVec<bf16> dtwin(n);
      const int64_t vec_launches = launches_of("layernorm_backward_vec_kernel");
      kc::layernorm_backward<float>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgy.p, dgx.p, dgw.p, dgb.p, nullptr);
      kc::layernorm_backward<float>(rows, cols, dx.p, nullptr, dm.p, dr.p, dgy.p, dplain.p, dgw.p, dgb.p, nullptr);
      kc::layernorm_backward_lowp_gy<float, bf16>(rows, cols, dx.p, dw.p, dm.p, dr.p, dgyh.p, dacc.p, dacc_gw.p,
                                                  dacc_gb.p, nullptr, true, dtwin.p);
      const std::vector<bf16> twin = dtwin.get();
      if (vec_launches >= 0 && launches_of("layernorm_backward_vec_kernel") - vec_launches != (vec ? 3 : 0))
        return "the 16-byte layernorm backward kernel ran " +
               std::to_string(launches_of("layernorm_backward_vec_kernel") - vec_launches) + " times, expected " +
               (vec ? "3" : "none") + " (" + std::to_string(cols) + " columns)";
      results[vec][0] = dgx.get(), results[vec][1] = dacc_gw.get(), results[vec][2] = dacc_gb.get();
      results[vec][3] = dplain.get(), results[vec][4] = dacc.get();
      results[vec][5] = std::vector<float>(twin.begin(), twin.end());
      const std::string path =
          std::string(vec ? " (16-byte kernel)" : " (fused kernel)") + ", " + std::to_string(cols) + " columns";
      if (std::string err = compare(dgx.get(), gx, 2e-5, "layernorm dx" + path); !err.empty()) return err;
      const std::vector<float> total = results[vec][4];
      for (size_t i = 0; i < total.size(); ++i)
        if (results[vec][5][i] != float(bf16(total[i])))
          return "layernorm gx_lowp element " + std::to_string(i) + " is not gx rounded to bf16" + path;
    }
    const char* names[] = {"dx", "dweight (bf16 gy)", "dbias (bf16 gy)", "weightless dx", "dx accumulated (bf16 gy)"};
    for (int k = 0; k < 5; ++k) {
      const std::string err = compare(
          results[1][k], results[0][k], 1e-5,
          std::string("layernorm ") + names[k] + ": 16-byte vs fused kernel, " + std::to_string(cols) + " columns");
      if (!err.empty()) return err;
    }
    // The parameter gradients from bf16 gy against the CPU's from gy cast up.
    const std::vector<float> gy_up(gyh.begin(), gyh.end());
    std::vector<float> gx_up(n), gw_up(cols), gb_up(cols);
    kernels::layernorm_backward<float>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy_up.data(),
                                       gx_up.data(), gw_up.data(), gb_up.data());
    for (auto [got, want, what] : {std::tuple{results[1][1], gw_up, "layernorm dweight (bf16 gy)"},
                                   std::tuple{results[1][2], gb_up, "layernorm dbias (bf16 gy)"}}) {
      const std::string err = compare(got, want, 2e-5, what + std::string(" vs the CPU's from gy cast up"));
      if (!err.empty()) return err;
    }
  }
  return "";
}

// Attention forward/backward against the reference (causal + padding + dropout), and the
// embedding scatter-add backward against the CPU (bit for bit: same order of additions).
// Our CUDA attention against the reference for one shape, in T (float or double): causal (with
// bottom-right alignment when Tq != Tk), a padding mask, and causal with dropout.
template <class T>
std::string check_attention(const kernels::AttentionShape& s) {
  const size_t nq = s.batch * s.heads * s.q_len * s.head_dim, nk = s.batch * s.heads * s.kv_len * s.head_dim;
  auto values = [](size_t n, uint64_t seed) {
    const auto f = random_floats(n, seed);
    return std::vector<T>(f.begin(), f.end());
  };
  const auto q = values(nq, 31), k = values(nk, 32), v = values(nk, 33), dout = values(nq, 34);
  std::vector<uint8_t> valid(s.batch * s.kv_len, 1);
  for (int64_t j = s.kv_len * 3 / 4; j < s.kv_len; ++j) valid[(s.batch - 1) * s.kv_len + j] = 0;  // padding at the end
  const std::string shape = " (B" + std::to_string(s.batch) + " H" + std::to_string(s.heads) + " Tq" +
                            std::to_string(s.q_len) + " Tk" + std::to_string(s.kv_len) + " D" +
                            std::to_string(s.head_dim) + (std::is_same_v<T, double> ? " double" : "");
  for (int variant = 0; variant < 3; ++variant) {
    kernels::AttentionOptions o;
    o.scale = 1.f / std::sqrt(float(s.head_dim));
    o.causal = variant != 1;
    o.dropout_p = variant == 2 ? 0.25f : 0.f;
    o.seed = 77, o.offset = 5;
    std::vector<T> out(nq), lse(nq / s.head_dim), dq(nq), dk(nk), dv(nk);
    DeviceVec<uint8_t> dvalid(valid);
    o.key_valid = variant == 1 ? valid.data() : nullptr;
    kernels::ref::attention_forward<T>(s, o, q.data(), k.data(), v.data(), out.data(), lse.data());
    kernels::ref::attention_backward<T>(s, o, q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                                        dq.data(), dk.data(), dv.data());
    kernels::AttentionOptions od = o;
    od.key_valid = variant == 1 ? dvalid.p : nullptr;
    DeviceVec<T> dq_(q), dk_(k), dv_(v), ddo(dout), dout_(nq), dlse(lse.size()), gq(nq), gk(nk), gv(nk);
    kc::attention_forward<T>(s, od, dq_.p, dk_.p, dv_.p, dout_.p, dlse.p, nullptr);
    kc::attention_backward<T>(s, od, dq_.p, dk_.p, dv_.p, dout_.p, dlse.p, ddo.p, gq.p, gk.p, gv.p, nullptr);
    const std::string tag = shape + ", variant " + std::to_string(variant) + ")";
    for (auto [got, want, what] : {std::tuple{dout_.get(), out, "attention out"}, std::tuple{dlse.get(), lse, "attention lse"},
                                   std::tuple{gq.get(), dq, "attention dq"}, std::tuple{gk.get(), dk, "attention dk"},
                                   std::tuple{gv.get(), dv, "attention dv"}}) {
      const std::string err = compare(got, want, std::is_same_v<T, double> ? 1e-9 : 1e-4, what + tag);
      if (!err.empty()) return err;
    }
    if constexpr (std::is_same_v<T, float>) {
      // The same through cuBLAS GEMMs (attention_gemm.cu, the float32 path of the engine), TF32 off.
      Blas blas;
      const bool tf32 = kc::tf32_enabled();
      kc::set_tf32(false);
      const int64_t elems = kc::attention_gemm_scratch_elems(s);
      DeviceVec<float> gout(nq), glse(lse.size()), ggq(nq), ggk(nk), ggv(nk), s1(elems), s2(elems);
      kc::attention_gemm_forward(blas.ctx, s, od, dq_.p, dk_.p, dv_.p, gout.p, glse.p, s1.p, nullptr);
      kc::attention_gemm_backward(blas.ctx, s, od, dq_.p, dk_.p, dv_.p, gout.p, glse.p, ddo.p, ggq.p, ggk.p, ggv.p,
                                  s1.p, s2.p, nullptr);
      kc::set_tf32(tf32);
      for (auto [got, want, what] :
           {std::tuple{gout.get(), out, "attention out (GEMMs)"}, std::tuple{glse.get(), lse, "attention lse (GEMMs)"},
            std::tuple{ggq.get(), dq, "attention dq (GEMMs)"}, std::tuple{ggk.get(), dk, "attention dk (GEMMs)"},
            std::tuple{ggv.get(), dv, "attention dv (GEMMs)"}}) {
        const std::string err = compare(got, want, 1e-4, what + tag);
        if (!err.empty()) return err;
      }
    }
  }
  return "";
}

inline std::string check_attention_and_embedding() {
  // Shared-memory tiles (float, D <= 128): one tile and three chunks of rows; several tiles and
  // chunks; Tq > Tk (the first causal rows see nothing) at the widest tiled head. Untiled: a head
  // above 128, and double.
  for (const kernels::AttentionShape& s : {kernels::AttentionShape{2, 3, 19, 23, 40}, kernels::AttentionShape{1, 2, 77, 77, 64},
                                           kernels::AttentionShape{2, 1, 45, 33, 128}, kernels::AttentionShape{1, 2, 20, 37, 136}})
    if (std::string err = check_attention<float>(s); !err.empty()) return err;
  if (std::string err = check_attention<double>({2, 2, 21, 34, 24}); !err.empty()) return err;
  const int64_t n = 300, V = 50, C = 70;
  std::vector<int64_t> ids(n);
  for (int64_t t = 0; t < n; ++t) ids[t] = int64_t(philox::uniform(3, 0, t) * 10) * 5 % V;  // many collisions
  const auto g = random_floats(n * C, 41);
  std::vector<float> want(V * C);
  kernels::embedding_backward<float, int64_t>(n, V, C, ids.data(), g.data(), want.data());
  DeviceVec<int64_t> dids(ids);
  DeviceVec<float> dg(g), dgw(V * C);
  kc::embedding_backward<float, int64_t>(n, V, C, dids.p, dg.p, dgw.p, nullptr);
  const auto got = dgw.get();
  if (std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) != 0)
    return compare(got, want, 0, "embedding backward (bit-exact with the CPU)") + " [or a bitwise difference]";
  // accumulate: added into a gradient already there (a tied LM head's), used rows only; bit for bit
  // the CPU's accumulate, which is the fresh gradient added after.
  const auto prior = random_floats(V * C, 42);
  std::vector<float> want_acc = prior;
  kernels::embedding_backward<float, int64_t>(n, V, C, ids.data(), g.data(), want_acc.data(), true);
  for (size_t i = 0; i < want_acc.size(); ++i)
    if (want_acc[i] != prior[i] + want[i]) return "CPU embedding backward (accumulate) is not prior + fresh gradient";
  DeviceVec<float> dacc(prior);
  kc::embedding_backward<float, int64_t>(n, V, C, dids.p, dg.p, dacc.p, nullptr, true);
  const auto got_acc = dacc.get();
  if (std::memcmp(got_acc.data(), want_acc.data(), want_acc.size() * sizeof(float)) != 0)
    return compare(got_acc, want_acc, 0, "embedding backward, accumulated (bit-exact with the CPU)");
  return "";
}

// Values of any floating storage type (bf16, f16, float) as doubles, for compare().
template <class T>
std::vector<double> widened(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = double(static_cast<float>(v[i]));
  return out;
}

inline std::string check_add_layernorm(int64_t rows, int64_t cols, const std::vector<float>& x,
                                       const std::vector<float>& r, const std::vector<float>& w,
                                       const std::vector<float>& b);

// Fused kernels against the CPU: bias_gelu (both forms) forward, dx and dbias, each gradient alone
// and the bias gradient bit-identical from run to run; add_layernorm sum (bit for bit), normed and
// statistics; then both in bfloat16.
inline std::string check_fused() {
  const int64_t rows = 37, cols = 777, n = rows * cols;
  const auto x = random_floats(n, 51, -4.f, 4.f), r = random_floats(n, 52, -3.f, 3.f), gy = random_floats(n, 53);
  const auto w = random_floats(cols, 54, 0.5f, 1.5f), b = random_floats(cols, 55);
  DeviceVec<float> dx(x), dr(r), dgy(gy), dw(w), db(b);
  for (auto op : {kernels::UnaryOp::GeluErf, kernels::UnaryOp::GeluTanh}) {
    const std::string tag = std::string(" (") + kernels::unary_op_name(op) + ")";
    std::vector<float> y(n), gx(n), gb(cols);
    kernels::bias_gelu_forward<float>(op, rows, cols, x.data(), b.data(), y.data());
    kernels::bias_gelu_backward<float>(op, rows, cols, x.data(), b.data(), gy.data(), gx.data(), gb.data());
    DeviceVec<float> dy(n), dgx(n), dgb(cols), dgx2(n), dgb2(cols);
    kc::bias_gelu_forward<float>(op, rows, cols, dx.p, db.p, dy.p, nullptr);
    kc::bias_gelu_backward<float>(op, rows, cols, dx.p, db.p, dgy.p, dgx.p, dgb.p, nullptr);
    kc::bias_gelu_backward<float>(op, rows, cols, dx.p, db.p, dgy.p, dgx2.p, nullptr, nullptr);
    kc::bias_gelu_backward<float>(op, rows, cols, dx.p, db.p, dgy.p, nullptr, dgb2.p, nullptr);
    for (auto [got, want, what] : {std::tuple{dy.get(), y, "bias_gelu y"}, std::tuple{dgx.get(), gx, "bias_gelu dx"},
                                   std::tuple{dgb.get(), gb, "bias_gelu dbias"},
                                   std::tuple{dgx2.get(), gx, "bias_gelu dx alone"}}) {
      const std::string err = compare(got, want, 1e-5, what + tag);
      if (!err.empty()) return err;
    }
    const auto b1 = dgb.get(), b2 = dgb2.get();
    if (std::memcmp(b1.data(), b2.data(), cols * sizeof(float)) != 0) return "bias_gelu dbias is not deterministic" + tag;
  }
  // The one-block-per-row kernels: the scalar one at 777 columns, the 4-wide one at 768.
  return check_add_layernorm(rows, cols, x, r, w, b);
}

inline std::string check_add_layernorm(int64_t rows, int64_t cols, const std::vector<float>& x,
                                       const std::vector<float>& r, const std::vector<float>& w,
                                       const std::vector<float>& b) {
  const int64_t n = rows * cols;
  DeviceVec<float> dx(x), dr(r), dw(w), db(b);
  std::vector<float> sum(n), y(n), mean(rows), rstd(rows);
  kernels::add_layernorm_forward<float>(rows, cols, x.data(), r.data(), w.data(), b.data(), 1e-5, sum.data(), y.data(),
                                        mean.data(), rstd.data());
  DeviceVec<float> dsum(n), dy(n), dm(rows), drs(rows);
  kc::add_layernorm_forward<float>(rows, cols, dx.p, dr.p, dw.p, db.p, 1e-5, dsum.p, dy.p, dm.p, drs.p, nullptr);
  for (auto [got, want, what, tol] :
       {std::tuple{dsum.get(), sum, "add_layernorm sum", 0.0}, std::tuple{dy.get(), y, "add_layernorm normed", 2e-5},
        std::tuple{dm.get(), mean, "add_layernorm mean", 2e-5}, std::tuple{drs.get(), rstd, "add_layernorm rstd", 2e-5}}) {
    const std::string err = compare(got, want, tol, what);
    if (!err.empty()) return err;
  }
  // bfloat16: both computed in float inside, rounded once (the sum before the layer norm).
  const std::vector<bf16> xh(x.begin(), x.end()), rh(r.begin(), r.end()), wh(w.begin(), w.end()), bh(b.begin(), b.end());
  std::vector<bf16> yh(n), sh(n), nh(n);
  std::vector<float> mh(rows), rsh(rows);
  kernels::bias_gelu_forward<bf16>(kernels::UnaryOp::GeluTanh, rows, cols, xh.data(), bh.data(), yh.data());
  kernels::add_layernorm_forward<bf16>(rows, cols, xh.data(), rh.data(), wh.data(), bh.data(), 1e-5, sh.data(),
                                       nh.data(), mh.data(), rsh.data());
  DeviceVec<bf16> dxh(xh), drh(rh), dwh(wh), dbh(bh), dyh(n), dsh(n), dnh(n);
  DeviceVec<float> dmh(rows), drsh(rows);
  kc::bias_gelu_forward<bf16>(kernels::UnaryOp::GeluTanh, rows, cols, dxh.p, dbh.p, dyh.p, nullptr);
  kc::add_layernorm_forward<bf16>(rows, cols, dxh.p, drh.p, dwh.p, dbh.p, 1e-5, dsh.p, dnh.p, dmh.p, drsh.p, nullptr);
  auto widen = [](const std::vector<bf16>& v) { return std::vector<float>(v.begin(), v.end()); };
  for (auto [got, want, what] : {std::tuple{dyh.get(), yh, "bias_gelu bf16"}, std::tuple{dsh.get(), sh, "add_layernorm sum bf16"},
                                 std::tuple{dnh.get(), nh, "add_layernorm normed bf16"}}) {
    const std::string err = compare(widen(got), widen(want), 1e-2, what);
    if (!err.empty()) return err;
  }
  // The autocast form: bf16 x, float32 stream, bf16 normed: the float32 kernel's bits, normed rounded
  // once (what casting x up and normed down around it gives).
  std::vector<float> xf(xh.begin(), xh.end()), sum_f(n), y_f(n), m_f(rows), rs_f(rows);
  DeviceVec<float> dxf(xf), dsum_f(n), dy_f(n), dm_f(rows), drs_f(rows), dsum_l(n), dm_l(rows), drs_l(rows);
  DeviceVec<bf16> dy_l(n);
  kc::add_layernorm_forward<float>(rows, cols, dxf.p, dr.p, dw.p, db.p, 1e-5, dsum_f.p, dy_f.p, dm_f.p, drs_f.p,
                                   nullptr);
  kc::add_layernorm_forward_lowp<float, bf16>(rows, cols, dxh.p, dr.p, dw.p, db.p, 1e-5, dsum_l.p, dy_l.p, dm_l.p,
                                              drs_l.p, nullptr);
  const std::vector<float> y_f32 = dy_f.get();
  const std::vector<bf16> y_rounded(y_f32.begin(), y_f32.end()), y_lowp = dy_l.get();
  if (dsum_l.get() != dsum_f.get() || dm_l.get() != dm_f.get() || drs_l.get() != drs_f.get() ||
      std::memcmp(y_lowp.data(), y_rounded.data(), n * sizeof(bf16)) != 0)
    return "add_layernorm_forward_lowp differs from the float32 kernel with x cast up and normed cast down";
  // Rows of a multiple of 4: up to 1024 columns in registers, two rows per block (768; 516, a last warp part
  // full), and with HONE_ADD_LAYERNORM_VEC_REGS=0 the 4-wide one-row kernel, whose results it gives (to
  // float rounding).
  // Float32 against the CPU (the sum bit for bit), and the bf16-input form against the CPU's, with and
  // without weight and bias; 9 rows: the last pair has one.
  for (const int64_t vc : {768, 516}) {
    const int64_t vr = 9, vn = vr * vc;
    const std::string cols = " (" + std::to_string(vc) + " columns";
    const auto vx = random_floats(vn, 71), vres = random_floats(vn, 72), vw = random_floats(vc, 73),
               vb = random_floats(vc, 74);
    const std::vector<bf16> vxh(vx.begin(), vx.end());
    DeviceVec<float> dvx(vx), dvr(vres), dvw(vw), dvb(vb);
    DeviceVec<bf16> dvxh(vxh);
    std::vector<float> paths[2][4];  // [registers][normed, mean, rstd, bf16 normed (as float)]
    for (int regs = 0; regs < 2; ++regs) {
      const test::ScopedEnv sw("HONE_ADD_LAYERNORM_VEC_REGS", regs ? nullptr : "0");
      const std::string path = cols + (regs ? ", registers)" : ", one row per block)");
      for (bool affine : {true, false}) {
        DeviceVec<float> dvs(vn), dvy(vn), dvm(vr), dvrs(vr);
        DeviceVec<bf16> dvyh(vn);
        const float* hw = affine ? vw.data() : nullptr;
        const float* hb = affine ? vb.data() : nullptr;
        const float* dw2 = affine ? dvw.p : nullptr;
        const float* db2 = affine ? dvb.p : nullptr;
        std::vector<float> s_cpu(vn), y_cpu(vn), m_cpu(vr), rs_cpu(vr);
        kernels::add_layernorm_forward<float>(vr, vc, vx.data(), vres.data(), hw, hb, 1e-5, s_cpu.data(), y_cpu.data(),
                                              m_cpu.data(), rs_cpu.data());
        const int64_t launched = launches_of("add_layernorm_forward_vec_regs_kernel");
        kc::add_layernorm_forward<float>(vr, vc, dvx.p, dvr.p, dw2, db2, 1e-5, dvs.p, dvy.p, dvm.p, dvrs.p, nullptr);
        if (launched >= 0 && launches_of("add_layernorm_forward_vec_regs_kernel") - launched != regs)
          return "add_layernorm: the register kernel " + std::string(regs ? "did not run" : "ran") + path;
        for (auto [got, want, what, tol] : {std::tuple{dvs.get(), s_cpu, "add_layernorm sum", 0.0},
                                            std::tuple{dvy.get(), y_cpu, "add_layernorm normed", 2e-5},
                                            std::tuple{dvm.get(), m_cpu, "add_layernorm mean", 2e-5},
                                            std::tuple{dvrs.get(), rs_cpu, "add_layernorm rstd", 2e-5}}) {
          const std::string e = compare(got, want, tol, what + path);
          if (!e.empty()) return e;
        }
        std::vector<bf16> yh_cpu(vn);
        kernels::add_layernorm_forward_lowp<float, bf16>(vr, vc, vxh.data(), vres.data(), hw, hb, 1e-5, s_cpu.data(),
                                                         yh_cpu.data(), m_cpu.data(), rs_cpu.data());
        kc::add_layernorm_forward_lowp<float, bf16>(vr, vc, dvxh.p, dvr.p, dw2, db2, 1e-5, dvs.p, dvyh.p, dvm.p, dvrs.p,
                                                    nullptr);
        const std::string e = compare(widened(dvyh.get()), widened(yh_cpu), 1e-2, "add_layernorm_lowp normed" + path);
        if (!e.empty()) return e;
        if (dvs.get() != s_cpu) return "add_layernorm_lowp sum differs from the CPU" + path;
        if (affine) {
          const std::vector<bf16> yh = dvyh.get();
          paths[regs][0] = dvy.get(), paths[regs][1] = dvm.get(), paths[regs][2] = dvrs.get();
          paths[regs][3] = std::vector<float>(yh.begin(), yh.end());
        }
      }
    }
    // To float rounding (the compiler may contract the multiply-adds differently): its bf16 output to one
    // bf16 rounding.
    const char* names[] = {"normed", "mean", "rstd", "bf16 normed"};
    for (int k = 0; k < 4; ++k)
      if (std::string e =
              compare(paths[1][k], paths[0][k], k == 3 ? 8e-3 : 1e-6,
                      std::string("add_layernorm ") + names[k] + ": registers vs one row per block" + cols + ")");
          !e.empty())
        return e;
  }
  return "";
}

// GEMM epilogues (kernels/gemm_epilogue.h) against the plain GEMM on the device followed by the
// epilogue computed on the host in double, on odd shapes (M 1, 7, 33; N 5, 64, 129; K 3, 64, 257),
// every transpose pair, every kind (BiasGeluTanh with an aux ld that is a multiple of 8, one that
// is not, and no aux; DGeluBgrad with both lds), in float32 (TF32 off), bfloat16 and float16; once
// with cuBLASLt's epilogues and once with them switched off (the fallback's own kernels).
// Tolerances are relative to max(1, |want|) for elements and to max(1, sum of |terms|) for the
// bias gradients (sums whose terms cancel). Prints how many calls ran fused.
namespace epi {

template <class T>
std::vector<T> rounded(const std::vector<float>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// "" when |got[i] - want[i]| <= tol * scale[i] for every i (NaN in got fails).
inline std::string compare_scaled(const std::vector<double>& got, const std::vector<double>& want,
                                  const std::vector<double>& scale, double tol, const std::string& what) {
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * scale[i])) {
      std::ostringstream os;
      os << what << ": element " << i << " is " << got[i] << ", expected " << want[i] << " (tol " << tol * scale[i]
         << ")";
      return os.str();
    }
  return "";
}

template <class T>
std::string check_type(const Blas& blas, const char* tname, double tol, int& fused, int& calls) {
  using kernels::EpilogueKind;
  const int64_t Ms[] = {1, 7, 33}, Ns[] = {5, 64, 129}, Ks[] = {3, 64, 257};
  uint64_t seed = 500;
  for (int64_t M : Ms)
    for (int64_t N : Ns)
      for (int64_t K : Ks)
        for (int ta = 0; ta < 2; ++ta)
          for (int tb = 0; tb < 2; ++tb) {
            const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N, aux_ld8 = (N + 7) / 8 * 8;
            const auto A = widened(rounded<T>(random_floats((ta ? K : M) * lda, ++seed)));
            const auto B = widened(rounded<T>(random_floats((tb ? N : K) * ldb, ++seed)));
            const auto bias = widened(rounded<T>(random_floats(N, ++seed)));
            const auto pre = widened(rounded<T>(random_floats(M * aux_ld8, ++seed, -3.f, 3.f)));
            auto to_t = [](const std::vector<double>& v) {
              std::vector<T> out(v.size());
              for (size_t i = 0; i < v.size(); ++i) out[i] = T(float(v[i]));
              return out;
            };
            DeviceVec<T> dA(to_t(A)), dB(to_t(B)), dC(M * ldc), dBias(std::max(M, N)), dAux(M * aux_ld8);
            kc::gemm_strided_batched<T>(blas.ctx, ta, tb, M, N, K, 1.f, dA.p, lda, 0, dB.p, ldb, 0, 0.f, dC.p, ldc, 0,
                                        1, nullptr);
            const auto plain = widened(dC.get());
            auto a_at = [&](int64_t i, int64_t k) { return ta ? A[k * lda + i] : A[i * lda + k]; };
            auto b_at = [&](int64_t k, int64_t j) { return tb ? B[j * ldb + k] : B[k * ldb + j]; };
            struct Variant {
              EpilogueKind kind;
              int64_t aux_ld;  // 0: no aux
            };
            const Variant variants[] = {{EpilogueKind::Bias, 0},
                                        {EpilogueKind::BiasGeluTanh, aux_ld8},
                                        {EpilogueKind::BiasGeluTanh, N},
                                        {EpilogueKind::BiasGeluTanh, 0},
                                        {EpilogueKind::DGeluBgrad, aux_ld8},
                                        {EpilogueKind::DGeluBgrad, N},
                                        {EpilogueKind::DGelu, aux_ld8},
                                        {EpilogueKind::DGelu, N},
                                        {EpilogueKind::BgradA, 0},
                                        {EpilogueKind::BgradB, 0}};
            for (const Variant& v : variants)
              for (bool enabled : {true, false}) {
                const std::string what = std::string("gemm_epilogue ") + tname + " " +
                                         kernels::epilogue_kind_name(v.kind) + " M" + std::to_string(M) + " N" +
                                         std::to_string(N) + " K" + std::to_string(K) + " ta" + std::to_string(ta) +
                                         " tb" + std::to_string(tb) + " aux_ld" + std::to_string(v.aux_ld) +
                                         (enabled ? " (cuBLASLt epilogues on)" : " (fallback)");
                const bool reads_bias = v.kind == EpilogueKind::Bias || v.kind == EpilogueKind::BiasGeluTanh;
                const bool dgelu = v.kind == EpilogueKind::DGeluBgrad || v.kind == EpilogueKind::DGelu;
                const bool sums_c = v.kind == EpilogueKind::DGeluBgrad;  // the column sums of C: its bias output
                // cuBLASLt may evaluate tanh with a hardware approximation (about 2^-11 relative), and for
                // 16-bit outputs its GELU runs in half precision: on an H200 an f16 BiasGeluTanh element came
                // out 5 ulps (4.8e-3) from the exact value. 8 f16 ulps; bf16's tolerance is coarser already.
                const bool gelu = v.kind == EpilogueKind::BiasGeluTanh || dgelu;
                const double tol_v = !gelu ? tol : std::max(tol, std::is_same_v<T, float> ? 1e-3 : 8.0 / 1024);
                // Inputs: the bias (read) or garbage in the gradient slot; the pre-activation for DGeluBgrad,
                // garbage in the aux the forward writes; garbage in C.
                kc::check(cudaMemset(dC.p, 0xFF, dC.n * sizeof(T)), "cudaMemset (test)");
                kc::check(cudaMemset(dBias.p, 0xFF, dBias.n * sizeof(T)), "cudaMemset (test)");
                if (reads_bias)
                  kc::check(cudaMemcpy(dBias.p, to_t(bias).data(), N * sizeof(T), cudaMemcpyHostToDevice),
                            "cudaMemcpy (test)");
                std::vector<double> aux_in(M * std::max<int64_t>(v.aux_ld, 1), 0.0);
                if (dgelu)
                  for (int64_t i = 0; i < M; ++i)
                    for (int64_t j = 0; j < N; ++j) aux_in[i * v.aux_ld + j] = pre[i * aux_ld8 + j];
                if (dgelu) {
                  const auto h = to_t(aux_in);
                  kc::check(cudaMemcpy(dAux.p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice),
                            "cudaMemcpy (test)");
                } else {
                  kc::check(cudaMemset(dAux.p, 0xFF, dAux.n * sizeof(T)), "cudaMemset (test)");
                }
                kc::set_gemm_epilogues(enabled);
                kc::Epilogue<T> ep{v.kind, dBias.p, v.aux_ld ? dAux.p : nullptr, v.aux_ld};
                const bool was_fused = kc::gemm_epilogue<T>(blas.ctx, ta, tb, M, N, K, dA.p, lda, dB.p, ldb, dC.p, ldc,
                                                            ep, nullptr);
                ++calls;
                fused += was_fused;
                if (!enabled && was_fused) return what + ": reported fused with epilogues switched off";
                // The host's expectation from the plain product.
                std::vector<double> want_c(M * N), scale_c(M * N), want_aux, want_bias, scale_bias;
                if (sums_c) want_bias.assign(N, 0.0), scale_bias.assign(N, 0.0);
                if (v.kind == EpilogueKind::BiasGeluTanh && v.aux_ld) want_aux.resize(M * N);
                for (int64_t i = 0; i < M; ++i)
                  for (int64_t j = 0; j < N; ++j) {
                    double c = plain[i * ldc + j];
                    if (reads_bias) c += bias[j];
                    if (v.kind == EpilogueKind::BiasGeluTanh) {
                      if (v.aux_ld) want_aux[i * N + j] = c;
                      c = kernels::ref::unary(kernels::UnaryOp::GeluTanh, c, 0.0);
                    }
                    if (dgelu) c *= kernels::ref::unary_grad(kernels::UnaryOp::GeluTanh, aux_in[i * v.aux_ld + j], 0.0);
                    if (sums_c) {
                      want_bias[j] += c;
                      scale_bias[j] += std::fabs(c);
                    }
                    want_c[i * N + j] = c;
                    scale_c[i * N + j] = std::max(1.0, std::fabs(c));
                  }
                if (v.kind == EpilogueKind::BgradA || v.kind == EpilogueKind::BgradB) {
                  const int64_t n_out = v.kind == EpilogueKind::BgradA ? M : N;
                  want_bias.assign(n_out, 0.0), scale_bias.assign(n_out, 0.0);
                  for (int64_t o = 0; o < n_out; ++o)
                    for (int64_t k = 0; k < K; ++k) {
                      const double x = v.kind == EpilogueKind::BgradA ? a_at(o, k) : b_at(k, o);
                      want_bias[o] += x;
                      scale_bias[o] += std::fabs(x);
                    }
                }
                for (double& sc : scale_bias) sc = std::max(1.0, sc);
                const auto got_c_ld = widened(dC.get());
                std::vector<double> got_c(M * N);
                for (int64_t i = 0; i < M; ++i)
                  for (int64_t j = 0; j < N; ++j) got_c[i * N + j] = got_c_ld[i * ldc + j];
                std::string err = compare_scaled(got_c, want_c, scale_c, tol_v, what + " C");
                if (err.empty() && !want_aux.empty()) {
                  const auto got_aux_ld = widened(dAux.get());
                  std::vector<double> got_aux(M * N), scale_aux(M * N);
                  for (int64_t i = 0; i < M; ++i)
                    for (int64_t j = 0; j < N; ++j) {
                      got_aux[i * N + j] = got_aux_ld[i * v.aux_ld + j];
                      scale_aux[i * N + j] = std::max(1.0, std::fabs(want_aux[i * N + j]));
                    }
                  err = compare_scaled(got_aux, want_aux, scale_aux, tol_v, what + " aux");
                }
                if (err.empty() && !want_bias.empty()) {
                  auto got_bias = widened(dBias.get());
                  got_bias.resize(want_bias.size());
                  err = compare_scaled(got_bias, want_bias, scale_bias, tol_v, what + " bias gradient");
                }
                if (!err.empty()) return err;
              }
          }
  return "";
}

}  // namespace epi

inline std::string check_gemm_epilogue() {
  Blas blas;
  const bool tf32 = kc::tf32_enabled(), epilogues = kc::gemm_epilogues_enabled();
  kc::set_tf32(false);
  int fused = 0, calls = 0;
  std::string err;
  try {
    err = epi::check_type<float>(blas, "f32", 1e-4, fused, calls);
    if (err.empty()) err = epi::check_type<bf16>(blas, "bf16", 2e-2, fused, calls);
    if (err.empty()) err = epi::check_type<f16>(blas, "f16", 4e-3, fused, calls);
  } catch (...) {
    kc::set_tf32(tf32);
    kc::set_gemm_epilogues(epilogues);
    throw;
  }
  kc::set_tf32(tf32);
  kc::set_gemm_epilogues(epilogues);
  std::printf("[gemm_epilogue] %d of %d calls fused (half of them ran with epilogues off); %zu configurations "
              "without a cuBLASLt algorithm\n",
              fused, calls, kc::gemm_epilogue_fallback_count());
  return err;
}

// upload_async through its page-locked ring: 400 uploads of 1 byte to ~200 KB (40 MB in all, so the
// 16 MB ring wraps and reuses regions) and one of 5 MB (past the ring's limit: a direct copy), each
// from a host buffer freed right after the call, to overlapping places in one device buffer. The
// device must end up as a host mirror that took the same writes in the same order.
inline std::string check_upload() {
  const size_t kBuffer = size_t(8) << 20;
  DeviceVec<uint8_t> dev(kBuffer);
  std::vector<uint8_t> mirror(kBuffer, 0);
  cudaStream_t stream = nullptr;
  kc::check(cudaStreamCreate(&stream), "cudaStreamCreate (test)");
  auto write = [&](size_t i, size_t bytes) {
    const size_t offset = (i * 40993) % (kBuffer - bytes + 1);
    std::vector<uint8_t> host(bytes);
    for (size_t b = 0; b < bytes; ++b) host[b] = uint8_t(i * 131 + b * 7 + (b >> 9));
    kc::upload_async(dev.p + offset, host.data(), bytes, stream);
    std::copy(host.begin(), host.end(), mirror.begin() + offset);
  };
  for (size_t i = 0; i < 400; ++i) write(i, (i * 7919) % 200000 + 1);
  write(400, size_t(5) << 20);
  for (size_t i = 401; i < 420; ++i) write(i, (i * 7919) % 200000 + 1);
  kc::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (test)");
  cudaStreamDestroy(stream);
  const std::vector<uint8_t> got = dev.get();
  for (size_t b = 0; b < kBuffer; ++b)
    if (got[b] != mirror[b])
      return "upload_async: byte " + std::to_string(b) + " is " + std::to_string(got[b]) + ", expected " +
             std::to_string(mirror[b]);
  return "";
}

inline std::vector<std::pair<std::string, std::function<std::string()>>> all_checks() {
  return {{"gemm", check_gemm},
          {"dropout", check_dropout},
          {"adamw_and_norm", check_adamw_and_norm},
          {"elementwise", check_elementwise},
          {"rows", check_rows},
          {"layernorm_backward_vec", check_layernorm_backward_vec},
          {"attention_and_embedding", check_attention_and_embedding},
          {"fused", check_fused},
          {"gemm_epilogue", check_gemm_epilogue},
          {"gemm_f32_out", check_gemm_f32_out},
          {"column_sums", check_column_sums},
          {"gemm_split", check_gemm_split},
          {"gemm_autotune", check_gemm_autotune},
          {"upload", check_upload}};
}

}  // namespace hone::cudacheck
#endif  // HONE_WITH_CUDA
