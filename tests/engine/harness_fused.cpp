// Harness entries for the fused ops (bias_gelu, add_layer_norm), with references composed from the
// plain ops' reference math in float64; and "fused equals composed": each fused op against the
// plain ops it replaces (ops::gelu(ops::add(x, b)), ops::add + ops::layer_norm), outputs and
// every gradient, plus the argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "engine/autograd/autocast_mode.h"
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"
#include "kernels/layernorm.h"
#include "op_harness.h"

namespace hone::test {

namespace {

using kernels::UnaryOp;

// gelu(x + bias) elementwise, bias broadcast over the rows, in double.
Tensor bias_gelu_ref(const Tensor& x, const Tensor& bias, UnaryOp op) {
  const std::vector<double> xv = values(x), bv = values(bias);
  std::vector<double> out(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) out[i] = kernels::ref::unary(op, xv[i] + bv[i % bv.size()], 0.0);
  return from_values(out, x.shape());
}

// layer_norm(s) over the last dim, through the reference kernel in double.
Tensor layer_norm_last_ref(const Tensor& s, const Tensor& w, const Tensor& b, double eps) {
  const int64_t C = s.shape().back(), rows = s.numel() / C;
  const std::vector<double> sv = values(s);
  const std::vector<double> wv = w.defined() ? values(w) : std::vector<double>();
  const std::vector<double> bv = b.defined() ? values(b) : std::vector<double>();
  std::vector<double> y(sv.size()), mean(rows), rstd(rows);
  kernels::ref::layernorm_forward<double>(rows, C, sv.data(), w.defined() ? wv.data() : nullptr,
                                          b.defined() ? bv.data() : nullptr, eps, y.data(), mean.data(), rstd.data());
  return from_values(y, s.shape());
}

// Which output of add_layer_norm a case returns.
enum class Pick { Sum, Normed, Both };

Tensor pick_output(const ops::AddLayerNormResult& r, Pick p) {
  if (p == Pick::Sum) return r.sum;
  if (p == Pick::Normed) return r.normed;
  return ops::add(r.normed, ops::mul(r.sum, 0.5));  // gradients reach both outputs
}

}  // namespace

void add_fused_cases(std::vector<OpCase>& cases) {
  const Shape shapes[] = {{5}, {7, 33}, {2, 3, 65}, {70, 7}, {3, 40, 200}};  // the last: several chunks and tasks
  for (const Shape& s : shapes) {
    const Shape vec{s.back()};
    for (auto [form, approx, op] : {std::tuple{"erf", ops::GeluApprox::None, UnaryOp::GeluErf},
                                    std::tuple{"tanh", ops::GeluApprox::Tanh, UnaryOp::GeluTanh}}) {
      OpCase c;
      c.name = std::string("fused/bias_gelu/") + form + "/" + shape_str(s);
      c.inputs = {InputSpec::floats(s, -3, 3), InputSpec::floats(vec, -1, 1)};
      c.dtypes = {DType::F32, DType::F64, DType::BF16, DType::F16};
      c.forward = [approx](const std::vector<Tensor>& in) { return ops::bias_gelu(in[0], in[1], approx); };
      c.reference = [op](const std::vector<Tensor>& in) { return bias_gelu_ref(in[0], in[1], op); };
      cases.push_back(c);
    }
  }
  struct Variant {
    Shape shape;
    bool weight, bias;
  };
  const Variant variants[] = {{{7, 33}, true, true},  {{2, 3, 65}, true, true}, {{4, 1}, true, true},
                              {{6, 50}, false, false}, {{6, 50}, true, false},  {{70, 7}, true, true},
                              {{3, 40, 200}, true, true}};
  for (const Variant& v : variants)
    for (auto [tag, pick] : {std::pair{"sum", Pick::Sum}, std::pair{"normed", Pick::Normed},
                             std::pair{"normed+0.5sum", Pick::Both}}) {
      const Shape vec{v.shape.back()};
      OpCase c;
      c.name = std::string("fused/add_layer_norm/") + tag + "/" + shape_str(v.shape) + (v.weight ? "/w" : "") +
               (v.bias ? "/b" : "");
      c.inputs = {InputSpec::floats(v.shape), InputSpec::floats(v.shape)};
      // The sum does not depend on weight and bias: they get no gradient from it.
      auto param = pick == Pick::Sum ? InputSpec::constant : InputSpec::floats;
      if (v.weight) c.inputs.push_back(param(vec, 0.5, 1.5));
      if (v.bias) c.inputs.push_back(param(vec, -2.0, 2.0));
      c.dtypes = {DType::F32, DType::F64, DType::BF16, DType::F16};
      const int wi = v.weight ? 2 : -1, bi = v.bias ? (v.weight ? 3 : 2) : -1;
      auto opt = [](const std::vector<Tensor>& in, int i) { return i < 0 ? Tensor() : in[i]; };
      c.forward = [=](const std::vector<Tensor>& in) {
        return pick_output(ops::add_layer_norm(in[0], in[1], opt(in, wi), opt(in, bi), 1e-5), pick);
      };
      c.reference = [=](const std::vector<Tensor>& in) {
        std::vector<double> sv = values(in[0]);
        const std::vector<double> rv = values(in[1]);
        for (size_t i = 0; i < sv.size(); ++i) sv[i] += rv[i];
        const Tensor s = from_values(sv, in[0].shape());
        if (pick == Pick::Sum) return s;
        const Tensor y = layer_norm_last_ref(s, opt(in, wi), opt(in, bi), 1e-5);
        if (pick == Pick::Normed) return y;
        std::vector<double> both = values(y);
        for (size_t i = 0; i < both.size(); ++i) both[i] += 0.5 * sv[i];
        return from_values(both, s.shape());
      };
      cases.push_back(c);
    }
}

namespace {

// f32 inputs that require grad, deterministic per seed.
Tensor leaf(const Shape& s, uint64_t seed, double lo = -2.0, double hi = 2.0) {
  Tensor t = Tensor::rand(s, seed, lo, hi);
  t.requires_grad_(true);
  return t;
}

void expect_all_near(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": undefined";
  ASSERT_TRUE(want.defined()) << what << ": the composed result is undefined";
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  int reported = 0;
  for (size_t i = 0; i < g.size() && reported < 5; ++i)
    if (!(std::fabs(g[i] - w[i]) <= tol * std::max(1.0, std::fabs(w[i])))) {
      ADD_FAILURE() << what << ": element " << i << " is " << g[i] << ", composed " << w[i];
      ++reported;
    }
}

Tensor loss_weights(const Shape& s) { return Tensor::rand(s, 99, -1.0, 1.0); }

// Fused vs composed in float32 at a GPT-2-like width: outputs and the gradients of x and bias.
TEST(FusedOps, BiasGeluEqualsGeluOfAdd) {
  for (auto approx : {ops::GeluApprox::None, ops::GeluApprox::Tanh}) {
    const std::string what = approx == ops::GeluApprox::Tanh ? "bias_gelu tanh" : "bias_gelu erf";
    Tensor x1 = leaf({3, 37, 96}, 1, -4, 4), b1 = leaf({96}, 2);
    Tensor x2 = leaf({3, 37, 96}, 1, -4, 4), b2 = leaf({96}, 2);
    const Tensor fused = ops::bias_gelu(x1, b1, approx);
    const Tensor composed = ops::gelu(ops::add(x2, b2), approx);
    expect_all_near(fused, composed, 1e-6, what + " forward");
    ops::sum(ops::mul(fused, loss_weights(fused.shape()))).backward();
    ops::sum(ops::mul(composed, loss_weights(composed.shape()))).backward();
    expect_all_near(x1.grad(), x2.grad(), 1e-6, what + " grad x");
    expect_all_near(b1.grad(), b2.grad(), 1e-5, what + " grad bias");
  }
}

// Gradients arriving at sum only, normed only, and both, against add + layer_norm.
TEST(FusedOps, AddLayerNormEqualsAddThenLayerNorm) {
  for (Pick pick : {Pick::Sum, Pick::Normed, Pick::Both}) {
    const std::string what = "add_layer_norm pick " + std::to_string(int(pick));
    const Shape s{5, 19, 96};
    Tensor x1 = leaf(s, 3), r1 = leaf(s, 4), w1 = leaf({96}, 5, 0.5, 1.5), b1 = leaf({96}, 6);
    Tensor x2 = leaf(s, 3), r2 = leaf(s, 4), w2 = leaf({96}, 5, 0.5, 1.5), b2 = leaf({96}, 6);
    const ops::AddLayerNormResult fused = ops::add_layer_norm(x1, r1, w1, b1, 1e-5);
    const Tensor sum2 = ops::add(x2, r2);
    const ops::AddLayerNormResult composed{sum2, ops::layer_norm(sum2, {96}, w2, b2, 1e-5)};
    expect_all_near(fused.sum, composed.sum, 0, what + " sum");
    expect_all_near(fused.normed, composed.normed, 1e-6, what + " normed");
    const Tensor o1 = pick_output(fused, pick), o2 = pick_output(composed, pick);
    ops::sum(ops::mul(o1, loss_weights(s))).backward();
    ops::sum(ops::mul(o2, loss_weights(s))).backward();
    expect_all_near(x1.grad(), x2.grad(), 1e-5, what + " grad x");
    expect_all_near(r1.grad(), r2.grad(), 1e-5, what + " grad residual");
    if (pick == Pick::Sum) {
      EXPECT_FALSE(w1.grad().defined()) << what;
      EXPECT_FALSE(b1.grad().defined()) << what;
    } else {
      expect_all_near(w1.grad(), w2.grad(), 1e-5, what + " grad weight");
      expect_all_near(b1.grad(), b2.grad(), 1e-5, what + " grad bias");
    }
  }
}

// A frozen residual stream and input: only the parameters get gradients, x and residual none.
TEST(FusedOps, AddLayerNormParametersOnly) {
  const Tensor x = Tensor::randn({4, 8}, 7), r = Tensor::randn({4, 8}, 8);
  Tensor w = Tensor::ones({8}), b = Tensor::zeros({8});
  w.requires_grad_(true);
  b.requires_grad_(true);
  const ops::AddLayerNormResult out = ops::add_layer_norm(x, r, w, b);
  EXPECT_FALSE(out.sum.requires_grad());
  ops::sum(out.normed).backward();
  EXPECT_FALSE(x.grad().defined());
  for (double g : values(b.grad())) EXPECT_EQ(g, 4.0);
}

// Only the bias is trained (a frozen x): its gradient is the column sum of gelu'(x + b).
TEST(FusedOps, BiasGeluBiasOnly) {
  const Tensor x = Tensor::randn({9, 5}, 9);
  Tensor b = Tensor::zeros({5});
  b.requires_grad_(true);
  ops::sum(ops::bias_gelu(x, b)).backward();
  EXPECT_FALSE(x.grad().defined());
  const std::vector<double> xv = values(x), gb = values(b.grad());
  for (int64_t j = 0; j < 5; ++j) {
    double want = 0;
    for (int64_t r = 0; r < 9; ++r) want += kernels::ref::unary_grad(UnaryOp::GeluErf, xv[r * 5 + j], 0.0);
    EXPECT_NEAR(gb[j], want, 1e-5);
  }
}

// Mixed dtypes promote as add does (a bf16 matmul output with a float32 bias or residual stream),
// and under autocast add_layer_norm runs in float32 like layer_norm: the same as the composition.
TEST(FusedOps, PromotionAndAutocastAsComposed) {
  Tensor x1 = leaf({6, 40}, 21), b1 = leaf({40}, 22), r1 = leaf({6, 40}, 23);
  Tensor x2 = leaf({6, 40}, 21), b2 = leaf({40}, 22), r2 = leaf({6, 40}, 23);
  const Tensor w = Tensor::rand({40}, 24, 0.5, 1.5);
  const Tensor xh1 = x1.to(DType::BF16), xh2 = x2.to(DType::BF16);
  const Tensor g1 = ops::bias_gelu(xh1, b1, ops::GeluApprox::Tanh);
  const Tensor g2 = ops::gelu(ops::add(xh2, b2), ops::GeluApprox::Tanh);
  EXPECT_EQ(g1.dtype(), DType::F32);
  expect_all_near(g1, g2, 1e-6, "bias_gelu bf16 x + f32 bias");
  const ops::AddLayerNormResult a1 = ops::add_layer_norm(xh1, r1, w, Tensor());
  const Tensor s2 = ops::add(xh2, r2);
  const Tensor n2 = ops::layer_norm(s2, {40}, w, Tensor());
  EXPECT_EQ(a1.sum.dtype(), DType::F32);
  expect_all_near(a1.sum, s2, 0, "add_layer_norm bf16 x + f32 residual: sum");
  expect_all_near(a1.normed, n2, 1e-6, "add_layer_norm bf16 x + f32 residual: normed");
  ops::sum(ops::mul(ops::add(g1, a1.normed), loss_weights({6, 40}))).backward();
  ops::sum(ops::mul(ops::add(g2, n2), loss_weights({6, 40}))).backward();
  EXPECT_EQ(x1.grad().dtype(), DType::F32);  // through the differentiable cast
  expect_all_near(x1.grad(), x2.grad(), 1e-5, "grad of x through bf16");
  expect_all_near(b1.grad(), b2.grad(), 1e-5, "grad of the f32 bias");
  expect_all_near(r1.grad(), r2.grad(), 1e-5, "grad of the f32 residual");
  {
    AutocastGuard autocast(DType::BF16);
    const Tensor rh = r1.detach().to(DType::BF16), xh = x1.detach().to(DType::BF16);
    const ops::AddLayerNormResult a = ops::add_layer_norm(xh, rh, w, Tensor());
    EXPECT_EQ(a.normed.dtype(), DType::F32);
    EXPECT_EQ(a.sum.dtype(), DType::F32);
    const Tensor want = ops::layer_norm(ops::add(xh.to(DType::F32), rh.to(DType::F32)), {40}, w, Tensor());
    expect_all_near(a.normed, want, 1e-6, "add_layer_norm under autocast");
  }
}

TEST(FusedOps, RejectBadArguments) {
  const Tensor x = Tensor::zeros({2, 5, 8});
  EXPECT_THROW(ops::bias_gelu(x, Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::bias_gelu(x, Tensor::zeros({5})), std::invalid_argument);
  EXPECT_THROW(ops::bias_gelu(x, Tensor::zeros({1, 8})), std::invalid_argument);
  EXPECT_THROW(ops::bias_gelu(x, Tensor::zeros({8}, DType::I64)), std::invalid_argument);
  EXPECT_THROW(ops::bias_gelu(Tensor::zeros({2, 8}, DType::I64), Tensor::zeros({8}, DType::I64)),
               std::invalid_argument);
  try {
    ops::add_layer_norm(x, Tensor::zeros({2, 8}), Tensor(), Tensor());
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "add_layer_norm: the residual float32[2, 8] cpu must have the shape of x float32[2, 5, 8] cpu");
  }
  EXPECT_THROW(ops::add_layer_norm(x, Tensor(), Tensor(), Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::add_layer_norm(x, Tensor::zeros({2, 5, 8}, DType::I64), Tensor(), Tensor()),
               std::invalid_argument);
  EXPECT_THROW(ops::add_layer_norm(x, x, Tensor::ones({5}), Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::add_layer_norm(x, x, Tensor(), Tensor::ones({8}, DType::BF16)), std::invalid_argument);
}

}  // namespace

}  // namespace hone::test
