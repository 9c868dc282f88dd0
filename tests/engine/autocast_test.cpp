// Autocast (engine/autograd/autocast_mode.h): which ops run in 16 bits, which in float32, how
// binary ops promote, and that gradients reach float32 master weights as float32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/device.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

Tensor random_f32(const Shape& s, uint64_t seed) { return Tensor::rand(s, seed, -1.0, 1.0); }

double max_rel_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to(DType::F64).to_vector<double>(), vb = b.to(DType::F64).to_vector<double>();
  double diff = 0, ref = 1e-30;
  for (size_t i = 0; i < va.size(); ++i) diff = std::max(diff, std::abs(va[i] - vb[i])), ref = std::max(ref, std::abs(vb[i]));
  return diff / ref;
}

TEST(Autocast, GuardNestsAndRestores) {
  EXPECT_FALSE(autocast_enabled());
  {
    AutocastGuard bf(DType::BF16);
    EXPECT_EQ(autocast_dtype(), DType::BF16);
    {
      AutocastGuard off(DType::F32);
      EXPECT_FALSE(autocast_enabled());
    }
    EXPECT_EQ(autocast_dtype(), DType::BF16);
  }
  EXPECT_FALSE(autocast_enabled());
  EXPECT_THROW(AutocastGuard(DType::I64), std::invalid_argument);
  EXPECT_THROW(AutocastGuard(DType::F64), std::invalid_argument);
}

TEST(Autocast, MatmulLinearAttentionRunInTheLowerDtype) {
  const Tensor x = random_f32({3, 5, 8}, 1), w = random_f32({6, 8}, 2), b = random_f32({6}, 3);
  for (DType dt : {DType::BF16, DType::F16}) {
    AutocastGuard ac(dt);
    EXPECT_EQ(ops::matmul(x, w.transpose(0, 1)).dtype(), dt);
    const Tensor y = ops::linear(x, w, b);
    EXPECT_EQ(y.dtype(), dt) << "the bias joins the product's dtype";
    const Tensor q = random_f32({1, 2, 5, 4}, 4);
    ops::AttentionArgs args;
    args.causal = true;
    EXPECT_EQ(ops::scaled_dot_product_attention(q, q, q, args).dtype(), dt);
    // float64 is left alone (PyTorch's rule).
    EXPECT_EQ(ops::matmul(x.to(DType::F64), w.to(DType::F64).transpose(0, 1)).dtype(), DType::F64);
  }
  EXPECT_EQ(ops::linear(x, w, b).dtype(), DType::F32) << "autocast off again";
}

TEST(Autocast, NormsSoftmaxLossAndReductionsRunInFloat32) {
  const Tensor h = random_f32({4, 8}, 5).to(DType::BF16);
  const Tensor g = Tensor::ones({8}), z = Tensor::zeros({8});
  {
    AutocastGuard ac(DType::BF16);
    EXPECT_EQ(ops::layer_norm(h, {8}, g, z, 1e-5).dtype(), DType::F32);
    EXPECT_EQ(ops::softmax(h).dtype(), DType::F32);
    EXPECT_EQ(ops::log_softmax(h).dtype(), DType::F32);
    EXPECT_EQ(ops::sum(h).dtype(), DType::F32);
    EXPECT_EQ(ops::mean(h, {1}).dtype(), DType::F32);
    EXPECT_EQ(ops::exp(h).dtype(), DType::F32);
    const Tensor targets = Tensor::from_vector<int64_t>({0, 3, 7, -100}, {4});
    EXPECT_EQ(ops::cross_entropy(h, targets).dtype(), DType::F32);
    // Ops on no list keep their input's dtype.
    EXPECT_EQ(ops::gelu(h).dtype(), DType::BF16);
    EXPECT_EQ(ops::relu(h).dtype(), DType::BF16);
  }
  // Outside autocast a 16-bit input keeps its dtype.
  EXPECT_EQ(ops::layer_norm(h, {8}, g.to(DType::BF16), z.to(DType::BF16), 1e-5).dtype(), DType::BF16);
  EXPECT_EQ(ops::softmax(h).dtype(), DType::BF16);
}

