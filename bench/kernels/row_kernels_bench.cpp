// The row kernels of a GPT-2 124M bf16 training step on CUDA, each path at the step's own shapes
// (B=16, T=1024: 16384 rows), with the traffic it cannot avoid as bytes_per_second, so that the
// fraction of the card's memory bandwidth each reaches is read off directly:
//
//   add_ln_fwd  add_layernorm_forward_lowp (bf16 x + float32 residual -> float32 sum, bf16 normed),
//               768 columns: 16-byte units, two rows per block in registers / one block per row
//               (HONE_ADD_LAYERNORM_VEC_REGS=0); 12 bytes per element.
//   ln_bwd      layernorm_backward_lowp_gy (float32 x, bf16 gy, float32 gx accumulated, its bf16
//               copy, dweight/dbias): two rows per block in registers, 16-byte units / the fused
//               kernel, partials in shared memory (HONE_LAYERNORM_BACKWARD_VEC=0); 16 bytes per element.
//   ce_fwd      cross_entropy_forward over the 50257-token head (bf16 logits, rows padded to 50264):
//               loss only (2 bytes per element) / loss and the gradient (4).
//   ce_bwd      cross_entropy_backward from the saved logits (4 bytes per element) / the backward
//               of a forward that formed the gradient: scaling by 0.5 in place (4) or 1 (nothing).
//   bias_grad   strided_sum's column sums of a bf16 [16384, N] gradient into float32 (the bias
//               gradients of c_attn, c_fc and both c_proj: N = 2304, 3072, 768), what runs after
//               the plain weight-gradient GEMM with HONE_GEMM_BGRAD_EPILOGUE=0; 2 bytes per element.
//
// CUDA only: registered when a device is present (tools/device-check.sh runs it). Timed with CUDA
// events.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/runtime.h"

#if defined(HONE_WITH_CUDA)
#include <cuda_runtime_api.h>

#include "bench/kernels/cuda_timing.h"
#include "bench/kernels/device_array.h"
#include "kernels/cuda_api.h"
#include "kernels/fused.h"
#include "tests/scoped_env.h"
#endif

