// Harness entries: scaled dot-product attention (causal, padding, dropout, Tq != Tk, odd D).
#include "engine/ops/ops.h"
#include "kernels/attention.h"
#include "op_harness.h"

#include <cmath>

namespace hone::test {

namespace {

struct Variant {
  int64_t B, H, Tq, Tk, D;
  bool causal;
  bool padding;
  double dropout;
};

Tensor attention_ref(const std::vector<Tensor>& in, const Variant& v) {
  kernels::AttentionShape s{v.B, v.H, v.Tq, v.Tk, v.D};
  kernels::AttentionOptions o;
  o.scale = float(1.0 / std::sqrt(double(v.D)));
  o.causal = v.causal;
  Tensor mask;
  if (v.padding) {
    mask = in[3].contiguous();
    o.key_valid = mask.data<uint8_t>();
  }
  o.dropout_p = float(v.dropout);
  o.seed = 1234;
  o.offset = 77;
  Tensor out = Tensor::empty({v.B, v.H, v.Tq, v.D}, DType::F64);
  Tensor lse = Tensor::empty({v.B, v.H, v.Tq}, DType::F64);
  kernels::ref::attention_forward<double>(s, o, in[0].data<double>(), in[1].data<double>(), in[2].data<double>(),
                                          out.data<double>(), lse.data<double>());
  return out;
}

}  // namespace

void add_attention_cases(std::vector<OpCase>& cases) {
  const Variant variants[] = {
      {1, 1, 1, 1, 1, false, false, 0.0},  {2, 3, 5, 5, 7, false, false, 0.0},
      {2, 2, 17, 17, 8, true, false, 0.0}, {1, 2, 5, 13, 4, true, false, 0.0},
      {2, 2, 9, 11, 6, false, true, 0.0},  {2, 1, 7, 7, 5, true, true, 0.0},
      {1, 2, 6, 9, 4, false, false, 0.2},  {1, 1, 70, 70, 3, true, false, 0.0},
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "attention/B" + std::to_string(v.B) + "H" + std::to_string(v.H) + "Tq" + std::to_string(v.Tq) + "Tk" +
             std::to_string(v.Tk) + "D" + std::to_string(v.D) + (v.causal ? "/causal" : "") +
             (v.padding ? "/padding" : "") + (v.dropout > 0 ? "/dropout" : "");
    c.inputs = {InputSpec::floats({v.B, v.H, v.Tq, v.D}), InputSpec::floats({v.B, v.H, v.Tk, v.D}),
                InputSpec::floats({v.B, v.H, v.Tk, v.D})};
    if (v.padding) c.inputs.push_back(InputSpec::mask({v.B, v.Tk}, 0.7));
    c.forward = [v](const std::vector<Tensor>& in) {
      ops::AttentionArgs args;
      args.causal = v.causal;
      if (v.padding) args.key_padding_mask = in[3];
      args.dropout_p = v.dropout;
      args.fixed_rng = true;
      args.seed = 1234;
      args.offset = 77;
      return ops::scaled_dot_product_attention(in[0], in[1], in[2], args);
    };
    c.reference = [v](const std::vector<Tensor>& in) { return attention_ref(in, v); };
    c.tol_f32 = 2e-5;
    cases.push_back(c);
  }
}

}  // namespace hone::test
