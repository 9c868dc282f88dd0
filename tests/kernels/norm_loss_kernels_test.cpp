// Softmax, layer norm and cross-entropy kernels: the CPU versions against the plain references
// (float, odd shapes), and 1 vs 2 threads bit-identical, without the engine.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/rowwise.h"
#include "kernels/layernorm.h"
#include "kernels/loss.h"
#include "kernels/softmax.h"

namespace hk = hone::kernels;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -3.f, float hi = 3.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(g);
  return v;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, double tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size() && reported < 5; ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * std::max(1.0, double(std::fabs(want[i]))))) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << want[i];
      ++reported;
    }
}

// Runs f() with 1 thread and with 2 threads, restoring the thread count.
template <class F> void with_threads(int n, F&& f) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(n);
  f();
  omp_set_num_threads(saved);
}

struct RowsCols {
  int64_t rows, cols;
};
const RowsCols kShapes[] = {{5, 1}, {3, 7}, {4, 33}, {6, 50}, {3, 1000}, {70, 13}};

std::string shape_name(const RowsCols& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

// The vectorisable float exp the row kernels use, over its whole domain (x <= 0).
TEST(RowKernels, ExpNonPositiveIsAccurate) {
  using hk::cpu::exp_nonpositive;
  double worst = 0;
  for (int k = 0; k <= 2000000; ++k) {
    const float x = -87.0f * float(k) / 2000000.0f;
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(double(exp_nonpositive(x)) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);  // about 2 ulp
  EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
  EXPECT_EQ(exp_nonpositive(-100.0f), 0.0f);
  EXPECT_EQ(exp_nonpositive(-INFINITY), 0.0f);
  EXPECT_TRUE(std::isnan(exp_nonpositive(NAN)));
}

TEST(SoftmaxKernel, CpuMatchesReference) {
  for (const RowsCols& s : kShapes)
    for (bool log : {false, true}) {
      const std::string what = std::string(log ? "log_softmax " : "softmax ") + shape_name(s);
      const size_t n = s.rows * s.cols;
      const std::vector<float> x = random_floats(n, 1), gy = random_floats(n, 2, -1.f, 1.f);
      std::vector<float> y(n), y_ref(n), gx(n), gx_ref(n);
      hk::softmax_forward<float>(s.rows, s.cols, x.data(), y.data(), log);
      hk::ref::softmax_forward<float>(s.rows, s.cols, x.data(), y_ref.data(), log);
      expect_near_all(y, y_ref, 2e-6, what + " forward");
      // Both backwards from the same (reference) output, so only the backward is compared.
      hk::softmax_backward<float>(s.rows, s.cols, y_ref.data(), gy.data(), gx.data(), log);
      hk::ref::softmax_backward<float>(s.rows, s.cols, y_ref.data(), gy.data(), gx_ref.data(), log);
      expect_near_all(gx, gx_ref, 2e-5, what + " backward");
    }
}

TEST(LayerNormKernel, CpuMatchesReference) {
  for (const RowsCols& s : kShapes)
    for (int affine = 0; affine < 4; ++affine) {
      const bool has_w = affine & 1, has_b = affine & 2;
      const std::string what = "layernorm " + shape_name(s) + (has_w ? " w" : "") + (has_b ? " b" : "");
      const size_t n = s.rows * s.cols;
      const std::vector<float> x = random_floats(n, 3), gy = random_floats(n, 4, -1.f, 1.f);
      const std::vector<float> w = random_floats(s.cols, 5, 0.5f, 1.5f), b = random_floats(s.cols, 6);
      const float* wp = has_w ? w.data() : nullptr;
      std::vector<float> y(n), y_ref(n), mean(s.rows), rstd(s.rows), mean_ref(s.rows), rstd_ref(s.rows);
      hk::layernorm_forward<float>(s.rows, s.cols, x.data(), wp, has_b ? b.data() : nullptr, 1e-5, y.data(),
                                   mean.data(), rstd.data());
      hk::ref::layernorm_forward<float>(s.rows, s.cols, x.data(), wp, has_b ? b.data() : nullptr, 1e-5,
                                        y_ref.data(), mean_ref.data(), rstd_ref.data());
      expect_near_all(y, y_ref, 1e-5, what + " forward");
      expect_near_all(mean, mean_ref, 1e-6, what + " mean");
      // rstd is 1/sqrt(eps) ~ 316 for one-column rows: relative tolerance.
      expect_near_all(rstd, rstd_ref, 1e-5, what + " rstd");

      std::vector<float> gx(n), gw(s.cols), gb(s.cols), gx_ref(n), gw_ref(s.cols), gb_ref(s.cols);
      hk::layernorm_backward<float>(s.rows, s.cols, x.data(), wp, mean_ref.data(), rstd_ref.data(), gy.data(),
                                    gx.data(), gw.data(), gb.data());
      hk::ref::layernorm_backward<float>(s.rows, s.cols, x.data(), wp, mean_ref.data(), rstd_ref.data(),
                                         gy.data(), gx_ref.data(), gw_ref.data(), gb_ref.data());
      // One-column rows: dx is rstd (~316) times a difference of equal numbers; allow for it.
      expect_near_all(gx, gx_ref, s.cols == 1 ? 1e-3 : 2e-5, what + " dx");
      expect_near_all(gw, gw_ref, 2e-5, what + " dweight");
      expect_near_all(gb, gb_ref, 2e-5, what + " dbias");
    }
}

// Targets in [0, C) with every third one ignored (-100).
template <class I> std::vector<I> targets_for(int64_t rows, int64_t C, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<I> t(rows);
  for (int64_t r = 0; r < rows; ++r) t[r] = r % 3 == 1 ? I(-100) : I(g() % C);
  return t;
}

template <class I> void check_cross_entropy(const RowsCols& s, double smoothing) {
  const std::string what = "cross_entropy " + shape_name(s) + " ls " + std::to_string(smoothing) +
                           (sizeof(I) == 4 ? " int32" : " int64");
  hk::CrossEntropyArgs a{s.rows, s.cols, -100, smoothing};
  const std::vector<float> x = random_floats(s.rows * s.cols, 7);
  const std::vector<I> t = targets_for<I>(s.rows, s.cols, 8);
  ASSERT_EQ(hk::cross_entropy_first_bad_target(a, t.data()), -1);
  std::vector<float> lse(s.rows), lse_ref(s.rows);
  const hk::CrossEntropyTotals got = hk::cross_entropy_forward<float, I>(a, x.data(), t.data(), lse.data());
  const hk::CrossEntropyTotals want = hk::ref::cross_entropy_forward<float, I>(a, x.data(), t.data(), lse_ref.data());
  EXPECT_EQ(got.count, want.count) << what;
  EXPECT_NEAR(got.loss_sum, want.loss_sum, 2e-6 * std::max(1.0, std::fabs(want.loss_sum))) << what;
  expect_near_all(lse, lse_ref, 1e-6, what + " lse");
  std::vector<float> gx(x.size()), gx_ref(x.size());
  const double scale = want.count ? 1.0 / double(want.count) : 0.0;
  hk::cross_entropy_backward<float, I>(a, x.data(), t.data(), lse.data(), scale, gx.data());
  hk::ref::cross_entropy_backward<float, I>(a, x.data(), t.data(), nullptr, scale, gx_ref.data());
  expect_near_all(gx, gx_ref, 1e-6, what + " backward");
}

// The 16-bit-gy backward (autocast: the output fed a 16-bit matmul) is the float32 backward of gy
// cast up (to float rounding: the compiler may contract the converted loads differently).
template <class H>
void check_layernorm_backward_lowp_gy() {
  const int64_t rows = 70, cols = 97;
  const std::vector<float> x = random_floats(rows * cols, 41), w = random_floats(cols, 42), b = random_floats(cols, 43);
  const std::vector<float> gy_wide = random_floats(rows * cols, 44);
  const std::vector<H> gy(gy_wide.begin(), gy_wide.end());
  const std::vector<float> gy_up(gy.begin(), gy.end());
  std::vector<float> y(rows * cols), mean(rows), rstd(rows);
  hk::layernorm_forward<float>(rows, cols, x.data(), w.data(), b.data(), 1e-5, y.data(), mean.data(), rstd.data());
  std::vector<float> gx(rows * cols), gw(cols), gb(cols), gx_l(rows * cols), gw_l(cols), gb_l(cols);
  hk::layernorm_backward<float>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy_up.data(), gx.data(),
                                gw.data(), gb.data());
  hk::layernorm_backward_lowp_gy<float, H>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy.data(),
                                           gx_l.data(), gw_l.data(), gb_l.data());
  expect_near_all(gx_l, gx, 1e-6, std::to_string(sizeof(H)) + "-byte gy: dx");
  expect_near_all(gw_l, gw, 1e-6, std::to_string(sizeof(H)) + "-byte gy: dweight");
  expect_near_all(gb_l, gb, 1e-6, std::to_string(sizeof(H)) + "-byte gy: dbias");
}

