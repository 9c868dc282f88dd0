// CPU flash-style attention at GPT-2 124M training shapes: B=4, H=12, D=64, T=256 and 1024,
// causal, forward and backward; plus dropout (GPT-2's attn_pdrop = 0.1) and a non-causal
// (BERT-style) case to show what those cost.
//
// Run with OMP_NUM_THREADS=2 (pinned to 2 threads here too).
// The "GFLOPS" counter counts the matrix products only: 4*B*H*Tq*Tk*D for forward (q k^T and
// p v), 2.5x that for backward (q k^T recomputed, dO v^T, dS k, dS^T q, P^T dO), halved for
// causal.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"

namespace {

constexpr int kThreads = 2;

struct Case {
  int64_t B, H, T, D;
  bool causal;
  float dropout;
  std::string name() const {
    std::string n;
    for (auto [tag, x] : {std::pair{"B", B}, {"_H", H}, {"_T", T}, {"_D", D}})
      n.append(tag).append(std::to_string(x));
    if (causal) n += "_causal";
    if (dropout > 0.f) n += "_drop";
    return n;
  }
};

struct Buffers {
  hone::kernels::AttentionShape s;
  hone::kernels::AttentionOptions o;
  std::vector<float> q, k, v, out, lse, dout, dq, dk, dv;
  explicit Buffers(const Case& c) : s{c.B, c.H, c.T, c.T, c.D} {
    o.scale = 1.f / std::sqrt(float(c.D));
    o.causal = c.causal;
    o.dropout_p = c.dropout;
    o.seed = 1234;
    const size_t n = size_t(c.B * c.H * c.T * c.D);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (auto* x : {&q, &k, &v, &dout}) {
      x->resize(n);
      for (auto& e : *x) e = d(rng);
    }
    out.resize(n);
    dq.resize(n);
    dk.resize(n);
    dv.resize(n);
    lse.resize(size_t(c.B * c.H * c.T));
  }
  void forward() {
    hone::kernels::attention_forward<float>(s, o, q.data(), k.data(), v.data(), out.data(),
                                            lse.data());
  }
  void backward() {
    hone::kernels::attention_backward<float>(s, o, q.data(), k.data(), v.data(), out.data(),
                                             lse.data(), dout.data(), dq.data(), dk.data(),
                                             dv.data());
  }
};

double forward_flops(const Case& c) {
  return 4.0 * double(c.B * c.H) * double(c.T) * double(c.T) * double(c.D) * (c.causal ? 0.5 : 1.0);
}

void bm_forward(benchmark::State& state, Case c) {
  omp_set_num_threads(kThreads);
  Buffers b(c);
  for (auto _ : state) {
    b.forward();
    benchmark::DoNotOptimize(b.out.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(forward_flops(c) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void bm_backward(benchmark::State& state, Case c) {
  omp_set_num_threads(kThreads);
  Buffers b(c);
  b.forward();
  for (auto _ : state) {
    b.backward();
    benchmark::DoNotOptimize(b.dq.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(2.5 * forward_flops(c) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  const Case cases[] = {{4, 12, 256, 64, true, 0.f},  {4, 12, 1024, 64, true, 0.f},
                        {4, 12, 1024, 64, true, 0.1f}, {4, 12, 256, 64, false, 0.f}};
  for (const Case& c : cases) {
    benchmark::RegisterBenchmark(("attention_fwd/" + c.name()).c_str(), bm_forward, c)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("attention_bwd/" + c.name()).c_str(), bm_backward, c)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.3)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