TEST(Autocast, BinaryOpsPromoteToTheWiderDtype) {
  const Tensor a = random_f32({2, 3}, 6), b = random_f32({3}, 7).to(DType::BF16);
  EXPECT_EQ(ops::add(a, b).dtype(), DType::F32);
  EXPECT_EQ(ops::mul(b, a).dtype(), DType::F32);
  EXPECT_EQ(ops::sub(b, a.to(DType::F16)).dtype(), DType::F32) << "bf16 with f16 meets in f32";
  EXPECT_EQ(ops::div(a, a.to(DType::F64)).dtype(), DType::F64);
  // The promoted result equals the sum computed in float32 from the rounded operand.
  EXPECT_LT(max_rel_diff(ops::add(a, b), ops::add(a, b.to(DType::F32))), 1e-7);
  // Gradients come back in each operand's own dtype.
  Tensor ga = a.clone(), gb = b.clone();
  ga.requires_grad_();
  gb.requires_grad_();
  ops::sum(ops::mul(ga, gb)).backward();
  EXPECT_EQ(ga.grad().dtype(), DType::F32);
  EXPECT_EQ(gb.grad().dtype(), DType::BF16);
}

// A two-layer MLP with a loss, as a training step would run it: float32 master weights get
// float32 gradients close to the float32 run's, and the loss is float32.
TEST(Autocast, GradientsReachFloat32MasterWeights) {
  const Tensor x = random_f32({16, 32}, 8);
  const Tensor targets = Tensor::from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7}, {16});
  auto run = [&](DType dt, Tensor& w1g, Tensor& w2g) {
    Tensor w1 = random_f32({64, 32}, 9), w2 = random_f32({8, 64}, 10), ln = Tensor::ones({64}), lb = Tensor::zeros({64});
    w1.requires_grad_();
    w2.requires_grad_();
    Tensor loss;
    {
      AutocastGuard ac(dt);
      const Tensor h = ops::gelu(ops::linear(x, w1));
      const Tensor n = ops::layer_norm(h, {64}, ln, lb, 1e-5);
      loss = ops::cross_entropy(ops::linear(n, w2), targets);
    }
    EXPECT_EQ(loss.dtype(), DType::F32);
    loss.backward();  // outside the guard, as the trainer does
    w1g = w1.grad();
    w2g = w2.grad();
    return loss.item();
  };
  Tensor r1, r2;
  const double ref = run(DType::F32, r1, r2);
  for (DType dt : {DType::BF16, DType::F16}) {
    Tensor g1, g2;
    const double loss = run(dt, g1, g2);
    EXPECT_EQ(g1.dtype(), DType::F32);
    EXPECT_EQ(g2.dtype(), DType::F32);
    // About 3x the errors measured (bf16: loss 4e-4 relative, gradients 7e-3; f16: 1.3e-4, 1e-3).
    const double loss_tol = dt == DType::BF16 ? 1.5e-3 : 5e-4, grad_tol = dt == DType::BF16 ? 2e-2 : 3e-3;
    EXPECT_NEAR(loss, ref, loss_tol * std::abs(ref)) << dtype_name(dt);
    EXPECT_LT(max_rel_diff(g1, r1), grad_tol) << dtype_name(dt);
    EXPECT_LT(max_rel_diff(g2, r2), grad_tol) << dtype_name(dt);
    EXPECT_GT(max_rel_diff(g1, r1), 0.0) << "the 16-bit run should not be bit-identical to float32";
    std::printf("[autocast] %s: loss %.6f vs %.6f, grad rel err %.3g / %.3g\n", dtype_name(dt), loss, ref,
                max_rel_diff(g1, r1), max_rel_diff(g2, r2));
  }
}

