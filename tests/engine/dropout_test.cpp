// Statistical and stream properties of dropout that the op harness (fixed seed, offset) does not
// cover: the kept fraction, determinism in (seed, offset), fresh masks from the default
// generator, the mean preserved in expectation, identity in evaluation.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/core/random.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

constexpr int64_t kN = 100000;

// Fraction of non-zero elements.
double kept_fraction(const Tensor& y) {
  int64_t kept = 0;
  for (float v : y.to_vector<float>()) kept += v != 0.0f;
  return double(kept) / double(y.numel());
}

TEST(Dropout, KeptFractionIsCloseToOneMinusP) {
  const Tensor x = Tensor::ones({kN});
  for (double p : {0.1, 0.5, 0.9}) {
    const double kept = kept_fraction(ops::dropout(x, p, true, 2024, 0));
    // Binomial standard deviation at n = 1e5 is at most 0.0016; 5 sigma.
    EXPECT_NEAR(kept, 1.0 - p, 0.008) << "p = " << p;
  }
}

TEST(Dropout, KeptValuesAreScaledByOneOverOneMinusP) {
  const Tensor y = ops::dropout(Tensor::ones({1000}), 0.25, true, 5, 0);
  for (float v : y.to_vector<float>()) {
    if (v != 0.0f) {
      EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
    }
  }
}

TEST(Dropout, SameSeedAndOffsetGiveTheSameMask) {
  const Tensor x = Tensor::randn({kN}, 3);
  const Tensor a = ops::dropout(x, 0.3, true, 77, 1000);
  const Tensor b = ops::dropout(x, 0.3, true, 77, 1000);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  // Another offset or seed is another mask.
  EXPECT_NE(a.to_vector<float>(), ops::dropout(x, 0.3, true, 77, 1001).to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), ops::dropout(x, 0.3, true, 78, 1000).to_vector<float>());
}

TEST(Dropout, DefaultGeneratorGivesFreshMasksAndAdvances) {
  const Tensor x = Tensor::ones({kN});
  const uint64_t before = default_generator().offset;
  const Tensor a = ops::dropout(x, 0.5, true);
  const Tensor b = ops::dropout(x, 0.5, true);
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());
  // Each call reserves the Philox blocks of its elements (4 per block).
  EXPECT_EQ(default_generator().offset, before + 2 * ((kN + 3) / 4));
}

TEST(Dropout, ManualSeedReproducesTheDefaultStream) {
  const Tensor x = Tensor::ones({1000});
  manual_seed(123);
  const Tensor a = ops::dropout(x, 0.5, true);
  manual_seed(123);
  const Tensor b = ops::dropout(x, 0.5, true);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Dropout, MeanIsPreservedInExpectation) {
  const Tensor x = Tensor::rand({kN}, 11, 0.5, 1.5, DType::F64);
  const double mean_x = ops::mean(x).item();
  for (double p : {0.1, 0.5}) {
    const double mean_y = ops::mean(ops::dropout(x, p, true, 9, 0)).item();
    // Standard error of the mean of y is about sqrt(p / (1 - p)) / sqrt(n) < 0.0032.
    EXPECT_NEAR(mean_y, mean_x, 0.016) << "p = " << p;
  }
}

TEST(Dropout, EvaluationAndZeroProbabilityAreTheIdentity) {
  Tensor x = Tensor::randn({4, 5}, 1);
  x.requires_grad_(true);
  const uint64_t before = default_generator().offset;
  EXPECT_TRUE(ops::dropout(x, 0.5, false).same(x));
  EXPECT_TRUE(ops::dropout(x, 0.0, true).same(x));
  EXPECT_TRUE(ops::dropout(x, 0.5, false, 1, 2).same(x));
  EXPECT_EQ(default_generator().offset, before) << "evaluation must not consume random numbers";
}

TEST(Dropout, ProbabilityOneDropsEverything) {
  const Tensor y = ops::dropout(Tensor::ones({100}), 1.0, true, 1, 0);
  for (float v : y.to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Dropout, RejectsProbabilitiesOutsideZeroOne) {
  const Tensor x = Tensor::ones({10});
  EXPECT_THROW(ops::dropout(x, -0.1, true, 1, 0), std::invalid_argument);
  EXPECT_THROW(ops::dropout(x, 1.5, true, 1, 0), std::invalid_argument);
  EXPECT_THROW(ops::dropout(x, std::nan(""), true), std::invalid_argument);
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  Tensor x = Tensor::ones({1000});
  x.requires_grad_(true);
  const Tensor y = ops::dropout(x, 0.4, true, 31, 8);
  ops::sum(y).backward();
  // d sum(y) / dx is the mask times 1/(1-p): exactly y for x = 1.
  EXPECT_EQ(x.grad().to_vector<float>(), y.to_vector<float>());
}

}  // namespace
}  // namespace hone
