// Autocast's kept copies of parameters (engine/ops/autocast_copy.h): a parameter is cast once and
// its copy reused while the parameter is unchanged; any change (an optimizer step, copy_, a new
// storage) makes the next forward cast again; results and gradients are those of a plain cast.
#include "engine/ops/autocast_copy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "kernels/half.h"
#include "scoped_env.h"

#if defined(HONE_CUDA_EMULATED)
#include <cublasLt.h>

#include "cuda_emu/counters.h"
#endif

namespace hone {
namespace {

const Storage* copy_of(const Tensor& p) { return p.storage()->autocast_copy().data.get(); }

std::vector<float> values(const Tensor& t) { return t.to(DType::F32).to_vector<float>(); }

Tensor param_of(const nn::Module& m, const std::string& name) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

TEST(AutocastCopy, AParameterIsCastOnceAndReusedUntilItChanges) {
  nn::Linear lin(8, 6, true, 0.5, 3);
  Tensor w = param_of(lin, "weight"), b = param_of(lin, "bias");
  const Tensor x = Tensor::rand({4, 8}, 9, -1, 1);
  AutocastGuard ac(DType::BF16);
  const Tensor y1 = lin.forward(x);
  const Storage* first = copy_of(w);
  ASSERT_NE(first, nullptr) << "the first forward keeps the weight's bf16 copy";
  ASSERT_NE(copy_of(b), nullptr) << "and the bias's";
  const Tensor y2 = lin.forward(x);
  EXPECT_EQ(copy_of(w), first) << "an unchanged weight is not cast again";
  EXPECT_EQ(values(y1), values(y2));

  {
    NoGradGuard no_grad;
    ops::mul_(w, 0.5);  // an in-place write (as an optimizer's) bumps the version
  }
  const Tensor y3 = lin.forward(x);
  EXPECT_NE(copy_of(w), first) << "a changed weight is cast again";
  const Tensor plain_w = w.detach().clone(), plain_b = b.detach().clone();  // not parameters: plain casts
  EXPECT_EQ(copy_of(plain_w), nullptr);
  const Tensor expect = ops::linear(x, plain_w, plain_b);
  EXPECT_EQ(copy_of(plain_w), nullptr) << "a tensor that is not a parameter keeps no copy";
  EXPECT_EQ(values(y3), values(expect)) << "the new copy holds the new weights";
  EXPECT_NE(values(y3), values(y1));

  // Another 16-bit dtype makes its own copy.
  AutocastGuard half(DType::F16);
  const Tensor y4 = lin.forward(x);
  EXPECT_EQ(y4.dtype(), DType::F16);
  EXPECT_EQ(w.storage()->autocast_copy().dtype, DType::F16);
  EXPECT_EQ(values(y4), values(ops::linear(x, plain_w, plain_b)));
}

// GPT-2's Conv1D reads its weight through a transposed view: the view reads the same view of the
// copy, and the gradients (float32, in the weight's layout) equal a plain cast's, bit for bit.
TEST(AutocastCopy, ViewsOfAParameterGiveThePlainCastsGradients) {
  nn::Conv1D conv(8, 6, 0.5, 4);
  Tensor w = param_of(conv, "weight"), b = param_of(conv, "bias");
  Tensor plain_w = w.detach().clone(), plain_b = b.detach().clone();
  plain_w.requires_grad_(), plain_b.requires_grad_();
  const Tensor x = Tensor::rand({2, 3, 8}, 10, -1, 1);
  for (int pass = 0; pass < 2; ++pass) {  // the second reuses the copy
    w.zero_grad(), b.zero_grad(), plain_w.zero_grad(), plain_b.zero_grad();
    Tensor y, expect;
    {
      AutocastGuard ac(DType::BF16);
      y = conv.forward(x);
      expect = ops::linear(x, plain_w.transpose(0, 1), plain_b);
    }
    EXPECT_EQ(values(y), values(expect));
    ops::sum(ops::mul(y, y)).backward();
    ops::sum(ops::mul(expect, expect)).backward();
    ASSERT_TRUE(w.grad().defined());
    EXPECT_EQ(w.grad().dtype(), DType::F32);
    EXPECT_EQ(values(w.grad()), values(plain_w.grad())) << "pass " << pass;
    EXPECT_EQ(values(b.grad()), values(plain_b.grad())) << "pass " << pass;
  }
}

// On CUDA the weight and bias gradients of an autocast linear leave their GEMM in float32
// (kernels::cuda::gemm_f32_out): never rounded to bf16 and never cast by a pass of their own. The bias
// gradient comes from cuBLASLt's BGRAD epilogue, or with HONE_GEMM_BGRAD_EPILOGUE=0 from the plain GEMM
// and our column sums: the same values either way.
TEST(AutocastCopy, CudaWeightGradientsLeaveTheGemmInFloat32) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Device dev = Device::cuda(0);
  for (const char* bgrad_epilogue : {"1", "0"}) {
    SCOPED_TRACE(std::string("HONE_GEMM_BGRAD_EPILOGUE=") + bgrad_epilogue);
    const test::ScopedEnv bgrad_switch("HONE_GEMM_BGRAD_EPILOGUE", bgrad_epilogue);
    nn::Conv1D conv(40, 24, 0.5, 7);  // GPT-2's layer: W [in, out] read through its transpose
    conv.to(dev);
    const Tensor w = param_of(conv, "weight"), b = param_of(conv, "bias");
    const Tensor x = Tensor::rand({3, 5, 40}, 13, -1, 1), g = Tensor::rand({3, 5, 24}, 14, -1, 1).to(DType::BF16);
    Tensor y;
    {
      AutocastGuard ac(DType::BF16);
      y = conv.forward(x.to(dev));
    }
#if defined(HONE_CUDA_EMULATED)
    const auto launches_before = emu::launches();
    const size_t gemms_before = emu::gemm_calls().size();
#endif
    y.backward(g.to(dev));
#if defined(HONE_CUDA_EMULATED)
    int column_sums = 0;
    for (const auto& [kernel, n] : emu::launches()) {
      const uint64_t ran = n - (launches_before.count(kernel) ? launches_before.at(kernel) : 0);
      if (kernel.find("copy") != std::string::npos) {
        EXPECT_EQ(ran, 0u) << kernel << " ran in the backward";
      }
      if (kernel.find("column_sum_partial_kernel") != std::string::npos) column_sums += int(ran);
    }
    const std::vector<emu::GemmCall> gemms = emu::gemm_calls();
    int with_bgrad = 0;
    for (size_t i = gemms_before; i < gemms.size(); ++i)
      with_bgrad += (gemms[i].epilogue & (CUBLASLT_EPILOGUE_BGRADA | CUBLASLT_EPILOGUE_BGRADB)) != 0;
    EXPECT_EQ(with_bgrad, bgrad_epilogue[0] == '1' ? 1 : 0) << "weight-gradient GEMMs with a BGRAD epilogue";
    EXPECT_EQ(column_sums, bgrad_epilogue[0] == '1' ? 0 : 1) << "our column sums of the bias gradient";
#endif
    ASSERT_EQ(w.grad().dtype(), DType::F32);
    ASSERT_EQ(b.grad().dtype(), DType::F32);
    // dW [in, out] = x^T g and db = the column sums of g, in double from the bf16 values the GEMM read.
    const std::vector<float> xs = x.to(DType::BF16).to(DType::F32).to_vector<float>(), gs = values(g);
    std::vector<double> dw(40 * 24, 0.0), db(24, 0.0);
    for (int64_t r = 0; r < 15; ++r)
      for (int64_t o = 0; o < 24; ++o) {
        db[o] += gs[r * 24 + o];
        for (int64_t i = 0; i < 40; ++i) dw[i * 24 + o] += double(xs[r * 40 + i]) * gs[r * 24 + o];
      }
    const std::vector<float> gw = values(w.grad().to(Device::cpu())), gb = values(b.grad().to(Device::cpu()));
    int not_bf16 = 0;
    for (size_t i = 0; i < dw.size(); ++i) {
      EXPECT_NEAR(gw[i], dw[i], 1e-5 * 4) << "dW element " << i;
      not_bf16 += float(bf16(gw[i])) != gw[i];
    }
    for (size_t i = 0; i < db.size(); ++i) EXPECT_NEAR(gb[i], db[i], 1e-5 * 4) << "db element " << i;
    EXPECT_GT(not_bf16, int(dw.size() / 2)) << "the gradient was rounded to bf16 on its way";
  }
}

// Gradient accumulation on CUDA: the second backward's weight gradient is added by its GEMM straight
// into the float32 gradient the first left (beta = 1; take_leaf_grad_behind), with no pass of its
// own, and the sum equals two separate backwards' gradients added.
TEST(AutocastCopy, CudaAccumulatedWeightGradientsAddInTheGemm) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Device dev = Device::cuda(0);
  nn::Conv1D conv(40, 24, 0.5, 8);
  conv.to(dev);
  Tensor w = param_of(conv, "weight");
  const Tensor x1 = Tensor::rand({2, 5, 40}, 15, -1, 1).to(dev), x2 = Tensor::rand({2, 5, 40}, 16, -1, 1).to(dev);
  auto backward = [&](const Tensor& x) {
    Tensor y;
    {
      AutocastGuard ac(DType::BF16);
      y = conv.forward(x);
    }
    ops::sum(ops::mul(y, y)).backward();
  };
  backward(x1);
  const std::vector<float> g1 = values(w.grad().to(Device::cpu()));
  w.zero_grad();
  backward(x2);
  const std::vector<float> g2 = values(w.grad().to(Device::cpu()));
  w.zero_grad();
  backward(x1);
  const void* first = w.grad().data_ptr();
#if defined(HONE_CUDA_EMULATED)
  const auto launches_before = emu::launches();
#endif
  backward(x2);
#if defined(HONE_CUDA_EMULATED)
  const auto after = emu::launches();
  const uint64_t axpy = after.count("axpy_kernel") ? after.at("axpy_kernel") : 0;
  const uint64_t axpy_before = launches_before.count("axpy_kernel") ? launches_before.at("axpy_kernel") : 0;
  EXPECT_EQ(axpy - axpy_before, 1u) << "one add (the bias's); the weight's sum is the GEMM's";
#endif
  EXPECT_EQ(w.grad().data_ptr(), first) << "accumulated in place";
  const std::vector<float> sum = values(w.grad().to(Device::cpu()));
  for (size_t i = 0; i < sum.size(); ++i) EXPECT_NEAR(sum[i], g1[i] + g2[i], 1e-5 * (1 + std::abs(g1[i] + g2[i])));
}

