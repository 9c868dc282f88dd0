// Fused kernels (kernels/fused.h) against the plain kernels they replace, at GPT-2 124M training
// shapes: rows = 8 x 1024 tokens, width 768 (the residual stream) and 3072 (the MLP's hidden layer).
//
//   bias_gelu_fwd   fused: bias_gelu_forward           composed: binary add (bias broadcast), gelu
//   bias_gelu_bwd   fused: bias_gelu_backward          composed: gelu backward on the saved x + bias,
//                                                                then the bias gradient's column sums
//   add_ln_fwd      fused: add_layernorm_forward       composed: binary add, layernorm_forward
// (add + layer norm has no fused backward: both paths run layernorm_backward.) gelu is the tanh form
// (GPT-2's "gelu_new").
//
// bytes_per_second counts the traffic neither path can avoid (each input read once, each output
// written once: 2, 3 and 4 arrays of rows x width), the same for fused and composed, so the ratio of
// the two is the speed-up. CPU: float32 on 2 threads (OMP_NUM_THREADS=2). CUDA: float32 and
// bfloat16, timed with CUDA events, registered only when a device is present.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/fused.h"
#include "kernels/layernorm.h"
#include "kernels/reduce.h"
#include "kernels/runtime.h"

#if defined(HONE_WITH_CUDA)
#include <cuda_runtime_api.h>

#include "bench/kernels/cuda_timing.h"
#include "kernels/cuda_api.h"
#endif

