// ops::scaled_dot_product_attention on CUDA: bf16/f16 through cuDNN's fused SDPA (forward and the
// autograd backward) against the float32 op (our kernel) on the same values, and the calls that
// must run our kernel, each saying why (kernels::last_attention_path). Skipped without a device
// (and the cuDNN expectations without a build that has the cuDNN frontend).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd/autocast_mode.h"
#include "engine/ops/ops.h"
#include "kernels/attention.h"
#include "scoped_env.h"
#include "kernels/runtime.h"

namespace hone {
namespace {

constexpr bool kBuiltWithCudnnSdpa =
#if defined(HONE_HAVE_CUDNN_SDPA)
    true;
#else
    false;
#endif

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Max |a - b| over max(1, max |b|): a and b any floating dtype and device.
double scaled_error(const Tensor& a, const Tensor& b) {
  const auto va = a.to(Device::cpu()).to(DType::F64).to_vector<double>();
  const auto vb = b.to(Device::cpu()).to(DType::F64).to_vector<double>();
  double diff = 0, ref = 1;
  for (size_t i = 0; i < va.size(); ++i) {
    const double d = std::abs(va[i] - vb[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    ref = std::max(ref, std::abs(vb[i]));
  }
  return diff / ref;
}

// q, k, v of [B, H, T, D] in dtype on the device (values rounded to that dtype), leaves that
// require grad.
std::vector<Tensor> qkv(int64_t B, int64_t H, int64_t T, int64_t D, DType dtype, uint64_t seed) {
  std::vector<Tensor> out;
  for (uint64_t i = 0; i < 3; ++i) {
    Tensor t = Tensor::rand({B, H, T, D}, seed + i, -1.0, 1.0).to(dtype).to(Device::cuda());
    out.push_back(t.detach().requires_grad_(true));
  }
  return out;
}

// The same values in float32, as fresh leaves.
std::vector<Tensor> as_f32(const std::vector<Tensor>& xs) {
  std::vector<Tensor> out;
  for (const Tensor& x : xs) out.push_back(x.detach().to(DType::F32).requires_grad_(true));
  return out;
}

// HONE_DETERMINISTIC=0: the backward takes cuDNN's non-deterministic algorithm (the path says so),
// and its gradients are the deterministic one's to 16-bit rounding; by default it is deterministic.
TEST(CudaAttentionPath, NonDeterministicBackwardOnlyWhenAllowed) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  if (!kBuiltWithCudnnSdpa) GTEST_SKIP() << "built without the cuDNN frontend";
  const int64_t B = 2, H = 2, T = 40, D = 32;
  const Tensor w = Tensor::rand({B, H, T, D}, 98, -1.0, 1.0).to(Device::cuda());
  std::vector<std::vector<double>> grads;
  for (const char* deterministic : {static_cast<const char*>(nullptr), "0"}) {
    const test::ScopedEnv env("HONE_DETERMINISTIC", deterministic);
    ops::AttentionArgs args;
    args.causal = true;
    std::vector<Tensor> in = qkv(B, H, T, D, DType::BF16, 11);
    const Tensor out = ops::scaled_dot_product_attention(in[0], in[1], in[2], args);
    ops::sum(ops::mul(out.to(DType::F32), w)).backward();
    const std::string path = kernels::last_attention_path();
    EXPECT_TRUE(starts_with(path, "cuDNN fused SDPA (bf16, causal")) << path;
    EXPECT_EQ(path.find("non-deterministic") != std::string::npos, deterministic != nullptr) << path;
    grads.push_back(in[0].grad().to_vector<double>());
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) ASSERT_NEAR(grads[0][i], grads[1][i], 2e-2) << i;
}

TEST(CudaAttentionPath, Bf16AndF16TrainingRunCudnnAndMatchFloat32) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  if (!kBuiltWithCudnnSdpa) GTEST_SKIP() << "built without the cuDNN frontend";
  const int64_t B = 2, H = 4, T = 96, D = 64;
  // Batch 1 is left-padded: with the causal mask its first queries see no key at all.
  std::vector<uint8_t> valid(B * T, 1);
  for (int64_t j = 0; j < 20; ++j) valid[T + j] = 0;
  const Tensor mask = Tensor::from_vector(valid, {B, T}).to(Device::cuda());
  const Tensor w = Tensor::rand({B, H, T, D}, 99, -1.0, 1.0).to(Device::cuda());  // loss weights
  // With dropout (fixed seed and offset), cuDNN reads our Philox mask: the float32 op on our kernel drops
  // the same probabilities, so the two still agree within 16-bit tolerances.
  for (DType dt : {DType::BF16, DType::F16}) {
    for (auto [padded, dropout] : {std::pair{false, 0.0}, std::pair{true, 0.0}, std::pair{true, 0.1}}) {
      ops::AttentionArgs args;
      args.causal = true;
      if (padded) args.key_padding_mask = mask;
      args.dropout_p = dropout;
      args.fixed_rng = true;
      args.seed = 2024;
      args.offset = 9;
      std::vector<Tensor> in = qkv(B, H, T, D, dt, 10);
      const Tensor out = ops::scaled_dot_product_attention(in[0], in[1], in[2], args);
      // (A "; non-deterministic backward" suffix would say cuDNN had no deterministic backward plan.)
      const std::string path = kernels::last_attention_path();
      const std::string want = std::string("cuDNN fused SDPA (") + (dt == DType::BF16 ? "bf16" : "f16") + ", causal" +
                               (padded ? ", padding mask" : "") + (dropout > 0 ? ", dropout" : "");
      EXPECT_TRUE(starts_with(path, want)) << path;
      std::printf("[cuda] attention path: %s\n", path.c_str());
      EXPECT_EQ(out.dtype(), dt);
      EXPECT_TRUE(out.device().is_cuda());
      ops::sum(ops::mul(out.to(DType::F32), w)).backward();

      std::vector<Tensor> ref = as_f32(in);
      const Tensor ref_out = ops::scaled_dot_product_attention(ref[0], ref[1], ref[2], args);
      EXPECT_EQ(kernels::last_attention_path(), "cuBLAS GEMMs (float32 inputs)");
      ops::sum(ops::mul(ref_out, w)).backward();

      const double tol = dt == DType::BF16 ? 2e-2 : 5e-3;
      const std::string tag = std::string(dtype_name(dt)) + (padded ? " padded" : "") + (dropout > 0 ? " dropout" : "");
      EXPECT_LT(scaled_error(out, ref_out), tol) << tag << " output";
      for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(in[i].grad().defined()) << tag << " input " << i;
        EXPECT_EQ(in[i].grad().dtype(), dt) << tag << " input " << i;
        EXPECT_LT(scaled_error(in[i].grad(), ref[i].grad()), 2 * tol) << tag << " gradient of input " << i;
      }
    }
  }
}

// GPT-2's packed form: cuDNN reads q, k, v in place in the [B, T, 3C] projection and writes the
// merged [B, T, C] output and the [B, T, 3C] gradient; the same numbers as the float32 op.
TEST(CudaAttentionPath, PackedQkvRunsCudnnInPlaceAndMatchesFloat32) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  if (!kBuiltWithCudnnSdpa) GTEST_SKIP() << "built without the cuDNN frontend";
  const int64_t B = 2, H = 3, T = 40, D = 64, C = H * D;
  const Tensor w = Tensor::rand({B, T, C}, 98, -1.0, 1.0).to(Device::cuda());  // loss weights
  for (DType dt : {DType::BF16, DType::F16}) {
    for (double dropout : {0.0, 0.1}) {
      ops::AttentionArgs args;
      args.causal = true;
      args.dropout_p = dropout;
      args.fixed_rng = true;
      args.seed = 77;
      args.offset = 5;
      const Tensor qkv = Tensor::rand({B, T, 3 * C}, 11, -1.0, 1.0).to(dt).to(Device::cuda()).requires_grad_(true);
      const Tensor out = ops::scaled_dot_product_attention_qkv(qkv, H, args);
      const std::string path = kernels::last_attention_path();
      EXPECT_TRUE(starts_with(path, std::string("cuDNN fused SDPA (") + (dt == DType::BF16 ? "bf16" : "f16") +
                                        ", causal" + (dropout > 0 ? ", dropout" : "") + ", packed qkv)"))
          << path;
      ASSERT_EQ(out.shape(), (Shape{B, T, C}));
      ops::sum(ops::mul(out.to(DType::F32), w)).backward();

      const Tensor ref_in = qkv.detach().to(DType::F32).requires_grad_(true);
      const Tensor ref = ops::scaled_dot_product_attention_qkv(ref_in, H, args);
      EXPECT_EQ(kernels::last_attention_path(), "cuBLAS GEMMs (float32 inputs)");
      ops::sum(ops::mul(ref, w)).backward();
      const double tol = dt == DType::BF16 ? 2e-2 : 5e-3;
      const std::string tag = std::string(dtype_name(dt)) + (dropout > 0 ? " dropout" : "");
      EXPECT_LT(scaled_error(out, ref), tol) << tag << " output";
      ASSERT_TRUE(qkv.grad().defined()) << tag;
      EXPECT_EQ(qkv.grad().dtype(), dt) << tag;
      EXPECT_LT(scaled_error(qkv.grad(), ref_in.grad()), 2 * tol) << tag << " gradient";
    }
  }
}

