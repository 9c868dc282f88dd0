// CPU flash-style attention at GPT-2 124M training shapes: B=4, H=12, D=64, T=256 and 1024,
// causal, forward and backward; plus dropout (GPT-2's attn_pdrop = 0.1) and a non-causal
// (BERT-style) case to show what those cost.
//
// CUDA (registered only when a device is present): cuDNN's fused SDPA in bf16 against our own
// CUDA kernel (float32, on the same values) at GPT-2 124M's training shape B=16, H=12, T=1024,
// D=64, causal; forward, and forward + backward; timed with CUDA events (cuDNN's graphs are built
// in the warm-up call, outside the timing).
//
// Run with OMP_NUM_THREADS=2 (pinned to 2 threads here too).
// The "GFLOPS" counter counts the matrix products only: 4*B*H*Tq*Tk*D for forward (q k^T and
// p v), 2.5x that for backward (q k^T recomputed, dO v^T, dS k, dS^T q, P^T dO), halved for
// causal.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"

#if defined(HONE_WITH_CUDA)
#include <cuda_runtime_api.h>

#include "bench/kernels/cuda_timing.h"
#include "kernels/cuda_api.h"
#include "kernels/half.h"
#include "kernels/runtime.h"
#endif

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

#if defined(HONE_WITH_CUDA)
namespace kc = hone::kernels::cuda;

// Device buffers of one case: bf16 for cuDNN, float32 (same values) for our kernel.
struct GpuBuffers {
  hone::kernels::AttentionShape s;
  hone::kernels::AttentionOptions o;
  std::vector<void*> owned;
  hone::bf16 *q, *k, *v, *out, *dout, *dq, *dk, *dv;
  float *qf, *kf, *vf, *outf, *doutf, *dqf, *dkf, *dvf, *lse, *stats;
  template <class T> T* alloc(size_t n) {
    void* p = nullptr;
    kc::check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc (bench)");
    owned.push_back(p);
    return static_cast<T*>(p);
  }
  explicit GpuBuffers(const Case& c) : s{c.B, c.H, c.T, c.T, c.D} {
    o.scale = 1.f / std::sqrt(float(c.D));
    o.causal = c.causal;
    const size_t n = size_t(c.B * c.H * c.T * c.D), rows = size_t(c.B * c.H * c.T);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    for (auto [h, f] : {std::pair{&q, &qf}, {&k, &kf}, {&v, &vf}, {&dout, &doutf}}) {
      std::vector<hone::bf16> x(n);
      for (auto& e : x) e = hone::bf16(d(rng));
      const std::vector<float> xf(x.begin(), x.end());
      *h = alloc<hone::bf16>(n);
      *f = alloc<float>(n);
      kc::check(cudaMemcpy(*h, x.data(), n * sizeof(hone::bf16), cudaMemcpyHostToDevice), "cudaMemcpy (bench)");
      kc::check(cudaMemcpy(*f, xf.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy (bench)");
    }
    for (auto* h : {&out, &dq, &dk, &dv}) *h = alloc<hone::bf16>(n);
    for (auto* f : {&outf, &dqf, &dkf, &dvf}) *f = alloc<float>(n);
    lse = alloc<float>(rows);
    stats = alloc<float>(rows);
  }
  ~GpuBuffers() {
    for (void* p : owned) cudaFree(p);
  }
  GpuBuffers(const GpuBuffers&) = delete;
  GpuBuffers& operator=(const GpuBuffers&) = delete;
  // One forward (and backward) of cuDNN or of our kernel; "" or why cuDNN declined.
  std::string run(bool cudnn, bool backward) {
    if (!cudnn) {
      kc::attention_forward<float>(s, o, qf, kf, vf, outf, lse, nullptr);
      if (backward) kc::attention_backward<float>(s, o, qf, kf, vf, outf, lse, doutf, dqf, dkf, dvf, nullptr);
      return "";
    }
    kc::CudnnSdpaArgs a;
    a.shape = s;
    a.scale = o.scale;
    a.causal = o.causal;
    a.training = backward;
    const kc::CudnnSdpaStatus st = kc::cudnn_sdpa_forward<hone::bf16>(kc::ConvContext{}, a, q, k, v, out, stats, nullptr);
    if (!st.ran) return st.why_not;
    if (backward) return kc::cudnn_sdpa_backward<hone::bf16>(kc::ConvContext{}, a, q, k, v, out, stats, dout, dq, dk, dv,
                                                              nullptr);
    return "";
  }
};

void bm_cuda(benchmark::State& state, Case c, bool cudnn, bool backward) {
  // One set of buffers per shape for every run (Google Benchmark calls this function several times
  // per case, and four cases share the shape): filling 650 MB from the host costs more than a run.
  static auto* buffers = new std::map<std::string, std::unique_ptr<GpuBuffers>>();  // never freed
  auto& slot = (*buffers)[c.name()];
  if (!slot) slot = std::make_unique<GpuBuffers>(c);
  GpuBuffers& b = *slot;
  if (const std::string why = b.run(cudnn, backward); !why.empty()) {  // warm-up: builds cuDNN's graphs
    state.SkipWithError(("cuDNN declined: " + why).c_str());
    return;
  }
  kc::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (bench)");
  hone::bench::time_with_cuda_events(state, [&] { b.run(cudnn, backward); });
  state.counters["TFLOPS"] = benchmark::Counter(forward_flops(c) * (backward ? 3.5 : 1.0) * 1e-12,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
#endif

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
#if defined(HONE_WITH_CUDA)
  if (hone::kernels::cuda_device_present()) {
    const Case gpt2{16, 12, 1024, 64, true, 0.f};
    for (bool backward : {false, true})
      for (bool cudnn : {true, false}) {
        const std::string name = std::string("attention_cuda_") + (backward ? "fwdbwd/" : "fwd/") +
                                 (cudnn ? "cudnn_bf16/" : "own_f32/") + gpt2.name();
        benchmark::RegisterBenchmark(name.c_str(), bm_cuda, gpt2, cudnn, backward)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime();
      }
  }
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
