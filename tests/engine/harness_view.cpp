// Harness entries: views and copies (their backward is the inverse re-layout), and dtype casts.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

namespace {

// Reference for a re-layout: the value at each output position, computed by index arithmetic on
// the input's row-major values.
Tensor permute_ref(const Tensor& x, const std::vector<int64_t>& perm) {
  const std::vector<double> v = values(x);
  Shape out_shape;
  for (int64_t p : perm) out_shape.push_back(x.shape()[p]);
  const Shape in_strides = contiguous_strides(x.shape());
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    int64_t rem = i, src = 0;
    for (int64_t d = static_cast<int64_t>(out_shape.size()) - 1; d >= 0; --d) {
      src += (rem % out_shape[d]) * in_strides[perm[d]];
      rem /= out_shape[d];
    }
    out[i] = v[src];
  }
  return from_values(out, out_shape);
}

}  // namespace

void add_view_cases(std::vector<OpCase>& cases) {
  {
    OpCase c;
    c.name = "view/permute/[2,3,5]";
    c.inputs = {InputSpec::floats({2, 3, 5})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}); };
    c.reference = [](const std::vector<Tensor>& in) { return permute_ref(in[0], {2, 0, 1}); };
    cases.push_back(c);
  }
  {
    OpCase c;
    c.name = "view/transpose-reshape/[4,6]";
    c.inputs = {InputSpec::floats({4, 6})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].transpose(0, 1).reshape({3, 8}); };
    c.reference = [](const std::vector<Tensor>& in) { return permute_ref(in[0], {1, 0}).reshape({3, 8}); };
    cases.push_back(c);
  }
  {
    OpCase c;
    c.name = "view/narrow/[5,7]";
    c.inputs = {InputSpec::floats({5, 7})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].narrow(1, 2, 3).narrow(0, 1, 3); };
    c.reference = [](const std::vector<Tensor>& in) {
      const std::vector<double> v = values(in[0]);
      std::vector<double> out;
      for (int r = 1; r < 4; ++r)
        for (int col = 2; col < 5; ++col) out.push_back(v[r * 7 + col]);
      return from_values(out, {3, 3});
    };
    cases.push_back(c);
  }
  {
    OpCase c;
    c.name = "view/expand/[3,1]->[2,3,4]";
    c.inputs = {InputSpec::floats({3, 1})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 4}); };
    c.reference = [](const std::vector<Tensor>& in) {
      const std::vector<double> v = values(in[0]);
      std::vector<double> out;
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 3; ++b)
          for (int d = 0; d < 4; ++d) out.push_back(v[b]);
      return from_values(out, {2, 3, 4});
    };
    cases.push_back(c);
  }
  {
    OpCase c;
    c.name = "view/unsqueeze-squeeze-flatten/[2,3,4]";
    c.inputs = {InputSpec::floats({2, 3, 4})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].unsqueeze(1).squeeze(1).flatten(1); };
    c.reference = [](const std::vector<Tensor>& in) { return in[0].reshape({2, 12}); };
    cases.push_back(c);
  }
  {
    OpCase c;
    c.name = "copy/contiguous-of-transpose/[3,5]";
    c.inputs = {InputSpec::floats({3, 5})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].transpose(0, 1).contiguous(); };
    c.reference = [](const std::vector<Tensor>& in) { return permute_ref(in[0], {1, 0}); };
    cases.push_back(c);
  }
  {
    // Cast to another floating dtype and back: the gradient flows through both casts.
    OpCase c;
    c.name = "copy/cast-roundtrip/[7]";
    c.inputs = {InputSpec::floats({7})};
    c.forward = [](const std::vector<Tensor>& in) { return in[0].to(DType::F64).to(in[0].dtype()); };
    c.reference = [](const std::vector<Tensor>& in) { return in[0]; };
    cases.push_back(c);
  }
}

}  // namespace hone::test