// Module::to and checkpoint loading swap a parameter's storage (set_data_): the new storage is
// still a parameter's, and the next forward casts it, never the old storage's copy.
TEST(AutocastCopy, ANewStorageIsCastAfresh) {
  nn::Linear lin(8, 6, false, 0.5, 5);
  Tensor w = param_of(lin, "weight");
  const Tensor x = Tensor::rand({3, 8}, 11, -1, 1);
  AutocastGuard ac(DType::BF16);
  (void)lin.forward(x);
  const Tensor fresh = Tensor::rand({6, 8}, 12, -1, 1);
  w.set_data_(fresh);
  EXPECT_TRUE(w.storage()->is_parameter()) << "set_data_ keeps the parameter mark";
  EXPECT_EQ(copy_of(w), nullptr);
  const Tensor y = lin.forward(x);
  EXPECT_NE(copy_of(w), nullptr);
  EXPECT_EQ(values(y), values(ops::matmul(x, fresh.transpose(0, 1))));
}

// The optimizer-side API: a copy is current only at the version it was made (or written) at.
TEST(AutocastCopy, CurrentOnlyAtItsVersion) {
  nn::Linear lin(4, 4, false, 0.5, 6);
  const Tensor w = param_of(lin, "weight");
  DType dt = DType::F32;
  EXPECT_EQ(ops::current_autocast_copy(w, &dt), nullptr) << "none made yet";
  {
    AutocastGuard ac(DType::BF16);
    (void)lin.forward(Tensor::ones({1, 4}));
  }
  void* p = ops::current_autocast_copy(w, &dt);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(dt, DType::BF16);
  EXPECT_EQ(p, w.storage()->autocast_copy().data->data());
  w.bump_version();
  EXPECT_EQ(ops::current_autocast_copy(w, &dt), nullptr) << "stale after a write";
  const uint64_t copy_version = w.storage()->autocast_copy().data->version();
  ops::mark_autocast_copy_written(w);
  EXPECT_NE(ops::current_autocast_copy(w, &dt), nullptr) << "current again once written";
  EXPECT_GT(w.storage()->autocast_copy().data->version(), copy_version)
      << "the copy's own version moves (graphs that saved it notice)";
}

}  // namespace
}  // namespace hone
