// Convolution, pooling, batch-norm and resampling kernels: the CPU versions against the plain
// references on odd shapes (every code path of the conv lowering: one and several images per
// chunk, several chunks, the 1x1 plain GEMM, groups, depthwise), and 1 vs 2 threads bit-identical.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/pool.h"
#include "kernels/resample.h"

namespace hk = hone::kernels;

namespace {

template <class T>
std::vector<T> random_vec(size_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = T(u(g));
  return v;
}

template <class T>
void expect_near_all(const std::vector<T>& got, const std::vector<T>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size() && reported < 5; ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= tol * std::max(1.0, std::fabs(double(want[i]))))) {
      ADD_FAILURE() << what << ": element " << i << " is " << double(got[i]) << ", expected " << double(want[i]);
      ++reported;
    }
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Runs f() with n OpenMP threads, restoring the thread count.
template <class F> void with_threads(int n, F&& f) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(n);
  f();
  omp_set_num_threads(saved);
}

hk::Conv2dGeometry conv(int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t kh, int64_t kw,
                        int64_t sh = 1, int64_t sw = 1, int64_t ph = 0, int64_t pw = 0, int64_t dh = 1,
                        int64_t dw = 1, int64_t groups = 1) {
  hk::Conv2dGeometry g;
  g.batch = N, g.in_channels = Ci, g.in_h = H, g.in_w = W, g.out_channels = Co, g.kernel_h = kh, g.kernel_w = kw;
  g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw, g.dilation_h = dh, g.dilation_w = dw, g.groups = groups;
  return g;
}

const hk::Conv2dGeometry kConvs[] = {
    conv(13, 3, 9, 11, 7, 3, 3, 1, 1, 1, 1),              // 6 images per chunk, 3 chunks
    conv(4, 6, 24, 24, 5, 3, 3, 1, 1, 1, 1),              // 1 image per chunk, 4 chunks
    conv(6, 8, 32, 17, 4, 1, 1),                          // 1x1 plain GEMM, 6 chunks (4 slots)
    conv(3, 4, 7, 7, 6, 1, 1, 2, 2),                      // 1x1 stride 2
    conv(7, 6, 10, 10, 9, 5, 3, 2, 1, 2, 1, 1, 2, 3),     // 5x3, stride, dilation, groups 3
    conv(20, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8),      // depthwise, 2 chunks
    conv(5, 3, 32, 32, 8, 7, 7, 2, 2, 3, 3),              // ResNet stem (small)
    conv(1, 1, 1, 1, 1, 1, 1),                            // scalar
    conv(2, 3, 5, 1, 2, 3, 1, 1, 1, 1, 0),                // W = 1
};

std::string conv_name(const hk::Conv2dGeometry& g) {
  return "conv N" + std::to_string(g.batch) + " C" + std::to_string(g.in_channels) + " " + std::to_string(g.in_h) +
         "x" + std::to_string(g.in_w) + " -> " + std::to_string(g.out_channels) + " k" + std::to_string(g.kernel_h) +
         "x" + std::to_string(g.kernel_w) + " g" + std::to_string(g.groups);
}

template <class T>
struct ConvResults {
  std::vector<T> y, gx, gw, gb;
};

template <class T, bool Ref>
ConvResults<T> run_conv(const hk::Conv2dGeometry& g) {
  const size_t nx = g.batch * g.in_channels * g.in_h * g.in_w;
  const size_t nw = g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w;
  const size_t ny = g.batch * g.out_channels * g.out_h() * g.out_w();
  const std::vector<T> x = random_vec<T>(nx, 1), w = random_vec<T>(nw, 2), b = random_vec<T>(g.out_channels, 3);
  const std::vector<T> gy = random_vec<T>(ny, 4);
  ConvResults<T> r{std::vector<T>(ny), std::vector<T>(nx), std::vector<T>(nw), std::vector<T>(g.out_channels)};
  if constexpr (Ref) {
    hk::ref::conv2d_forward<T>(g, x.data(), w.data(), b.data(), r.y.data());
    hk::ref::conv2d_backward_data<T>(g, gy.data(), w.data(), r.gx.data());
    hk::ref::conv2d_backward_weight<T>(g, x.data(), gy.data(), r.gw.data());
    hk::ref::conv2d_backward_bias<T>(g, gy.data(), r.gb.data());
  } else {
    hk::conv2d_forward<T>(g, x.data(), w.data(), b.data(), r.y.data());
    hk::conv2d_backward_data<T>(g, gy.data(), w.data(), r.gx.data());
    hk::conv2d_backward_weight<T>(g, x.data(), gy.data(), r.gw.data());
    hk::conv2d_backward_bias<T>(g, gy.data(), r.gb.data());
  }
  return r;
}

