// The CUDA cross-entropy's gradient formed in the forward (kernels/cuda/loss.cu, engine/ops/loss.cpp):
// equal to the one the backward forms from the saved logits (HONE_CE_GRAD_IN_FORWARD=0) for an
// upstream gradient of 1 and scaled for others; kept intact by a retained graph; and not used for
// f16 logits, where it would underflow before a loss scale reached it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops/ops.h"
#include "kernels/runtime.h"
#include "scoped_env.h"

#if defined(HONE_CUDA_EMULATED)
#include "cuda_emu/counters.h"
#endif

namespace hone::test {
namespace {

// Targets in [0, C) with every fifth ignored (-100).
Tensor some_ignored_targets(int64_t rows, int64_t C) {
  std::vector<int64_t> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) t[size_t(r)] = r % 5 == 3 ? -100 : (r * 37 + 11) % C;
  return Tensor::from_vector(t, {rows}).to(Device::cuda());
}

struct LossAndGrad {
  double loss = 0;
  std::vector<double> grad;
};

// The loss of logits (rows x C, dtype; through a GEMM whose rows are padded when `through_gemm`) and
// the gradient reaching the leaf, for an upstream gradient `upstream`.
LossAndGrad run(DType dtype, int64_t rows, int64_t C, bool through_gemm, double upstream, bool grad_in_forward) {
  ScopedEnv env("HONE_CE_GRAD_IN_FORWARD", grad_in_forward ? nullptr : "0");
  Tensor leaf = through_gemm ? Tensor::rand({rows, 24}, 5, -1.0, 1.0) : Tensor::rand({rows, C}, 5, -4.0, 4.0);
  leaf = leaf.to(dtype).to(Device::cuda());
  leaf.requires_grad_(true);
  const Tensor w = Tensor::rand({C, 24}, 6, -1.0, 1.0).to(dtype).to(Device::cuda());
  const Tensor logits = through_gemm ? ops::matmul(leaf, w.transpose(0, 1)) : leaf;
  const Tensor loss = ops::cross_entropy(logits, some_ignored_targets(rows, C), -100, 0.1);
  ops::mul(loss, upstream).backward();
  return {loss.item(), leaf.grad().to_vector<double>()};
}

// Launches of a kernel so far (the CUDA emulator counts them; 0 elsewhere).
uint64_t launches_of(const std::string& kernel) {
#if defined(HONE_CUDA_EMULATED)
  const auto all = emu::launches();
  const auto it = all.find(kernel);
  return it == all.end() ? 0 : it->second;
#else
  (void)kernel;
  return 0;
#endif
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

TEST(CrossEntropyCuda, GradientFormedInTheForwardMatchesTheBackwards) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  // 1003 classes: rows not 16-byte aligned (element by element); through the GEMM: padded, aligned rows.
  for (const DType dtype : {DType::F32, DType::BF16})
    for (const bool through_gemm : {false, true})
      for (const double upstream : {1.0, 0.37}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + (through_gemm ? " after a GEMM" : " leaf") + " upstream " +
                     std::to_string(upstream));
        const LossAndGrad fused = run(dtype, 37, 1003, through_gemm, upstream, true);
        const LossAndGrad plain = run(dtype, 37, 1003, through_gemm, upstream, false);
        EXPECT_EQ(fused.loss, plain.loss);  // the same forward
        ASSERT_EQ(fused.grad.size(), plain.grad.size());
        if (upstream == 1.0) {
          // The same arithmetic: (softmax - target) * (1 / count), bit for bit.
          for (size_t i = 0; i < fused.grad.size(); ++i) ASSERT_EQ(fused.grad[i], plain.grad[i]) << i;
        } else {
          // Rounded to the dtype once more (before the scaling) than the backward's.
          const double tol = (dtype == DType::BF16 ? 2e-2 : 1e-6) * max_abs(plain.grad);
          for (size_t i = 0; i < fused.grad.size(); ++i) ASSERT_NEAR(fused.grad[i], plain.grad[i], tol) << i;
        }
        EXPECT_GT(max_abs(plain.grad), 1e-4);
      }
}

// Formed for the upstream gradient LossGradScaleGuard expects (a gradient accumulation weight): equal,
// bit for bit, to the backward's gradient when that one comes; right, to a rounding, when another does.
// 0.375: a bf16 loss (bf16 logits outside autocast) rounds its gradient to bf16, and 0.375 is one.
TEST(CrossEntropyCuda, GradientFormedForTheExpectedUpstreamGradient) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  for (const DType dtype : {DType::F32, DType::BF16})
    for (const bool through_gemm : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + (through_gemm ? " after a GEMM" : " leaf"));
      const LossAndGrad plain = run(dtype, 37, 1003, through_gemm, 0.375, false);
      LossAndGrad expected, other;
      {
        ops::LossGradScaleGuard guard(0.375);
        expected = run(dtype, 37, 1003, through_gemm, 0.375, true);
      }
      {
        ops::LossGradScaleGuard guard(0.5);
        other = run(dtype, 37, 1003, through_gemm, 0.375, true);
      }
      ASSERT_EQ(expected.grad.size(), plain.grad.size());
      for (size_t i = 0; i < plain.grad.size(); ++i) ASSERT_EQ(expected.grad[i], plain.grad[i]) << i;
      const double tol = (dtype == DType::BF16 ? 2e-2 : 1e-6) * max_abs(plain.grad);
      for (size_t i = 0; i < plain.grad.size(); ++i) ASSERT_NEAR(other.grad[i], plain.grad[i], tol) << i;
    }
}

