// batch_norm's running statistics: the PyTorch update rule in training (momentum, unbiased
// variance, an in-place write that bumps the version counter), the running statistics in eval
// mode, and a frozen (eval) batch norm whose statistics stay bit-identical through training steps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/storage.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

std::vector<double> vals(const Tensor& t) { return t.detach().to_vector<double>(); }

std::vector<uint8_t> bytes(const Tensor& t) {
  const Tensor c = t.detach().contiguous();
  const uint8_t* p = static_cast<const uint8_t*>(c.data_ptr());
  return std::vector<uint8_t>(p, p + c.nbytes());
}

// Per-channel mean and unbiased variance of x [N, C, ...] in double.
void channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var_unbiased) {
  const std::vector<double> v = vals(x);
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C), M = N * S;
  mean.assign(C, 0.0);
  var_unbiased.assign(C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) mean[c] += v[(n * C + c) * S + i] / double(M);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) {
        const double d = v[(n * C + c) * S + i] - mean[c];
        var_unbiased[c] += d * d / double(M - 1);
      }
  }
}

TEST(BatchNorm, TrainingUpdatesRunningStatsLikePyTorch) {
  const Tensor x = Tensor::rand({4, 3, 5, 5}, 11, -2.0, 3.0);
  Tensor rm = Tensor::rand({3}, 12, -1.0, 1.0);
  Tensor rv = Tensor::rand({3}, 13, 0.5, 2.0);
  const std::vector<double> rm0 = vals(rm), rv0 = vals(rv);
  const uint64_t v_mean = rm.storage()->version(), v_var = rv.storage()->version();
  const double momentum = 0.3;
  ops::batch_norm(x, rm, rv, Tensor(), Tensor(), true, momentum, 1e-5);
  std::vector<double> mean, var;
  channel_stats(x, mean, var);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(vals(rm)[c], (1 - momentum) * rm0[c] + momentum * mean[c], 1e-6) << c;
    EXPECT_NEAR(vals(rv)[c], (1 - momentum) * rv0[c] + momentum * var[c], 1e-6) << c;
  }
  EXPECT_GT(rm.storage()->version(), v_mean);
  EXPECT_GT(rv.storage()->version(), v_var);

  // A second step compounds: running = (1 - m) running + m batch again.
  const std::vector<double> rm1 = vals(rm), rv1 = vals(rv);
  const Tensor x2 = Tensor::rand({4, 3, 5, 5}, 14, -1.0, 1.0);
  ops::batch_norm(x2, rm, rv, Tensor(), Tensor(), true, momentum, 1e-5);
  channel_stats(x2, mean, var);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(vals(rm)[c], (1 - momentum) * rm1[c] + momentum * mean[c], 1e-6) << c;
    EXPECT_NEAR(vals(rv)[c], (1 - momentum) * rv1[c] + momentum * var[c], 1e-6) << c;
  }
}

// The normalisation itself uses the biased batch variance (only the running update is unbiased).
TEST(BatchNorm, TrainingNormalisesWithBiasedBatchVariance) {
  const Tensor x = Tensor::rand({3, 2, 4}, 21, -2.0, 2.0, DType::F64);
  const Tensor y = ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0);
  const std::vector<double> yv = vals(y);
  for (int c = 0; c < 2; ++c) {
    double s = 0, ss = 0;
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 4; ++i) {
        const double v = yv[(n * 2 + c) * 4 + i];
        s += v;
        ss += v * v;
      }
    EXPECT_NEAR(s / 12, 0.0, 1e-12);
    EXPECT_NEAR(ss / 12, 1.0, 1e-12);  // biased: mean of squares exactly 1
  }
}

// 16-bit activations with float32 running statistics (mixed precision): the update is in float32.
TEST(BatchNorm, Bf16InputUpdatesFloat32RunningStats) {
  const Tensor x = Tensor::rand({8, 2, 3, 3}, 31, -1.0, 1.0).to(DType::BF16);
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  const Tensor y = ops::batch_norm(x, rm, rv, Tensor::ones({2}, DType::BF16), Tensor::zeros({2}, DType::BF16), true);
  EXPECT_EQ(y.dtype(), DType::BF16);
  EXPECT_EQ(rm.dtype(), DType::F32);
  std::vector<double> mean, var;
  channel_stats(x.to(DType::F64), mean, var);
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(vals(rm)[c], 0.1 * mean[c], 1e-6);
    EXPECT_NEAR(vals(rv)[c], 0.9 + 0.1 * var[c], 1e-6);
  }
}