template <class T>
void check_conv(double tol) {
  for (const hk::Conv2dGeometry& g : kConvs) {
    const std::string what = conv_name(g);
    const ConvResults<T> got = run_conv<T, false>(g), want = run_conv<T, true>(g);
    expect_near_all(got.y, want.y, tol, what + " forward");
    expect_near_all(got.gx, want.gx, tol, what + " data gradient");
    expect_near_all(got.gw, want.gw, tol * 10, what + " weight gradient");  // sums over the batch
    expect_near_all(got.gb, want.gb, tol * 10, what + " bias gradient");
  }
}

TEST(ConvKernel, FloatMatchesReference) { check_conv<float>(2e-5); }
TEST(ConvKernel, DoubleMatchesReference) { check_conv<double>(1e-12); }

TEST(ConvKernel, OneAndTwoThreadsAgreeBitForBit) {
  for (const hk::Conv2dGeometry& g : kConvs) {
    ConvResults<float> one, two;
    with_threads(1, [&] { one = run_conv<float, false>(g); });
    with_threads(2, [&] { two = run_conv<float, false>(g); });
    const std::string what = conv_name(g);
    EXPECT_TRUE(same_bits(one.y, two.y)) << what << " forward";
    EXPECT_TRUE(same_bits(one.gx, two.gx)) << what << " data gradient";
    EXPECT_TRUE(same_bits(one.gw, two.gw)) << what << " weight gradient";
    EXPECT_TRUE(same_bits(one.gb, two.gb)) << what << " bias gradient";
  }
}

// ---- pooling ---------------------------------------------------------------------------------------

hk::Pool2dGeometry pool(int64_t planes, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                        int64_t ph, int64_t pw) {
  hk::Pool2dGeometry g;
  g.planes = planes, g.in_h = H, g.in_w = W, g.kernel_h = kh, g.kernel_w = kw;
  g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw;
  g.out_h = (H + 2 * ph - kh) / sh + 1;
  g.out_w = (W + 2 * pw - kw) / sw + 1;
  return g;
}

const hk::Pool2dGeometry kPools[] = {pool(6, 7, 7, 3, 3, 2, 2, 1, 1), pool(5, 6, 9, 2, 2, 2, 2, 0, 0),
                                     pool(3, 5, 6, 3, 2, 1, 2, 1, 1), pool(40, 25, 25, 3, 3, 2, 2, 1, 1),
                                     pool(2, 1, 1, 1, 1, 1, 1, 0, 0)};

struct PoolResults {
  std::vector<float> max_y, max_gx, avg_y, avg_gx, ad_y, ad_gx;
  std::vector<int64_t> argmax;
};

template <bool Ref>
PoolResults run_pool(const hk::Pool2dGeometry& g) {
  const size_t nx = g.planes * g.in_h * g.in_w, ny = g.planes * g.out_h * g.out_w;
  const std::vector<float> x = random_vec<float>(nx, 5), gy = random_vec<float>(ny, 6);
  hk::Pool2dGeometry ad = g;  // adaptive to a non-divisible size
  ad.out_h = std::max<int64_t>(1, g.in_h * 2 / 3 + 1);
  ad.out_w = std::max<int64_t>(1, g.in_w / 2);
  const size_t nad = g.planes * ad.out_h * ad.out_w;
  const std::vector<float> gad = random_vec<float>(nad, 7);
  PoolResults r{std::vector<float>(ny), std::vector<float>(nx), std::vector<float>(ny), std::vector<float>(nx),
                std::vector<float>(nad), std::vector<float>(nx), std::vector<int64_t>(ny)};
  auto run = [&](auto mf, auto mb, auto af, auto ab, auto adf, auto adb) {
    mf(g, x.data(), r.max_y.data(), r.argmax.data());
    mb(g, gy.data(), r.argmax.data(), r.max_gx.data());
    af(g, x.data(), r.avg_y.data());
    ab(g, gy.data(), r.avg_gx.data());
    adf(ad, x.data(), r.ad_y.data());
    adb(ad, gad.data(), r.ad_gx.data());
  };
  if constexpr (Ref)
    run(hk::ref::max_pool2d_forward<float>, hk::ref::max_pool2d_backward<float>, hk::ref::avg_pool2d_forward<float>,
        hk::ref::avg_pool2d_backward<float>, hk::ref::adaptive_avg_pool2d_forward<float>,
        hk::ref::adaptive_avg_pool2d_backward<float>);
  else
    run(hk::max_pool2d_forward<float>, hk::max_pool2d_backward<float>, hk::avg_pool2d_forward<float>,
        hk::avg_pool2d_backward<float>, hk::adaptive_avg_pool2d_forward<float>, hk::adaptive_avg_pool2d_backward<float>);
  return r;
}

