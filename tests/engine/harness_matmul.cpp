// Harness entries: matmul (batched, broadcast, vector rules), linear, linear_gelu_tanh and
// mlp_gelu_tanh.
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "op_harness.h"

namespace hone::test {

namespace {

// Reference: broadcast batch dims by hand, then kernels::ref::gemm per matrix.
Tensor matmul_ref(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in, b = b_in;
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  if (a_vec) a = a.reshape({1, a.shape()[0]});
  if (b_vec) b = b.reshape({b.shape()[0], 1});
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape().back(), N = b.shape().back();
  const Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = ops::broadcast_shapes(ab, bb);
  Shape fa = batch, fb = batch, fo = batch;
  fa.insert(fa.end(), {M, K});
  fb.insert(fb.end(), {K, N});
  fo.insert(fo.end(), {M, N});
  const std::vector<double> av = values(a.expand(fa)), bv = values(b.expand(fb));
  const int64_t nb = shape_numel(batch);
  std::vector<double> out(nb * M * N, 0.0);
  for (int64_t i = 0; i < nb; ++i)
    kernels::ref::gemm<double>(false, false, M, N, K, 1.0, av.data() + i * M * K, K, bv.data() + i * K * N, N,
                               0.0, out.data() + i * M * N, N);
  Shape out_shape = batch;
  if (!a_vec) out_shape.push_back(M);
  if (!b_vec) out_shape.push_back(N);
  return from_values(out, out_shape);
}

}  // namespace

void add_matmul_cases(std::vector<OpCase>& cases) {
  const std::pair<Shape, Shape> pairs[] = {
      {{1, 1}, {1, 1}},         {{3, 5}, {5, 7}},          {{13, 31}, {31, 17}},   {{2, 3, 5}, {5, 4}},
      {{2, 3, 5}, {2, 5, 4}},   {{2, 1, 3, 5}, {3, 5, 2}}, {{5}, {5, 3}},          {{4, 5}, {5}},
      {{7}, {7}},               {{67, 33}, {33, 65}},
  };
  for (const auto& [sa, sb] : pairs) {
    OpCase c;
    c.name = "matmul/" + shape_str(sa) + "@" + shape_str(sb);
    c.inputs = {InputSpec::floats(sa), InputSpec::floats(sb)};
    c.forward = [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1]); };
    c.reference = [](const std::vector<Tensor>& in) { return matmul_ref(in[0], in[1]); };
    c.tol_f32 = 1e-5;
    cases.push_back(c);
  }
  {
    // matmul with a transposed right operand (x @ W^T): the GEMM's trans_b path.
    OpCase c;
    c.name = "matmul/transposed-view";
    c.inputs = {InputSpec::floats({2, 3, 6}), InputSpec::floats({5, 6})};
    c.forward = [](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1].transpose(0, 1)); };
    c.reference = [](const std::vector<Tensor>& in) { return matmul_ref(in[0], in[1].transpose(0, 1).contiguous()); };
    cases.push_back(c);
  }
  // linear: on CUDA one node whose GEMMs carry the bias (cuBLASLt epilogues), on the CPU matmul + add.
  // Odd shapes, 1-d and 2-d inputs, a frozen weight (only the bias gradient: no weight GEMM), no bias,
  // and a weight given as a transposed view (GPT-2's Conv1D layout, [in, out]).
  const struct {
    const char* name;
    Shape x, w;
    bool bias, frozen_weight, transposed_weight;
  } linears[] = {
      {"with-bias", {2, 3, 6}, {5, 6}, true, false, false},
      {"odd-shapes", {3, 7, 33}, {65, 33}, true, false, false},
      {"2d-input", {9, 16}, {24, 16}, true, false, false},
      {"1d-input", {6}, {5, 6}, true, false, false},
      {"frozen-weight", {4, 6}, {5, 6}, true, true, false},
      {"no-bias", {2, 3, 6}, {5, 6}, false, false, false},
      {"conv1d-weight-view", {2, 4, 7}, {7, 9}, true, false, true},
  };
  for (const auto& l : linears) {
    OpCase c;
    c.name = std::string("linear/") + l.name;
    c.inputs = {InputSpec::floats(l.x), l.frozen_weight ? InputSpec::constant(l.w) : InputSpec::floats(l.w)};
    const int64_t N = l.transposed_weight ? l.w[1] : l.w[0];
    if (l.bias) c.inputs.push_back(InputSpec::floats({N}));
    const bool tw = l.transposed_weight;
    c.forward = [tw](const std::vector<Tensor>& in) {
      const Tensor w = tw ? in[1].transpose(0, 1) : in[1];
      return ops::linear(in[0], w, in.size() > 2 ? in[2] : Tensor());
    };
    c.reference = [tw](const std::vector<Tensor>& in) {
      const Tensor wt = tw ? in[1].contiguous() : in[1].transpose(0, 1).contiguous();  // [K, N]
      const Tensor y = matmul_ref(in[0], wt);
      if (in.size() < 3) return y;
      std::vector<double> v = values(y);
      const std::vector<double> b = values(in[2]);
      for (size_t i = 0; i < v.size(); ++i) v[i] += b[i % b.size()];
      return from_values(v, y.shape());
    };
    cases.push_back(c);
  }
  // linear_gelu_tanh: on CUDA one GEMM with the bias + GELU epilogue (the pre-activation kept for the
  // backward); N a multiple of 8 (cuBLASLt's aux rule) or not (the fallback pass), a frozen weight,
  // and no bias (the composition everywhere).
  const struct {
    const char* name;
    Shape x, w;
    bool bias, frozen_weight;
  } gelus[] = {
      {"odd-shapes", {3, 5, 17}, {24, 17}, true, false},
      {"n-not-multiple-of-8", {7, 9}, {13, 9}, true, false},
      {"frozen-weight", {4, 6}, {16, 6}, true, true},
      {"no-bias", {2, 3, 6}, {5, 6}, false, false},
  };
  for (const auto& l : gelus) {
    OpCase c;
    c.name = std::string("linear_gelu_tanh/") + l.name;
    c.inputs = {InputSpec::floats(l.x), l.frozen_weight ? InputSpec::constant(l.w) : InputSpec::floats(l.w)};
    if (l.bias) c.inputs.push_back(InputSpec::floats({l.w[0]}));
    c.forward = [](const std::vector<Tensor>& in) {
      return ops::linear_gelu_tanh(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
    };
    c.reference = [](const std::vector<Tensor>& in) {
      const Tensor y = matmul_ref(in[0], in[1].transpose(0, 1).contiguous());
      std::vector<double> v = values(y);
      const std::vector<double> b = in.size() > 2 ? values(in[2]) : std::vector<double>{};
      for (size_t i = 0; i < v.size(); ++i)
        v[i] = kernels::ref::unary(kernels::UnaryOp::GeluTanh, v[i] + (b.empty() ? 0.0 : b[i % b.size()]), 0.0);
      return from_values(v, y.shape());
    };
    cases.push_back(c);
  }
  // mlp_gelu_tanh: on CUDA one node whose backward takes the GELU's gradient inside the hidden
  // GEMM's epilogue (DGELU_BGRAD); H a multiple of 8 (cuBLASLt's aux rule) or not (the fallback
  // passes), weights as given or as GPT-2's transposed Conv1D views, a frozen first layer (its
  // input gradient and bias gradient still go through the epilogue).
  const struct {
    const char* name;
    Shape x;
    int64_t hidden, out;
    bool transposed, frozen_fc;
  } mlps[] = {
      {"odd-rows", {3, 5, 8}, 16, 6, false, false},
      {"h-not-multiple-of-8", {7, 9}, 12, 5, false, false},
      {"conv1d-weight-views", {2, 4, 7}, 24, 7, true, false},
      {"frozen-fc-weight", {4, 6}, 16, 6, false, true},
  };
  for (const auto& m : mlps) {
    const int64_t C = m.x.back(), H = m.hidden, N = m.out;
    const bool tw = m.transposed;
    OpCase c;
    c.name = std::string("mlp_gelu_tanh/") + m.name;
    const Shape w1 = tw ? Shape{C, H} : Shape{H, C}, w2 = tw ? Shape{H, N} : Shape{N, H};
    c.inputs = {InputSpec::floats(m.x), m.frozen_fc ? InputSpec::constant(w1) : InputSpec::floats(w1),
                InputSpec::floats({H}), InputSpec::floats(w2), InputSpec::floats({N})};
    c.forward = [tw](const std::vector<Tensor>& in) {
      auto w = [tw](const Tensor& t) { return tw ? t.transpose(0, 1) : t; };
      return ops::mlp_gelu_tanh(in[0], w(in[1]), in[2], w(in[3]), in[4]);
    };
    c.reference = [tw](const std::vector<Tensor>& in) {
      auto wt = [tw](const Tensor& t) { return tw ? t.contiguous() : t.transpose(0, 1).contiguous(); };  // [in, out]
      auto add_bias = [](const Tensor& y, const Tensor& bias, bool gelu) {
        std::vector<double> v = values(y);
        const std::vector<double> b = values(bias);
        for (size_t i = 0; i < v.size(); ++i) {
          v[i] += b[i % b.size()];
          if (gelu) v[i] = kernels::ref::unary(kernels::UnaryOp::GeluTanh, v[i], 0.0);
        }
        return from_values(v, y.shape());
      };
      const Tensor h = add_bias(matmul_ref(in[0], wt(in[1])), in[2], true);
      return add_bias(matmul_ref(h, wt(in[3])), in[4], false);
    };
    cases.push_back(c);
  }
}

}  // namespace hone::test