using test::ScopedEnv;

TEST(CudaAttentionPath, OurKernelRunsWhereCudnnDoesNotAndSaysWhy) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  ops::AttentionArgs causal;
  causal.causal = true;
  auto run = [](const std::vector<Tensor>& in, const ops::AttentionArgs& args) {
    const Tensor out = ops::scaled_dot_product_attention(in[0], in[1], in[2], args);
    EXPECT_TRUE(out.device().is_cuda());
    return kernels::last_attention_path();
  };
  EXPECT_EQ(run(qkv(2, 2, 16, 64, DType::F32, 1), causal), "cuBLAS GEMMs (float32 inputs)");
  const std::string d36 = run(qkv(2, 2, 16, 36, DType::BF16, 2), causal);
  if (kBuiltWithCudnnSdpa) {
    EXPECT_EQ(d36, "cuBLAS GEMMs (head dim 36 is not a multiple of 8)");
  } else {
    EXPECT_TRUE(starts_with(d36, "cuBLAS GEMMs (")) << d36;
  }
  ops::AttentionArgs dropout = causal;
  dropout.dropout_p = 0.1;
  dropout.fixed_rng = true;
  // A causal block of queries after a KV prefix (Tq != Tk) with dropout: cuDNN's bottom-right causal mask takes none.
  const std::vector<Tensor> q = qkv(2, 2, 8, 64, DType::BF16, 3), kv = qkv(2, 2, 16, 64, DType::BF16, 6);
  const Tensor out = ops::scaled_dot_product_attention(q[0], kv[1], kv[2], dropout);
  EXPECT_TRUE(out.device().is_cuda());
  const std::string why = kernels::last_attention_path();
  if (kBuiltWithCudnnSdpa) {
    EXPECT_TRUE(starts_with(why, "cuBLAS GEMMs (causal with dropout and Tq != Tk")) << why;
  }
  {
    ScopedEnv off("HONE_CUDNN_ATTENTION", "0");
    EXPECT_EQ(run(qkv(2, 2, 16, 64, DType::BF16, 4), causal),
              "cuBLAS GEMMs (turned off by HONE_CUDNN_ATTENTION=0 or HONE_CUDNN=0)");
  }
  if (kBuiltWithCudnnSdpa) {
    // Autocast lowers float32 inputs to bf16, which cuDNN then takes.
    AutocastGuard ac(DType::BF16);
    const std::string path = run(qkv(2, 2, 16, 64, DType::F32, 5), causal);
    EXPECT_TRUE(starts_with(path, "cuDNN fused SDPA (bf16, causal")) << path;
  }
}

}  // namespace
}  // namespace hone
