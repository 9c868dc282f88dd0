// The vectorisable float exp/tanh/erf (kernels/cpu/fast_math.h) against libm in double, over a
// dense grid: the error bounds its header promises, NaN propagation, and saturation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "kernels/cpu/fast_math.h"

namespace hone::kernels::cpu::fast {
namespace {

struct Worst {
  double err = 0, at = 0;
  void update(double e, double x) {
    if (e > err) err = e, at = x;
  }
};

TEST(FastMath, ExpRelativeErrorBelow2e7) {
  Worst w;
  for (double x = -87.0; x <= 88.0; x += 1.3e-4) {
    const double ref = std::exp(double(float(x)));
    w.update(std::abs(double(exp_f(float(x))) - ref) / ref, x);
  }
  std::printf("[fast_math] exp   worst relative error %.3g at %.4f\n", w.err, w.at);
  EXPECT_LT(w.err, 2e-7);
  EXPECT_EQ(exp_f(0.0f), 1.0f);
  EXPECT_GT(exp_f(1000.0f), 1e38f) << "saturates at e^88.3 instead of overflowing";
  EXPECT_LT(exp_f(-1000.0f), 2e-38f);
  EXPECT_GE(exp_f(-1000.0f), 0.0f);
}

TEST(FastMath, TanhAbsoluteErrorBelow1e7AndRelativeNearZero) {
  Worst abs_w, rel_w;
  for (double x = -12.0; x <= 12.0; x += 1.1e-5) {
    const float xf = float(x);
    const double ref = std::tanh(double(xf)), got = tanh_f(xf);
    abs_w.update(std::abs(got - ref), x);
    if (std::abs(xf) < 0.7f && xf != 0) rel_w.update(std::abs(got - ref) / std::abs(ref), x);
  }
  std::printf("[fast_math] tanh  worst absolute error %.3g at %.5f, relative below 0.7 %.3g at %.5f\n", abs_w.err,
              abs_w.at, rel_w.err, rel_w.at);
  EXPECT_LT(abs_w.err, 1.5e-7);
  EXPECT_LT(rel_w.err, 3e-7);
  EXPECT_EQ(tanh_f(0.0f), 0.0f);
  EXPECT_EQ(tanh_f(50.0f), 1.0f);
  EXPECT_EQ(tanh_f(-50.0f), -1.0f);
  EXPECT_EQ(tanh_f(std::numeric_limits<float>::infinity()), 1.0f);
  EXPECT_EQ(tanh_f(-std::numeric_limits<float>::infinity()), -1.0f);
}

TEST(FastMath, ErfAbsoluteErrorBelow6e7) {
  Worst w;
  for (double x = -8.0; x <= 8.0; x += 1.3e-5) {
    const float xf = float(x);
    w.update(std::abs(double(erf_f(xf)) - std::erf(double(xf))), x);
  }
  std::printf("[fast_math] erf   worst absolute error %.3g at %.5f\n", w.err, w.at);
  EXPECT_LT(w.err, 6e-7);
  EXPECT_EQ(erf_f(10.0f), 1.0f);
  EXPECT_EQ(erf_f(-10.0f), -1.0f);
}

TEST(FastMath, NanInNanOut) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(exp_f(nan)));
  EXPECT_TRUE(std::isnan(tanh_f(nan)));
  EXPECT_TRUE(std::isnan(erf_f(nan)));
}

}  // namespace
}  // namespace hone::kernels::cpu::fast
