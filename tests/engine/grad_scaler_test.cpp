// Dynamic loss scaling (engine/optim/grad_scaler.h): the scale's back-off and growth sequence,
// unscaling, and validation of options and saved state.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "engine/optim/grad_scaler.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

TEST(GradScaler, BacksOffOnOverflowAndGrowsAfterTheIntervalOfCleanSteps) {
  GradScaler s({/*init_scale=*/1024, /*growth_factor=*/2, /*backoff_factor=*/0.5, /*growth_interval=*/3});
  EXPECT_EQ(s.scale(), 1024);
  s.update(true);
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.skipped_steps(), 1);
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 512) << "two clean steps are not yet the interval";
  EXPECT_EQ(s.growth_tracker(), 2);
  s.update(true);  // an overflow restarts the count
  EXPECT_EQ(s.scale(), 256);
  EXPECT_EQ(s.growth_tracker(), 0);
  for (int i = 0; i < 3; ++i) s.update(false);
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.growth_tracker(), 0);
  EXPECT_EQ(s.skipped_steps(), 2);
}

TEST(GradScaler, NeverGrowsPastFloat32) {
  GradScaler s({1e38, 4, 0.5, 1});
  s.update(false);
  EXPECT_EQ(s.scale(), 1e38);
}

TEST(GradScaler, ScaleLossAndUnscaleGradients) {
  GradScaler s({8, 2, 0.5, 10});
  Tensor w = Tensor::from_vector<float>({1, -2, 3}, {3});
  w.requires_grad_();
  Tensor frozen = Tensor::from_vector<float>({5}, {1});  // no gradient: left alone
  const Tensor loss = ops::sum(ops::mul(w, w));
  const Tensor scaled = s.scale_loss(loss);
  EXPECT_FLOAT_EQ(scaled.item(), 8 * 14);
  scaled.backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{16, -32, 48}));
  s.unscale({w, frozen});
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{2, -4, 6}));
  EXPECT_FALSE(frozen.grad().defined());
}

TEST(GradScaler, RejectsBadOptionsAndState) {
  EXPECT_THROW(GradScaler({0, 2, 0.5, 10}), std::invalid_argument);
  EXPECT_THROW(GradScaler({INFINITY, 2, 0.5, 10}), std::invalid_argument);
  EXPECT_THROW(GradScaler({8, 1, 0.5, 10}), std::invalid_argument);
  EXPECT_THROW(GradScaler({8, 2, 1.5, 10}), std::invalid_argument);
  EXPECT_THROW(GradScaler({8, 2, 0.5, 0}), std::invalid_argument);
  GradScaler s;
  EXPECT_THROW(s.load_state({-1, 0, 0}), std::invalid_argument);
  EXPECT_THROW(s.load_state({NAN, 0, 0}), std::invalid_argument);
  s.load_state({128, 7, 3});
  EXPECT_EQ(s.scale(), 128);
  EXPECT_EQ(s.growth_tracker(), 7);
  EXPECT_EQ(s.skipped_steps(), 3);
}

}  // namespace
}  // namespace hone
