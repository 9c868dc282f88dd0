// Harness entries for the norm family: layer_norm over 1 and 2 trailing dims, with and without
// weight and bias, default and non-default eps; plus its argument checks.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

namespace {

// Plain reference: every row of C = prod(normalized dims) values normalised on its own.
Tensor layer_norm_ref(const Tensor& x, int64_t norm_dims, const Tensor& w, const Tensor& b, double eps) {
  int64_t C = 1;
  for (int64_t d = x.dim() - norm_dims; d < x.dim(); ++d) C *= x.shape()[d];
  const std::vector<double> v = values(x);
  const std::vector<double> wv = w.defined() ? values(w) : std::vector<double>(C, 1.0);
  const std::vector<double> bv = b.defined() ? values(b) : std::vector<double>(C, 0.0);
  std::vector<double> out(v.size());
  for (size_t r = 0; r * C < v.size(); ++r) {
    const double* row = v.data() + r * C;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < C; ++i) mean += row[i] / double(C);
    for (int64_t i = 0; i < C; ++i) var += (row[i] - mean) * (row[i] - mean) / double(C);
    for (int64_t i = 0; i < C; ++i)
      out[r * C + i] = (row[i] - mean) / std::sqrt(var + eps) * wv[i] + bv[i];
  }
  return from_values(out, x.shape());
}

}  // namespace

void add_norm_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape shape;
    int64_t norm_dims;  // how many trailing dims are normalised
    bool weight, bias;
    double eps;
  };
  const Variant variants[] = {
      {{4, 7}, 1, true, true, 1e-5},      {{3, 1}, 1, true, true, 1e-5},
      {{2, 5, 33}, 1, true, true, 1e-5},  {{6, 50}, 1, false, false, 1e-5},
      {{6, 50}, 1, true, false, 1e-3},    {{6, 50}, 1, false, true, 1e-5},
      {{3, 4, 5}, 2, true, true, 1e-5},   {{2, 3, 4, 5}, 2, false, false, 0.1},
      {{2, 1000}, 1, true, true, 1e-5},   {{70, 7}, 1, true, true, 1e-5},  // 3 row chunks
      {{3, 40, 200}, 1, true, true, 1e-5},  // enough work to spread over threads
  };
  for (const Variant& v : variants) {
    const Shape ns(v.shape.end() - v.norm_dims, v.shape.end());
    OpCase c;
    c.name = "norm/layer_norm/" + shape_str(v.shape) + "/over" + shape_str(ns) + (v.weight ? "/w" : "") +
             (v.bias ? "/b" : "") + "/eps" + std::to_string(v.eps);
    c.inputs = {InputSpec::floats(v.shape)};
    if (v.weight) c.inputs.push_back(InputSpec::floats(ns, 0.5, 1.5));
    if (v.bias) c.inputs.push_back(InputSpec::floats(ns));
    // Input positions of weight and bias (-1: absent).
    const int wi = v.weight ? 1 : -1, bi = v.bias ? (v.weight ? 2 : 1) : -1;
    const double eps = v.eps;
    const int64_t nd = v.norm_dims;
    auto pick = [](const std::vector<Tensor>& in, int i) { return i < 0 ? Tensor() : in[i]; };
    c.forward = [=](const std::vector<Tensor>& in) {
      return ops::layer_norm(in[0], ns, pick(in, wi), pick(in, bi), eps);
    };
    c.reference = [=](const std::vector<Tensor>& in) {
      return layer_norm_ref(in[0], nd, pick(in, wi), pick(in, bi), eps);
    };
    cases.push_back(c);
  }
}

namespace {

TEST(LayerNorm, RejectsMismatchedShapes) {
  const Tensor x = Tensor::zeros({2, 5, 512});
  try {
    ops::layer_norm(x, {768}, Tensor(), Tensor());
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "layer_norm: normalized_shape [768] does not match the last dims of float32[2, 5, 512] cpu");
  }
  EXPECT_THROW(ops::layer_norm(x, {}, Tensor(), Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::layer_norm(x, {1, 2, 5, 512}, Tensor(), Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::layer_norm(x, {512}, Tensor::ones({256}), Tensor()), std::invalid_argument);
  EXPECT_THROW(ops::layer_norm(x, {512}, Tensor(), Tensor::ones({512}, DType::F64)), std::invalid_argument);
  EXPECT_THROW(ops::layer_norm(Tensor::zeros({2, 4}, DType::I64), {4}, Tensor(), Tensor()),
               std::invalid_argument);
}

// Only the parameters require grad (a frozen input): their gradients arrive, x gets none.
TEST(LayerNorm, GradientsOfParametersOnly) {
  const Tensor x = Tensor::randn({5, 3, 8}, 7);
  Tensor w = Tensor::ones({8});
  Tensor b = Tensor::zeros({8});
  w.requires_grad_(true);
  b.requires_grad_(true);
  ops::sum(ops::layer_norm(x, {8}, w, b)).backward();
  EXPECT_FALSE(x.grad().defined());
  // d sum / d bias = number of rows; d sum / d weight = column sums of xhat.
  for (double g : values(b.grad())) EXPECT_EQ(g, 15.0);
  const Tensor xhat = ops::layer_norm(x, {8}, Tensor(), Tensor());
  const std::vector<double> want = values(ops::sum(xhat.reshape({15, 8}), {0}));
  const std::vector<double> got = values(w.grad());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5);
}

}  // namespace

}  // namespace hone::test