TEST(BatchNorm, EvalUsesRunningStats) {
  const Tensor x = Tensor::rand({2, 3, 4, 4}, 41, -2.0, 2.0, DType::F64);
  const Tensor rm = Tensor::from_vector(std::vector<double>{0.5, -1.0, 2.0}, {3});
  const Tensor rv = Tensor::from_vector(std::vector<double>{0.25, 4.0, 1.0}, {3});
  const Tensor w = Tensor::from_vector(std::vector<double>{2.0, 1.0, -1.0}, {3});
  const Tensor b = Tensor::from_vector(std::vector<double>{0.0, 1.0, 3.0}, {3});
  const std::vector<uint8_t> rm_before = bytes(rm), rv_before = bytes(rv);
  const Tensor y = ops::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
  const std::vector<double> xv = vals(x), yv = vals(y), m = vals(rm), v = vals(rv), wv = vals(w), bv = vals(b);
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / 16) % 3;
    EXPECT_NEAR(yv[i], (xv[i] - m[c]) / std::sqrt(v[c] + 1e-5) * wv[c] + bv[c], 1e-12) << i;
  }
  EXPECT_EQ(bytes(rm), rm_before);
  EXPECT_EQ(bytes(rv), rv_before);
}

// A frozen batch norm (eval mode, e.g. a fine-tuned backbone's) inside training steps: x, weight
// and bias get gradients, and the running statistics stay bit-identical, version counter too.
TEST(BatchNorm, FrozenRunningStatsAreBitIdenticalAfterTrainingSteps) {
  Tensor rm = Tensor::rand({4}, 51, -1.0, 1.0);
  Tensor rv = Tensor::rand({4}, 52, 0.5, 2.0);
  Tensor w = Tensor::rand({4}, 53, 0.5, 1.5);
  Tensor b = Tensor::rand({4}, 54, -0.5, 0.5);
  w.requires_grad_(true);
  b.requires_grad_(true);
  const std::vector<uint8_t> rm0 = bytes(rm), rv0 = bytes(rv);
  const uint64_t vm = rm.storage()->version(), vv = rv.storage()->version();
  for (int step = 0; step < 3; ++step) {
    Tensor x = Tensor::rand({5, 4, 3, 3}, 60 + step, -2.0, 2.0);
    x.requires_grad_(true);
    const Tensor y = ops::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
    ops::sum(ops::mul(y, y)).backward();
    ASSERT_TRUE(x.grad().defined());
    ASSERT_TRUE(w.grad().defined());
    ASSERT_TRUE(b.grad().defined());
    // Eval backward: dx = dy * w / sqrt(rv + eps) (no batch-statistics terms).
    const std::vector<double> gx = vals(x.grad()), yv = vals(y), wv = vals(w), rvv = vals(rv);
    for (size_t i = 0; i < gx.size(); ++i) {
      const size_t c = (i / 9) % 4;
      EXPECT_NEAR(gx[i], 2 * yv[i] * wv[c] / std::sqrt(rvv[c] + 1e-5), 1e-4) << i;
    }
    w.zero_grad();
    b.zero_grad();
  }
  EXPECT_EQ(bytes(rm), rm0);
  EXPECT_EQ(bytes(rv), rv0);
  EXPECT_EQ(rm.storage()->version(), vm);
  EXPECT_EQ(rv.storage()->version(), vv);
}

// Training-mode backward: with a loss that only depends on the per-channel sum of y, the
// gradient of x vanishes (y's per-channel mean is always the bias).
TEST(BatchNorm, TrainingBackwardRemovesTheMeanDirection) {
  Tensor x = Tensor::rand({4, 2, 3}, 71, -1.0, 1.0, DType::F64);
  x.requires_grad_(true);
  const Tensor y = ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  ops::sum(y).backward();
  for (double g : vals(x.grad())) EXPECT_NEAR(g, 0.0, 1e-12);
}

}  // namespace
}  // namespace hone
