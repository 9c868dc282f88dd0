// Harness entries: scaled dot-product attention (causal, padding, dropout, Tq != Tk, odd D), and its
// packed-qkv form (GPT-2's: q, k, v side by side in one [B, T, 3C] tensor, heads merged on output).
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

// The variant's arguments (dropout with a fixed stream, so the reference draws the same mask), with
// the padding mask from `mask` when the variant has one.
ops::AttentionArgs args_of(const Variant& v, const Tensor& mask) {
  ops::AttentionArgs args;
  args.causal = v.causal;
  if (v.padding) args.key_padding_mask = mask;
  args.dropout_p = v.dropout;
  args.fixed_rng = true;
  args.seed = 1234;
  args.offset = 77;
  return args;
}

// The packed form's reference: the [B, T, 3C] input split into heads, attention_ref, heads merged.
Tensor attention_qkv_ref(const std::vector<Tensor>& in, const Variant& v) {
  const int64_t C = v.H * v.D;
  std::vector<Tensor> parts;
  for (int64_t part = 0; part < 3; ++part)
    parts.push_back(in[0].narrow(2, part * C, C).reshape({v.B, v.Tq, v.H, v.D}).transpose(1, 2).contiguous());
  if (v.padding) parts.push_back(in[1]);
  return attention_ref(parts, v).transpose(1, 2).reshape({v.B, v.Tq, C});
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
      return ops::scaled_dot_product_attention(in[0], in[1], in[2], args_of(v, v.padding ? in[3] : Tensor()));
    };
    c.reference = [v](const std::vector<Tensor>& in) { return attention_ref(in, v); };
    c.tol_f32 = 2e-5;
    cases.push_back(c);
  }
  // Packed qkv: self-attention (Tq = Tk = T), so the variants keep to square ones. On CUDA in bf16,
  // the two with D = 8 and no padding run cuDNN on the packed layout (strided q, k, v, dq, dk, dv).
  const Variant packed[] = {
      {1, 1, 1, 1, 1, false, false, 0.0},   {2, 3, 5, 5, 7, true, false, 0.0},  {2, 2, 9, 9, 8, false, true, 0.0},
      {1, 2, 6, 6, 4, true, false, 0.2},    {2, 2, 17, 17, 8, true, true, 0.1}, {2, 2, 9, 9, 8, true, false, 0.0},
      {1, 3, 16, 16, 8, false, false, 0.1},
  };
  for (const Variant& v : packed) {
    OpCase c;
    c.name = "attention_qkv/B" + std::to_string(v.B) + "H" + std::to_string(v.H) + "T" + std::to_string(v.Tq) + "D" +
             std::to_string(v.D) + (v.causal ? "/causal" : "") + (v.padding ? "/padding" : "") +
             (v.dropout > 0 ? "/dropout" : "");
    c.inputs = {InputSpec::floats({v.B, v.Tq, 3 * v.H * v.D})};
    if (v.padding) c.inputs.push_back(InputSpec::mask({v.B, v.Tk}, 0.7));
    c.forward = [v](const std::vector<Tensor>& in) {
      return ops::scaled_dot_product_attention_qkv(in[0], v.H, args_of(v, v.padding ? in[1] : Tensor()));
    };
    c.reference = [v](const std::vector<Tensor>& in) { return attention_qkv_ref(in, v); };
    c.tol_f32 = 2e-5;
    cases.push_back(c);
  }
}

}  // namespace hone::test
