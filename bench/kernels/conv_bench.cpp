// conv2d kernels (kernels/conv.h) on the ResNet-18 CIFAR convolutions (batch 32, 3x3, stride 1,
// padding 1: 64 channels at 32x32, 128 at 16x16, 256 at 8x8, 512 at 4x4), the CIFAR stage
// transitions (3x3 stride 2 and the 1x1 stride-2 projection), and a few ImageNet ResNet shapes
// (7x7 stride-2 stem, 1x1 bottleneck convs) at batch 8. Each shape is timed for the forward,
// the data gradient and the weight gradient; "GFLOPS" is 2 * N * C_out * H_out * W_out *
// C_in/groups * kH * kW per second (the same count for all three passes). The "gemm" rows time
// one sgemm of the forward's total size (M = C_out, N = batch * H_out * W_out, K = C_in kH kW),
// the ceiling the im2col lowering aims at.
//
// Run with OMP_NUM_THREADS=2 (the dev box has 2 cores; threads are pinned to 2 here too).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/gemm.h"

namespace {

constexpr int kThreads = 2;
namespace hk = hone::kernels;

struct Case {
  std::string name;
  hk::Conv2dGeometry g;
};

hk::Conv2dGeometry geo(int64_t N, int64_t Ci, int64_t H, int64_t Co, int64_t k, int64_t s, int64_t p) {
  hk::Conv2dGeometry g;
  g.batch = N, g.in_channels = Ci, g.in_h = H, g.in_w = H, g.out_channels = Co;
  g.kernel_h = g.kernel_w = k, g.stride_h = g.stride_w = s, g.pad_h = g.pad_w = p;
  return g;
}

std::vector<Case> cases() {
  return {
      {"cifar_c64_32x32_3x3", geo(32, 64, 32, 64, 3, 1, 1)},
      {"cifar_c128_16x16_3x3", geo(32, 128, 16, 128, 3, 1, 1)},
      {"cifar_c256_8x8_3x3", geo(32, 256, 8, 256, 3, 1, 1)},
      {"cifar_c512_4x4_3x3", geo(32, 512, 4, 512, 3, 1, 1)},
      {"cifar_c64to128_32x32_3x3s2", geo(32, 64, 32, 128, 3, 2, 1)},
      {"cifar_c64to128_32x32_1x1s2", geo(32, 64, 32, 128, 1, 2, 0)},
      {"imagenet_stem_224_7x7s2_b8", geo(8, 3, 224, 64, 7, 2, 3)},
      {"imagenet_c64to256_56x56_1x1_b8", geo(8, 64, 56, 256, 1, 1, 0)},
      {"imagenet_c2048to512_7x7_1x1_b8", geo(8, 2048, 7, 512, 1, 1, 0)},
  };
}

double flops(const hk::Conv2dGeometry& g) {
  return 2.0 * double(g.batch) * double(g.out_channels) * double(g.out_h() * g.out_w()) *
         double(g.in_channels / g.groups) * double(g.kernel_h * g.kernel_w);
}

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

enum class Pass { Forward, Data, Weight, Gemm };

void bm_conv(benchmark::State& state, hk::Conv2dGeometry g, Pass pass) {
  omp_set_num_threads(kThreads);
  const size_t nx = g.batch * g.in_channels * g.in_h * g.in_w;
  const size_t nw = g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w;
  const size_t ny = g.batch * g.out_channels * g.out_h() * g.out_w();
  std::vector<float> x = random_vec(nx, 1), w = random_vec(nw, 2), b = random_vec(g.out_channels, 3);
  std::vector<float> y = random_vec(ny, 4);
  const int64_t K = (g.in_channels / g.groups) * g.kernel_h * g.kernel_w, cols = g.batch * g.out_h() * g.out_w();
  std::vector<float> col(pass == Pass::Gemm ? size_t(K * cols) : 0, 0.5f), out(pass == Pass::Gemm ? ny : 0);
  for (auto _ : state) {
    switch (pass) {
      case Pass::Forward: hk::conv2d_forward<float>(g, x.data(), w.data(), b.data(), y.data()); break;
      case Pass::Data: hk::conv2d_backward_data<float>(g, y.data(), w.data(), x.data()); break;
      case Pass::Weight: hk::conv2d_backward_weight<float>(g, x.data(), y.data(), w.data()); break;
      case Pass::Gemm:
        hk::sgemm(false, false, g.out_channels, cols, K, 1.f, w.data(), K, col.data(), cols, 0.f, out.data(), cols);
        break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(flops(g) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

const bool registered = [] {
  const std::pair<Pass, const char*> passes[] = {
      {Pass::Forward, "fwd"}, {Pass::Data, "bwd_data"}, {Pass::Weight, "bwd_weight"}, {Pass::Gemm, "gemm"}};
  for (const Case& c : cases())
    for (const auto& [pass, name] : passes)
      benchmark::RegisterBenchmark((c.name + "/" + name).c_str(), bm_conv, c.g, pass)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3)
          ->UseRealTime();
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