TEST(PoolKernel, CpuMatchesReferenceAndThreadCountDoesNotMatter) {
  for (const hk::Pool2dGeometry& g : kPools) {
    const std::string what = "pool planes " + std::to_string(g.planes) + " " + std::to_string(g.in_h) + "x" +
                             std::to_string(g.in_w);
    const PoolResults want = run_pool<true>(g);
    PoolResults one, two;
    with_threads(1, [&] { one = run_pool<false>(g); });
    with_threads(2, [&] { two = run_pool<false>(g); });
    EXPECT_TRUE(same_bits(one.max_y, want.max_y)) << what;  // a maximum is exact
    EXPECT_EQ(one.argmax, want.argmax) << what;
    expect_near_all(one.max_gx, want.max_gx, 1e-6, what + " max backward");
    expect_near_all(one.avg_y, want.avg_y, 1e-6, what + " avg forward");
    expect_near_all(one.avg_gx, want.avg_gx, 1e-6, what + " avg backward");
    expect_near_all(one.ad_y, want.ad_y, 1e-6, what + " adaptive forward");
    expect_near_all(one.ad_gx, want.ad_gx, 1e-6, what + " adaptive backward");
    for (auto [a, b] : {std::pair{&one.max_y, &two.max_y}, {&one.max_gx, &two.max_gx}, {&one.avg_y, &two.avg_y},
                        {&one.avg_gx, &two.avg_gx}, {&one.ad_y, &two.ad_y}, {&one.ad_gx, &two.ad_gx}})
      EXPECT_TRUE(same_bits(*a, *b)) << what << ": 1 vs 2 threads";
  }
}

// ---- batch norm ------------------------------------------------------------------------------------

struct BnShape {
  int64_t N, C, S;
};
const BnShape kBn[] = {{4, 3, 7}, {5, 4, 1}, {2, 1, 33}, {16, 8, 1024}, {3, 70, 5}};

struct BnResults {
  std::vector<float> mean, var, y, gx_train, gw_train, gb_train, gx_eval, gw_eval;
};

template <bool Ref>
BnResults run_bn(const BnShape& s) {
  const size_t n = s.N * s.C * s.S;
  const std::vector<float> x = random_vec<float>(n, 8, -2, 3), gy = random_vec<float>(n, 9);
  const std::vector<float> w = random_vec<float>(s.C, 10, 0.5, 1.5), b = random_vec<float>(s.C, 11);
  BnResults r;
  r.mean.resize(s.C), r.var.resize(s.C), r.y.resize(n), r.gx_train.resize(n), r.gw_train.resize(s.C);
  r.gb_train.resize(s.C), r.gx_eval.resize(n), r.gw_eval.resize(s.C);
  auto stats = Ref ? hk::ref::batchnorm_stats<float> : hk::batchnorm_stats<float>;
  auto fwd = Ref ? hk::ref::batchnorm_forward<float> : hk::batchnorm_forward<float>;
  auto bwd = Ref ? hk::ref::batchnorm_backward<float> : hk::batchnorm_backward<float>;
  stats(s.N, s.C, s.S, x.data(), r.mean.data(), r.var.data());
  // Statistics from the reference for the later steps, so both sides see the same inputs.
  std::vector<float> mean(s.C), var(s.C), invstd(s.C);
  hk::ref::batchnorm_stats<float>(s.N, s.C, s.S, x.data(), mean.data(), var.data());
  for (int64_t c = 0; c < s.C; ++c) invstd[c] = float(1.0 / std::sqrt(double(var[c]) + 1e-5));
  fwd(s.N, s.C, s.S, x.data(), mean.data(), invstd.data(), w.data(), b.data(), r.y.data());
  bwd(s.N, s.C, s.S, x.data(), gy.data(), mean.data(), invstd.data(), w.data(), true, r.gx_train.data(),
      r.gw_train.data(), r.gb_train.data());
  bwd(s.N, s.C, s.S, x.data(), gy.data(), mean.data(), invstd.data(), w.data(), false, r.gx_eval.data(),
      r.gw_eval.data(), nullptr);
  return r;
}