// accumulate_gx adds dx into the gradient gx holds: dx written alone and added after, to float
// rounding (each dx rounded to T first; the add may be contracted with dx's last product), in
// float32 and bf16; the parameter gradients are unchanged.
template <class T>
void check_layernorm_accumulates_gx() {
  const int64_t rows = 70, cols = 97;
  auto as_t = [](const std::vector<float>& v) { return std::vector<T>(v.begin(), v.end()); };
  const std::vector<T> x = as_t(random_floats(rows * cols, 51)), w = as_t(random_floats(cols, 52)),
                       gy = as_t(random_floats(rows * cols, 53)), prior = as_t(random_floats(rows * cols, 54));
  std::vector<T> y(rows * cols);
  std::vector<hone::acc_t<T>> mean(rows), rstd(rows);
  hk::layernorm_forward<T>(rows, cols, x.data(), w.data(), nullptr, 1e-5, y.data(), mean.data(), rstd.data());
  std::vector<T> alone(rows * cols), acc = prior, gw(cols), gw_acc(cols);
  hk::layernorm_backward<T>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy.data(), alone.data(),
                            gw.data(), nullptr);
  hk::layernorm_backward<T>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy.data(), acc.data(),
                            gw_acc.data(), nullptr, /*accumulate_gx=*/true);
  const double ulp = sizeof(T) == 2 ? 1.0 / 128 : 1e-6;  // one rounding of T, relative
  for (size_t i = 0; i < acc.size(); ++i) {
    const double want = float(T(float(prior[i]) + float(alone[i])));
    ASSERT_NEAR(float(acc[i]), want, ulp * std::max(1.0, std::fabs(want))) << "element " << i;
  }
  for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(float(gw_acc[i]), float(gw[i]));
}

