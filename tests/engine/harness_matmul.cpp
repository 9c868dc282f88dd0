// Harness entries: matmul (batched, broadcast, vector rules) and linear.
#include "engine/ops/ops.h"
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
  {
    OpCase c;
    c.name = "linear/with-bias";
    c.inputs = {InputSpec::floats({2, 3, 6}), InputSpec::floats({5, 6}), InputSpec::floats({5})};
    c.forward = [](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); };
    c.reference = [](const std::vector<Tensor>& in) {
      const Tensor y = matmul_ref(in[0], in[1].transpose(0, 1).contiguous());
      std::vector<double> v = values(y);
      const std::vector<double> b = values(in[2]);
      for (size_t i = 0; i < v.size(); ++i) v[i] += b[i % b.size()];
      return from_values(v, y.shape());
    };
    cases.push_back(c);
  }
}

}  // namespace hone::test