TEST(BatchNormKernel, CpuMatchesReferenceAndThreadCountDoesNotMatter) {
  for (const BnShape& s : kBn) {
    const std::string what = "batchnorm " + std::to_string(s.N) + "x" + std::to_string(s.C) + "x" + std::to_string(s.S);
    const BnResults want = run_bn<true>(s);
    BnResults one, two;
    with_threads(1, [&] { one = run_bn<false>(s); });
    with_threads(2, [&] { two = run_bn<false>(s); });
    expect_near_all(one.mean, want.mean, 1e-6, what + " mean");
    expect_near_all(one.var, want.var, 1e-5, what + " var");
    expect_near_all(one.y, want.y, 1e-5, what + " forward");
    expect_near_all(one.gx_train, want.gx_train, 1e-4, what + " train gx");
    expect_near_all(one.gw_train, want.gw_train, 1e-4, what + " train gweight");
    expect_near_all(one.gb_train, want.gb_train, 1e-4, what + " train gbias");
    expect_near_all(one.gx_eval, want.gx_eval, 1e-5, what + " eval gx");
    expect_near_all(one.gw_eval, want.gw_eval, 1e-4, what + " eval gweight");
    for (auto [a, b] : {std::pair{&one.mean, &two.mean}, {&one.var, &two.var}, {&one.y, &two.y},
                        {&one.gx_train, &two.gx_train}, {&one.gw_train, &two.gw_train},
                        {&one.gb_train, &two.gb_train}, {&one.gx_eval, &two.gx_eval}})
      EXPECT_TRUE(same_bits(*a, *b)) << what << ": 1 vs 2 threads";
  }
}

// ---- resampling ------------------------------------------------------------------------------------

const hk::Resample2dGeometry kResample[] = {{3, 3, 4, 6, 8}, {2, 3, 4, 5, 7}, {4, 5, 7, 2, 3},
                                            {2, 4, 5, 1, 1}, {3, 4, 4, 4, 4}, {40, 20, 30, 33, 17}};

TEST(ResampleKernel, CpuMatchesReferenceAndThreadCountDoesNotMatter) {
  for (const hk::Resample2dGeometry& g : kResample) {
    const std::string what = "resample " + std::to_string(g.in_h) + "x" + std::to_string(g.in_w) + " -> " +
                             std::to_string(g.out_h) + "x" + std::to_string(g.out_w);
    const size_t nx = g.planes * g.in_h * g.in_w, ny = g.planes * g.out_h * g.out_w;
    const std::vector<float> x = random_vec<float>(nx, 12), gy = random_vec<float>(ny, 13);
    std::vector<float> ny_ref(ny), nx_ref(nx), by_ref(ny), bx_ref(nx);
    hk::ref::upsample_nearest2d_forward<float>(g, x.data(), ny_ref.data());
    hk::ref::upsample_nearest2d_backward<float>(g, gy.data(), nx_ref.data());
    hk::ref::upsample_bilinear2d_forward<float>(g, x.data(), by_ref.data());
    hk::ref::upsample_bilinear2d_backward<float>(g, gy.data(), bx_ref.data());
    std::vector<float> out[2][4];
    for (int t = 0; t < 2; ++t)
      with_threads(t + 1, [&] {
        out[t][0].resize(ny), out[t][1].resize(nx), out[t][2].resize(ny), out[t][3].resize(nx);
        hk::upsample_nearest2d_forward<float>(g, x.data(), out[t][0].data());
        hk::upsample_nearest2d_backward<float>(g, gy.data(), out[t][1].data());
        hk::upsample_bilinear2d_forward<float>(g, x.data(), out[t][2].data());
        hk::upsample_bilinear2d_backward<float>(g, gy.data(), out[t][3].data());
      });
    EXPECT_TRUE(same_bits(out[0][0], ny_ref)) << what << " nearest forward";
    expect_near_all(out[0][1], nx_ref, 1e-6, what + " nearest backward");
    // The kernel computes source positions in float, as PyTorch does (about 1e-6 of a pixel at
    // these sizes); the reference in double.
    expect_near_all(out[0][2], by_ref, 1e-5, what + " bilinear forward");
    expect_near_all(out[0][3], bx_ref, 1e-5, what + " bilinear backward");
    for (int k = 0; k < 4; ++k) EXPECT_TRUE(same_bits(out[0][k], out[1][k])) << what << " result " << k;
  }
}

// PyTorch's nearest index: the float formula, with its shortcuts for equal and doubled sizes.
TEST(ResampleKernel, NearestSourceIndexFollowsPyTorch) {
  EXPECT_EQ(hk::nearest_source_index(4, 5, 5), 4);
  EXPECT_EQ(hk::nearest_source_index(7, 4, 8), 3);
  EXPECT_EQ(hk::nearest_source_index(4, 3, 5), 2);   // floor(4 * 0.6)
  EXPECT_EQ(hk::nearest_source_index(1, 7, 3), 2);   // floor(7 / 3)
  EXPECT_EQ(hk::nearest_source_index(2, 7, 3), 4);
}

}  // namespace