namespace {

namespace hk = hone::kernels;
using hone::acc_t;
using hk::UnaryOp;

constexpr int kThreads = 2;
constexpr int64_t kRows = 8 * 1024;
constexpr UnaryOp kGelu = UnaryOp::GeluTanh;

enum class Op { BiasGeluFwd, BiasGeluBwd, AddLnFwd };

struct Case {
  Op op;
  bool fused;
  int64_t cols;
  std::string name(const char* device, const char* dtype) const {
    const char* op_name = op == Op::BiasGeluFwd ? "bias_gelu_fwd" : op == Op::BiasGeluBwd ? "bias_gelu_bwd" : "add_ln_fwd";
    return std::string(device) + "/" + op_name + "/" + dtype + "/" + std::to_string(kRows) + "x" +
           std::to_string(cols) + (fused ? "/fused" : "/composed");
  }
  // Arrays of rows x cols that the op must read or write once.
  int64_t arrays() const { return op == Op::BiasGeluFwd ? 2 : op == Op::BiasGeluBwd ? 3 : 4; }
};

// The operands of every case (host or device pointers). z is the composed forward's saved x + bias
// (or the sum), which the composed backward reads.
template <class T>
struct Operands {
  T *x, *r, *bias, *w, *gy, *z, *y, *gx, *gb;
  acc_t<T>*mean, *rstd;
};

// The plain kernels' functions on one device, so one body serves the CPU and CUDA.
struct CpuKernels {
  template <class T> static void bias_gelu_fwd(int64_t rows, int64_t cols, const Operands<T>& o) {
    hk::bias_gelu_forward<T>(kGelu, rows, cols, o.x, o.bias, o.y);
  }
  template <class T> static void bias_gelu_bwd(int64_t rows, int64_t cols, const Operands<T>& o) {
    hk::bias_gelu_backward<T>(kGelu, rows, cols, o.x, o.bias, o.gy, o.gx, o.gb);
  }
  template <class T> static void add_ln_fwd(int64_t rows, int64_t cols, const Operands<T>& o) {
    hk::add_layernorm_forward<T>(rows, cols, o.x, o.r, o.w, o.bias, 1e-5, o.z, o.y, o.mean, o.rstd);
  }
  template <class T>
  static void add(int64_t rows, int64_t cols, const T* a, const T* b, bool broadcast, T* out) {
    const int64_t shape[2] = {rows, cols}, sa[2] = {cols, 1}, sb[2] = {broadcast ? 0 : cols, 1};
    hk::binary_forward<T>(hk::BinaryOp::Add, 2, shape, a, sa, b, sb, out);
  }
  template <class T> static void gelu(int64_t n, const T* z, T* y) { hk::unary_forward<T>(kGelu, n, z, y, 0.0); }
  template <class T> static void gelu_grad(int64_t n, const T* z, const T* gy, T* gz) {
    hk::unary_backward<T>(kGelu, n, z, nullptr, gy, gz, 0.0);
  }
  template <class T> static void column_sums(int64_t rows, int64_t cols, const T* g, T* out) {
    hk::reduce_middle<T>(hk::ReduceOp::Sum, 1, rows, cols, g, out);
  }
  template <class T> static void layernorm(int64_t rows, int64_t cols, const Operands<T>& o) {
    hk::layernorm_forward<T>(rows, cols, o.z, o.w, o.bias, 1e-5, o.y, o.mean, o.rstd);
  }
};

#if defined(HONE_WITH_CUDA)
namespace kc = hk::cuda;
struct CudaKernels {
  template <class T> static void bias_gelu_fwd(int64_t rows, int64_t cols, const Operands<T>& o) {
    kc::bias_gelu_forward<T>(kGelu, rows, cols, o.x, o.bias, o.y, nullptr);
  }
  template <class T> static void bias_gelu_bwd(int64_t rows, int64_t cols, const Operands<T>& o) {
    kc::bias_gelu_backward<T>(kGelu, rows, cols, o.x, o.bias, o.gy, o.gx, o.gb, nullptr);
  }
  template <class T> static void add_ln_fwd(int64_t rows, int64_t cols, const Operands<T>& o) {
    kc::add_layernorm_forward<T>(rows, cols, o.x, o.r, o.w, o.bias, 1e-5, o.z, o.y, o.mean, o.rstd, nullptr);
  }
  template <class T>
  static void add(int64_t rows, int64_t cols, const T* a, const T* b, bool broadcast, T* out) {
    const int64_t shape[2] = {rows, cols}, sa[2] = {cols, 1}, sb[2] = {broadcast ? 0 : cols, 1};
    kc::binary_forward<T>(hk::BinaryOp::Add, 2, shape, a, sa, b, sb, out, nullptr);
  }
  template <class T> static void gelu(int64_t n, const T* z, T* y) { kc::unary_forward<T>(kGelu, n, z, y, 0.0, nullptr); }
  template <class T> static void gelu_grad(int64_t n, const T* z, const T* gy, T* gz) {
    kc::unary_backward<T>(kGelu, n, z, nullptr, gy, gz, 0.0, nullptr);
  }
  template <class T> static void column_sums(int64_t rows, int64_t cols, const T* g, T* out) {
    kc::reduce_middle<T>(hk::ReduceOp::Sum, 1, rows, cols, g, out, nullptr);
  }
  template <class T> static void layernorm(int64_t rows, int64_t cols, const Operands<T>& o) {
    kc::layernorm_forward<T>(rows, cols, o.z, o.w, o.bias, 1e-5, o.y, o.mean, o.rstd, nullptr);
  }
};
#endif

// One run of the case: the fused kernel or the composition it replaces.
template <class K, class T> void run(const Case& c, const Operands<T>& o) {
  const int64_t rows = kRows, cols = c.cols, n = rows * cols;
  switch (c.op) {
    case Op::BiasGeluFwd:
      if (c.fused) return K::bias_gelu_fwd(rows, cols, o);
      K::add(rows, cols, o.x, o.bias, true, o.z);
      return K::gelu(n, o.z, o.y);
    case Op::BiasGeluBwd:
      if (c.fused) return K::bias_gelu_bwd(rows, cols, o);
      K::gelu_grad(n, o.z, o.gy, o.gx);
      return K::column_sums(rows, cols, o.gx, o.gb);
    case Op::AddLnFwd:
      if (c.fused) return K::add_ln_fwd(rows, cols, o);
      K::add(rows, cols, o.x, o.r, false, o.z);
      return K::layernorm(rows, cols, o);
  }
}

// Host arrays of a case, filled with values in [-2, 2) (weights near 1).
template <class T>
struct HostArrays {
  std::vector<T> x, r, bias, w, gy, z, y, gx, gb;
  std::vector<acc_t<T>> mean, rstd;
  explicit HostArrays(int64_t cols) {
    const size_t n = size_t(kRows * cols);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    for (auto* v : {&x, &r, &gy, &z, &y, &gx}) {
      v->resize(n);
      for (T& e : *v) e = T(u(rng));
    }
    for (auto* v : {&bias, &w, &gb}) {
      v->resize(size_t(cols));
      for (T& e : *v) e = T(1.f + 0.25f * u(rng));
    }
    mean.resize(kRows);
    rstd.resize(kRows);
  }
  Operands<T> operands() {
    return {x.data(), r.data(), bias.data(), w.data(), gy.data(), z.data(), y.data(), gx.data(), gb.data(),
            mean.data(), rstd.data()};
  }
};

void bm_cpu(benchmark::State& state, Case c) {
  omp_set_num_threads(kThreads);
  HostArrays<float> h(c.cols);
  const Operands<float> o = h.operands();
  CpuKernels::add(kRows, c.cols, o.x, o.bias, true, o.z);  // what the composed forward saved
  for (auto _ : state) {
    run<CpuKernels>(c, o);
    benchmark::DoNotOptimize(h.y.data());
    benchmark::DoNotOptimize(h.gx.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * c.arrays() * kRows * c.cols * int64_t(sizeof(float)));
}

#if defined(HONE_WITH_CUDA)
// Device copies of the host arrays, freed on scope exit.
template <class T>
struct DeviceArrays {
  std::vector<void*> owned;
  Operands<T> o{};
  explicit DeviceArrays(HostArrays<T>& h) {
    auto up = [&](auto& v) {
      using E = typename std::decay_t<decltype(v)>::value_type;
      void* p = nullptr;
      kc::check(cudaMalloc(&p, v.size() * sizeof(E)), "cudaMalloc (bench)");
      kc::check(cudaMemcpy(p, v.data(), v.size() * sizeof(E), cudaMemcpyHostToDevice), "cudaMemcpy (bench)");
      owned.push_back(p);
      return static_cast<E*>(p);
    };
    o = {up(h.x), up(h.r), up(h.bias), up(h.w), up(h.gy), up(h.z), up(h.y), up(h.gx), up(h.gb), up(h.mean), up(h.rstd)};
  }
  ~DeviceArrays() {
    for (void* p : owned) cudaFree(p);
  }
};

template <class T> void bm_cuda(benchmark::State& state, Case c) {
  HostArrays<T> h(c.cols);
  DeviceArrays<T> d(h);
  CudaKernels::add(kRows, c.cols, d.o.x, d.o.bias, true, d.o.z);
  run<CudaKernels>(c, d.o);  // warm-up (and the stream-ordered allocator's first pool)
  hone::bench::time_with_cuda_events(state, [&] { run<CudaKernels>(c, d.o); });
  state.SetBytesProcessed(state.iterations() * c.arrays() * kRows * c.cols * int64_t(sizeof(T)));
}
#endif

const bool registered = [] {
  std::vector<Case> cases;
  for (Op op : {Op::BiasGeluFwd, Op::BiasGeluBwd, Op::AddLnFwd})
    for (int64_t cols : {768, 3072})
      for (bool fused : {true, false}) cases.push_back({op, fused, cols});
  for (const Case& c : cases)
    benchmark::RegisterBenchmark(c.name("cpu", "f32").c_str(), bm_cpu, c)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5)
        ->UseRealTime();
#if defined(HONE_WITH_CUDA)
  if (hk::cuda_device_present())
    for (const Case& c : cases) {
      benchmark::RegisterBenchmark(c.name("cuda", "f32").c_str(), bm_cuda<float>, c)
          ->Unit(benchmark::kMicrosecond)
          ->UseManualTime();
      benchmark::RegisterBenchmark(c.name("cuda", "bf16").c_str(), bm_cuda<hone::bf16>, c)
          ->Unit(benchmark::kMicrosecond)
          ->UseManualTime();
    }
#endif
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