// gx_lowp: with a 16-bit gy, gx's final values (accumulated or not) rounded to that type as well.
TEST(LayerNormKernel, WritesGxRoundedTo16BitsBesideIt) {
  const int64_t rows = 33, cols = 65;
  const std::vector<float> x = random_floats(rows * cols, 61), w = random_floats(cols, 62),
                           prior = random_floats(rows * cols, 64);
  const std::vector<float> gy_wide = random_floats(rows * cols, 63);
  const std::vector<hone::bf16> gy(gy_wide.begin(), gy_wide.end());
  std::vector<float> y(rows * cols), mean(rows), rstd(rows);
  hk::layernorm_forward<float>(rows, cols, x.data(), w.data(), nullptr, 1e-5, y.data(), mean.data(), rstd.data());
  for (bool accumulate : {false, true}) {
    std::vector<float> gx = prior;
    std::vector<hone::bf16> twin(rows * cols);
    hk::layernorm_backward_lowp_gy<float, hone::bf16>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(),
                                                      gy.data(), gx.data(), nullptr, nullptr, accumulate, twin.data());
    for (size_t i = 0; i < gx.size(); ++i)
      ASSERT_EQ(float(twin[i]), float(hone::bf16(gx[i]))) << "element " << i << (accumulate ? " (accumulated)" : "");
  }
}