// Ignored rows get zero gradient rows, every row ignored gives zeros (and a zero loss).
TEST(CrossEntropyCuda, GradientFormedInTheForwardIsZeroForIgnoredRows) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  Tensor x = Tensor::rand({10, 40}, 3, -2.0, 2.0).to(Device::cuda());
  x.requires_grad_(true);
  const Tensor targets = some_ignored_targets(10, 40);
  ops::mul(ops::cross_entropy(x, targets), 2.0).backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  const std::vector<int64_t> t = targets.to_vector<int64_t>();
  for (int64_t r = 0; r < 10; ++r) {
    double row = 0;
    for (int64_t c = 0; c < 40; ++c) row += std::abs(g[size_t(r * 40 + c)]);
    if (t[size_t(r)] == -100)
      EXPECT_EQ(row, 0.0) << "row " << r;
    else
      EXPECT_GT(row, 0.0) << "row " << r;
  }
  Tensor y = Tensor::rand({4, 40}, 4, -2.0, 2.0).to(Device::cuda());
  y.requires_grad_(true);
  const Tensor loss = ops::cross_entropy(y, Tensor::full({4}, -100, DType::I64).to(Device::cuda()));
  loss.backward();
  EXPECT_EQ(loss.item(), 0.0);
  EXPECT_EQ(max_abs(y.grad().to_vector<double>()), 0.0);
}

// The backward scales the forward's gradient in place only when its node is released after it: with
// retain_graph the second backward must see the forward's gradient unchanged (a leaf's .grad then
// holds exactly twice the first one, also for an upstream gradient that is not 1).
TEST(CrossEntropyCuda, RetainedGraphKeepsTheForwardsGradient) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  for (const DType dtype : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor x = Tensor::rand({9, 33}, 8, -3.0, 3.0).to(dtype).to(Device::cuda());
    x.requires_grad_(true);
    const Tensor loss = ops::mul(ops::cross_entropy(x, some_ignored_targets(9, 33)), 0.75);
    loss.backward(Tensor(), /*retain_graph=*/true);
    const std::vector<double> once = x.grad().to_vector<double>();
    loss.backward();
    const std::vector<double> twice = x.grad().to_vector<double>();
    ASSERT_EQ(once.size(), twice.size());
    for (size_t i = 0; i < once.size(); ++i) ASSERT_EQ(twice[i], 2 * once[i]) << i;
    EXPECT_GT(max_abs(once), 1e-3);
  }
}

// f16 logits keep the backward's gradient unless the upstream gradient is declared: (softmax - target)
// / count for 4096 rows of 1000 classes is ~2.4e-7, under f16's smallest normal (6.1e-5), and would
// lose its digits before a loss scale of 2^15 lifted it; the backward scales first.
TEST(CrossEntropyCuda, F16GradientSurvivesALossScale) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  const int64_t rows = 4096, C = 1000;
  const Tensor values = Tensor::rand({rows, C}, 12, -1.0, 1.0);
  Tensor x = values.to(DType::F16).to(Device::cuda());
  x.requires_grad_(true);
  const Tensor targets = some_ignored_targets(rows, C);
  ops::mul(ops::cross_entropy(x, targets), 32768.0).backward();
  Tensor ref = values.to(DType::F16).to(DType::F32);  // the same values, on the CPU in float32
  ref.requires_grad_(true);
  ops::mul(ops::cross_entropy(ref, targets.to(Device::cpu())), 32768.0).backward();
  const std::vector<double> got = x.grad().to_vector<double>(), want = ref.grad().to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-2 * std::abs(want[i]) + 1e-6) << i;
  // Declared (as the Trainer declares its loss scale), f16 logits get their gradient formed in the
  // forward for it: the backward's gradient, bit for bit.
  Tensor y = values.to(DType::F16).to(Device::cuda());
  y.requires_grad_(true);
  const uint64_t formed_before = launches_of("ce_scale_grad_kernel");
  {
    ops::LossGradScaleGuard scale(32768.0);
    ops::mul(ops::cross_entropy(y, targets), 32768.0).backward();
  }
  EXPECT_EQ(y.grad().to_vector<double>(), got);
#if defined(HONE_CUDA_EMULATED)
  EXPECT_EQ(launches_of("ce_scale_grad_kernel"), formed_before + 1) << "the gradient was not formed in the forward";
#else
  (void)formed_before;
#endif
}

}  // namespace
}  // namespace hone::test