// A CNN's conv -> BN -> ReLU under autocast stays 16-bit (BN computes its statistics in float32
// and its float32 weights join the input's dtype); gradients and running statistics stay close to
// the float32 run's, and the parameters' gradients are float32.
// Autocast's casts keep a permuted-dense layout (PyTorch's preserve_format): the bf16 copy of a
// transposed weight is itself a transpose, and the gradient comes back through the cast in that
// layout, so a transposed weight's gradient is dense in the weight's own order. Anything with gaps
// (a narrowed view) is cast to a contiguous tensor; values are the plain cast's either way.
TEST(Autocast, CastsKeepATransposedWeightTransposed) {
  Tensor w = random_f32({6, 10}, 3);
  w.requires_grad_(true);
  const Tensor wt = w.transpose(0, 1);  // [10, 6], strides (1, 10)
  const Tensor c = ops::cast_keep_layout(wt, DType::BF16);
  EXPECT_EQ(c.shape(), (Shape{10, 6}));
  EXPECT_EQ(c.strides(), (Shape{1, 10}));
  EXPECT_EQ(c.to(DType::F32).to_vector<float>(), wt.to(DType::BF16).to(DType::F32).to_vector<float>());
  const Tensor g = Tensor::rand({10, 6}, 4, -1.0, 1.0).to(DType::BF16);
  ops::sum(ops::mul(c, g)).backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_EQ(w.grad().dtype(), DType::F32);
  EXPECT_EQ(w.grad().to_vector<float>(), g.transpose(0, 1).to(DType::F32).contiguous().to_vector<float>());

  const Tensor p = random_f32({2, 3, 4}, 5).permute({2, 0, 1});  // dense in the order (1, 2, 0)
  const Tensor cp = ops::cast_keep_layout(p, DType::F16);
  EXPECT_EQ(cp.strides(), p.strides());
  EXPECT_EQ(cp.to(DType::F32).to_vector<float>(), p.to(DType::F16).to(DType::F32).to_vector<float>());

  const Tensor narrowed = random_f32({4, 9}, 6).narrow(1, 0, 7);  // rows 9 apart: gaps
  const Tensor cn = ops::cast_keep_layout(narrowed, DType::BF16);
  EXPECT_TRUE(cn.is_contiguous());
  EXPECT_EQ(cn.to(DType::F32).to_vector<float>(), narrowed.to(DType::BF16).to(DType::F32).to_vector<float>());
}

TEST(Autocast, ConvBatchNormReluStays16Bit) {
  const Tensor x = random_f32({4, 3, 6, 6}, 20);
  auto run = [&](DType dt, std::vector<Tensor>& grads, Tensor& running_mean) {
    Tensor w = random_f32({5, 3, 3, 3}, 21), gamma = ops::add(random_f32({5}, 22), 1.5), beta = random_f32({5}, 23);
    for (Tensor* t : {&w, &gamma, &beta}) t->requires_grad_();
    running_mean = Tensor::zeros({5});
    Tensor running_var = Tensor::ones({5});
    Tensor y;
    {
      AutocastGuard ac(dt);
      const Tensor c = ops::conv2d(x, w, Tensor(), {});
      const Tensor b = ops::batch_norm(c, running_mean, running_var, gamma, beta, true, 0.1, 1e-5);
      y = ops::relu(b);
      if (dt != DType::F32) {
        EXPECT_EQ(c.dtype(), dt);
        EXPECT_EQ(b.dtype(), dt) << "batch_norm keeps the 16-bit input 16-bit";
        EXPECT_EQ(y.dtype(), dt);
      }
    }
    ops::sum(ops::mul(y.to(DType::F32), random_f32(y.shape(), 24))).backward();
    grads = {w.grad(), gamma.grad(), beta.grad()};
    for (const Tensor& g : grads) EXPECT_EQ(g.dtype(), DType::F32);
    EXPECT_EQ(running_mean.dtype(), DType::F32);
  };
  std::vector<Tensor> ref, got;
  Tensor rm_ref, rm;
  run(DType::F32, ref, rm_ref);
  run(DType::BF16, got, rm);
  // About 3x the errors measured (gradients 4.9e-3 / 2.5e-3 / 1.9e-3, running mean 1.8e-3).
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_LT(max_rel_diff(got[i], ref[i]), 1.5e-2) << "gradient " << i;
  EXPECT_LT(max_rel_diff(rm, rm_ref), 6e-3) << "running mean";
  std::printf("[autocast] conv-bn-relu bf16: grad rel err %.3g / %.3g / %.3g, running mean %.3g\n",
              max_rel_diff(got[0], ref[0]), max_rel_diff(got[1], ref[1]), max_rel_diff(got[2], ref[2]),
              max_rel_diff(rm, rm_ref));
}