namespace {

#if defined(HONE_WITH_CUDA)
namespace hk = hone::kernels;
namespace kc = hone::kernels::cuda;
using hone::bf16;

constexpr int64_t kRows = 16 * 1024, kCols = 768, kVocab = 50257, kVocabPadded = 50264;

using hone::bench::DeviceArray;
using hone::bench::Fill;
using hone::test::ScopedEnv;

// The kernels read their switches per call: "0" turns the path off for the benchmark's scope.
const char* off_unless(bool on) { return on ? nullptr : "0"; }

void finish(benchmark::State& state, double bytes_per_call) {
  state.SetBytesProcessed(int64_t(double(state.iterations()) * bytes_per_call));
}

void bm_add_ln_fwd(benchmark::State& state, bool regs) {
  const ScopedEnv sw("HONE_ADD_LAYERNORM_VEC_REGS", off_unless(regs));
  const int64_t n = kRows * kCols;
  DeviceArray<bf16> x(n, Fill{}), y(n);
  DeviceArray<float> res(n, Fill{}), sum(n), w(kCols, Fill{0.5f, 1.5f}), b(kCols, Fill{}), mean(kRows), rstd(kRows);
  const auto run = [&] {
    kc::add_layernorm_forward_lowp<float, bf16>(kRows, kCols, x.p, res.p, w.p, b.p, 1e-5, sum.p, y.p, mean.p, rstd.p,
                                                nullptr);
  };
  run();
  hone::bench::time_with_cuda_events(state, run);
  finish(state, 12.0 * double(n));
}

void bm_ln_bwd(benchmark::State& state, bool vec) {
  const ScopedEnv sw("HONE_LAYERNORM_BACKWARD_VEC", off_unless(vec));
  const int64_t n = kRows * kCols;
  DeviceArray<float> x(n, Fill{}), w(kCols, Fill{0.5f, 1.5f}), mean(kRows, Fill{-0.1f, 0.1f}),
      rstd(kRows, Fill{0.5f, 2.f}), gx(n, Fill{}), gw(kCols), gb(kCols);
  DeviceArray<bf16> gy(n, Fill{}), gx_lowp(n);
  const auto run = [&] {
    kc::layernorm_backward_lowp_gy<float, bf16>(kRows, kCols, x.p, w.p, mean.p, rstd.p, gy.p, gx.p, gw.p, gb.p, nullptr,
                                                /*accumulate_gx=*/true, gx_lowp.p);
  };
  run();
  hone::bench::time_with_cuda_events(state, run);
  finish(state, 16.0 * double(n));
}

struct CrossEntropyOperands {
  hk::CrossEntropyArgs args{kRows, kVocab, -100, 0.0, kVocabPadded};
  DeviceArray<bf16> logits{kRows * kVocabPadded, Fill{-4.f, 4.f, 3 * kVocabPadded + 5}};
  DeviceArray<bf16> grad{kRows * kVocabPadded};
  DeviceArray<float> lse{kRows}, loss{1}, upstream{1};
  DeviceArray<int64_t> count{1};
  int32_t* targets = nullptr;
  CrossEntropyOperands() {
    std::vector<int32_t> t(kRows);
    for (int64_t r = 0; r < kRows; ++r) t[size_t(r)] = int32_t((r * 7919) % kVocab);
    kc::check(cudaMalloc(reinterpret_cast<void**>(&targets), t.size() * sizeof(int32_t)),
              "cudaMalloc (row_kernels_bench)");
    kc::check(cudaMemcpy(targets, t.data(), t.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ~CrossEntropyOperands() { cudaFree(targets); }
  void set_upstream(float g) { kc::check(cudaMemcpy(upstream.p, &g, sizeof g, cudaMemcpyHostToDevice), "cudaMemcpy"); }
  void forward(bool with_grad) {
    kc::cross_entropy_forward<bf16, int32_t>(args, logits.p, targets, lse.p, loss.p, count.p, nullptr, nullptr,
                                             with_grad ? grad.p : nullptr);
  }
};

void bm_ce_fwd(benchmark::State& state, bool with_grad) {
  CrossEntropyOperands o;
  o.forward(with_grad);
  hone::bench::time_with_cuda_events(state, [&] { o.forward(with_grad); });
  finish(state, (with_grad ? 4.0 : 2.0) * double(kRows * kVocab));
}

// kind 0: the backward from the saved logits; 1: scaling the forward's gradient by 0.5; 2: by 1.
void bm_ce_bwd(benchmark::State& state, int kind) {
  CrossEntropyOperands o;
  o.forward(kind != 0);
  o.set_upstream(kind == 1 ? 0.5f : 1.f);
  const auto run = [&] {
    if (kind == 0)
      kc::cross_entropy_backward<bf16, int32_t>(o.args, o.logits.p, o.targets, o.lse.p, o.upstream.p, o.count.p,
                                                o.grad.p, nullptr);
    else
      kc::cross_entropy_scale_grad<bf16, int32_t>(o.args, o.targets, o.upstream.p, 1.f, o.grad.p, o.grad.p, nullptr);
  };
  run();
  hone::bench::time_with_cuda_events(state, run);
  finish(state, kind == 2 ? 0.0 : 4.0 * double(kRows * kVocab));
}

void bm_bias_grad(benchmark::State& state, int64_t cols) {
  DeviceArray<bf16> g(kRows * cols, Fill{});
  DeviceArray<float> db(cols);
  const auto run = [&] { kc::strided_sum<bf16, float>(cols, kRows, g.p, 1, cols, db.p, nullptr); };
  run();
  hone::bench::time_with_cuda_events(state, run);
  finish(state, 2.0 * double(kRows * cols));
}
#endif

const bool registered = [] {
#if defined(HONE_WITH_CUDA)
  if (!hone::kernels::cuda_device_present()) return false;
  const auto add = [](const std::string& name, auto fn, auto arg) {
    benchmark::RegisterBenchmark(("cuda/" + name).c_str(), fn, arg)->Unit(benchmark::kMicrosecond)->UseManualTime();
  };
  add("add_ln_fwd/bf16/16384x768/registers", bm_add_ln_fwd, true);
  add("add_ln_fwd/bf16/16384x768/block_per_row", bm_add_ln_fwd, false);
  add("ln_bwd/bf16/16384x768/registers", bm_ln_bwd, true);
  add("ln_bwd/bf16/16384x768/shared", bm_ln_bwd, false);
  add("ce_fwd/bf16/16384x50257/loss", bm_ce_fwd, false);
  add("ce_fwd/bf16/16384x50257/loss_and_grad", bm_ce_fwd, true);
  add("ce_bwd/bf16/16384x50257/from_logits", bm_ce_bwd, 0);
  add("ce_bwd/bf16/16384x50257/scale_0.5", bm_ce_bwd, 1);
  add("ce_bwd/bf16/16384x50257/scale_1", bm_ce_bwd, 2);
  for (int64_t cols : {768, 2304, 3072})
    add("bias_grad/bf16/16384x" + std::to_string(cols) + "/column_sums", bm_bias_grad, cols);
  return true;
#else
  return false;
#endif
}();

}  // namespace

BENCHMARK_MAIN();