TEST(LayerNormKernel, AccumulatesDxIntoTheGradientGxHolds) {
  check_layernorm_accumulates_gx<float>();
  check_layernorm_accumulates_gx<hone::bf16>();
}

TEST(LayerNormKernel, SixteenBitGyIsTheFloat32BackwardOfItsCast) {
  check_layernorm_backward_lowp_gy<hone::bf16>();
  check_layernorm_backward_lowp_gy<hone::f16>();
}

TEST(CrossEntropyKernel, CpuMatchesReference) {
  for (const RowsCols& s : kShapes)
    for (double ls : {0.0, 0.1}) {
      check_cross_entropy<int64_t>(s, ls);
      check_cross_entropy<int32_t>(s, ls);
    }
}

TEST(CrossEntropyKernel, FindsTheFirstBadTarget) {
  hk::CrossEntropyArgs a{4, 5, -100, 0.0};
  const std::vector<int64_t> ok{0, 4, -100, 2}, bad{0, -100, 5, -1}, neg{0, -3, 1, 1};
  EXPECT_EQ(hk::cross_entropy_first_bad_target(a, ok.data()), -1);
  EXPECT_EQ(hk::cross_entropy_first_bad_target(a, bad.data()), 2);
  EXPECT_EQ(hk::cross_entropy_first_bad_target(a, neg.data()), 1);
}

// Problems large enough to be split over threads: 1 and 2 threads give the same bits.
TEST(NormLossKernels, OneAndTwoThreadsAgreeBitForBit) {
  const int64_t rows = 300, cols = 777;
  const size_t n = rows * cols;
  const std::vector<float> x = random_floats(n, 9), gy = random_floats(n, 10, -1.f, 1.f);
  const std::vector<float> w = random_floats(cols, 11, 0.5f, 1.5f), b = random_floats(cols, 12);
  const std::vector<int64_t> t = targets_for<int64_t>(rows, cols, 13);
  auto run = [&] {
    std::vector<float> out;
    auto append = [&](const std::vector<float>& v) { out.insert(out.end(), v.begin(), v.end()); };
    std::vector<float> y(n), gx(n), mean(rows), rstd(rows), gw(cols), gb(cols), lse(rows);
    hk::softmax_forward<float>(rows, cols, x.data(), y.data(), false);
    hk::softmax_backward<float>(rows, cols, y.data(), gy.data(), gx.data(), false);
    append(y), append(gx);
    hk::layernorm_forward<float>(rows, cols, x.data(), w.data(), b.data(), 1e-5, y.data(), mean.data(), rstd.data());
    hk::layernorm_backward<float>(rows, cols, x.data(), w.data(), mean.data(), rstd.data(), gy.data(), gx.data(),
                                  gw.data(), gb.data());
    append(y), append(gx), append(gw), append(gb);
    const hk::CrossEntropyArgs a{rows, cols, -100, 0.1};
    const auto tot = hk::cross_entropy_forward<float, int64_t>(a, x.data(), t.data(), lse.data());
    hk::cross_entropy_backward<float, int64_t>(a, x.data(), t.data(), lse.data(), 0.01, gx.data());
    append(lse), append(gx);
    // The double total as two floats' worth of bytes, compared like the rest.
    float bits[2];
    std::memcpy(bits, &tot.loss_sum, sizeof bits);
    out.push_back(bits[0]), out.push_back(bits[1]);
    return out;
  };
  std::vector<float> one, two;
  with_threads(1, [&] { one = run(); });
  with_threads(2, [&] { two = run(); });
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

}  // namespace
