// hone sgemm vs OpenBLAS cblas_sgemm on 2048^3 and on the matrix products of GPT-2 124M
// training (forward, data-gradient and weight-gradient layouts of every linear layer).
//
// Run with OPENBLAS_CORETYPE=SkylakeX (Debian's OpenBLAS misdetects this CPU otherwise) and
// OMP_NUM_THREADS=2; both libraries are also pinned to 2 threads here.
// The "GFLOPS" counter is 2*M*N*K per second.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"

#if defined(HONE_HAVE_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

namespace {

constexpr int kThreads = 2;

struct Shape {
  std::string name;
  bool ta, tb;
  int64_t M, N, K;
};

// GPT-2 124M linears as (in, out): qkv 768->2304, proj 768->768, fc 768->3072,
// fc_proj 3072->768, lm_head 768->50257. With T tokens (M = 256 or 1024):
//   forward      Y[T,out]  = X[T,in] . W^T          (W stored [out,in]: trans_b)
//   data grad    dX[T,in]  = dY[T,out] . W          (NN, K = out)
//   weight grad  dW[out,in] = dY^T . X              (dY stored [T,out]: trans_a, K = T)
std::vector<Shape> shapes() {
  std::vector<Shape> s = {{"square2048_NN", false, false, 2048, 2048, 2048}};
  const struct { const char* name; int64_t in, out; } linears[] = {
      {"qkv", 768, 2304}, {"proj", 768, 768}, {"fc", 768, 3072},
      {"fcproj", 3072, 768}, {"lmhead", 768, 50257}};
  for (int64_t T : {256, 1024}) {
    for (const auto& l : linears) {
      const std::string base = std::string(l.name) + "_T" + std::to_string(T);
      s.push_back({base + "_fwd_NT", false, true, T, l.out, l.in});
      s.push_back({base + "_dX_NN", false, false, T, l.in, l.out});
      s.push_back({base + "_dW_TN", true, false, l.out, l.in, T});
    }
  }
  return s;
}

struct Buffers {
  std::vector<float> A, B, C;
  explicit Buffers(const Shape& s)
      : A(size_t(s.M * s.K)), B(size_t(s.K * s.N)), C(size_t(s.M * s.N)) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (auto& x : A) x = d(rng);
    for (auto& x : B) x = d(rng);
  }
  int64_t lda(const Shape& s) const { return s.ta ? s.M : s.K; }
  int64_t ldb(const Shape& s) const { return s.tb ? s.K : s.N; }
};

void set_counters(benchmark::State& state, const Shape& s) {
  const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_hone(benchmark::State& state, Shape s) {
  omp_set_num_threads(kThreads);
  Buffers b(s);
  for (auto _ : state) {
    hone::kernels::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.f, b.A.data(), b.lda(s), b.B.data(),
                         b.ldb(s), 0.f, b.C.data(), s.N);
    benchmark::DoNotOptimize(b.C.data());
  }
  set_counters(state, s);
  state.SetLabel(hone::kernels::sgemm_backend());
}

#if defined(HONE_HAVE_OPENBLAS)
void bm_openblas(benchmark::State& state, Shape s) {
  openblas_set_num_threads(kThreads);
  Buffers b(s);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                int(s.M), int(s.N), int(s.K), 1.f, b.A.data(), int(b.lda(s)), b.B.data(),
                int(b.ldb(s)), 0.f, b.C.data(), int(s.N));
    benchmark::DoNotOptimize(b.C.data());
  }
  set_counters(state, s);
}
#endif

// All hone cases first, then all OpenBLAS cases: an idle OpenBLAS worker busy-waits for a
// while after each call and would steal a core from whatever runs next in this process, so
// alternating the two libraries makes hone look several times slower on the small shapes. For
// the table in bench/RESULTS.md each library runs in its own process (--benchmark_filter).
const bool registered = [] {
  for (const Shape& s : shapes())
    benchmark::RegisterBenchmark(("hone/" + s.name).c_str(), bm_hone, s)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3)
        ->UseRealTime();
#if defined(HONE_HAVE_OPENBLAS)
  for (const Shape& s : shapes())
    benchmark::RegisterBenchmark(("openblas/" + s.name).c_str(), bm_openblas, s)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3)
        ->UseRealTime();
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