// A pre-LN block's add_layer_norm whose normed output feeds a matmul (normed_feeds_matmul): under
// autocast it reads the 16-bit input as is and writes normed in bf16, with the same values as the
// float32 op followed by the cast the matmul would make, and the same gradients. On the CPU and,
// with a device, on CUDA.
TEST(Autocast, AddLayerNormForAMatmulWritesTheCastValues) {
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(Device::cuda(0));
  for (const Device& dev : devices) {
    const Tensor w1 = random_f32({3, 5, 24}, 9).to(dev), w2 = random_f32({3, 5, 24}, 10).to(dev);
    Tensor results[2][6];
    for (int fused = 0; fused < 2; ++fused) {
      const Tensor x16 = random_f32({3, 5, 24}, 1).to(DType::BF16).to(dev).requires_grad_(true);
      const Tensor stream = random_f32({3, 5, 24}, 2).to(dev).requires_grad_(true);
      const Tensor w = random_f32({24}, 3).to(dev).requires_grad_(true),
                   b = random_f32({24}, 4).to(dev).requires_grad_(true);
      ops::AddLayerNormResult r;
      {
        AutocastGuard ac(DType::BF16);
        r = ops::add_layer_norm(stream, x16, w, b, 1e-5, fused == 1);
      }
      EXPECT_EQ(r.normed.dtype(), fused ? DType::BF16 : DType::F32) << dev.str();
      EXPECT_EQ(r.sum.dtype(), DType::F32) << dev.str();
      ops::add(ops::sum(ops::mul(r.normed.to(DType::F32), w1)), ops::sum(ops::mul(r.sum, w2))).backward();
      results[fused][0] = r.normed.to(DType::BF16);
      results[fused][1] = r.sum;
      results[fused][2] = x16.grad();
      results[fused][3] = stream.grad();
      results[fused][4] = w.grad();
      results[fused][5] = b.grad();
    }
    const char* what[] = {"normed (as bf16)", "sum", "x grad", "stream grad", "weight grad", "bias grad"};
    for (int i = 0; i < 6; ++i) {
      // normed and sum are bit for bit; the gradients differ only where normed's gradient was rounded
      // to bf16 on the way back through the matmul's cast (the fused op receives it in bf16 directly).
      const double tol = i < 2 ? 0.0 : 1e-2;
      EXPECT_LE(max_rel_diff(results[1][i].to(Device::cpu()), results[0][i].to(Device::cpu())), tol)
          << what[i] << " on " << dev.str();
    }
  }
}

TEST(Autocast, BackwardRunsOutsideAutocast) {
  // A backward started inside the guard still computes each gradient in its forward's dtype.
  Tensor w = random_f32({4, 4}, 11);
  w.requires_grad_();
  const Tensor x = random_f32({2, 4}, 12).to(DType::F64);
  AutocastGuard ac(DType::BF16);
  ops::sum(ops::matmul(x, w.to(DType::F64))).backward();
  EXPECT_EQ(w.grad().dtype(), DType::F32);
  EXPECT_EQ(autocast_dtype(), DType::BF16) << "the guard's mode is back after backward";
}

}  // namespace
}  // namespace hone
