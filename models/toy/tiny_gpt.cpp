#include "models/toy/tiny_gpt.h"

#include <cmath>

#include "engine/ops/ops.h"

namespace hone::models {

Tensor TinyGpt::add_param(const std::string& name, Tensor t, bool decay) {
  t.requires_grad_(true);
  params_.push_back({name, t, decay});
  return t;
}

TinyGpt::TinyGpt(const TinyGptConfig& c) : cfg_(c) {
  if (c.dim % c.heads != 0)
    throw std::invalid_argument("TinyGpt: dim " + std::to_string(c.dim) + " is not divisible by heads " +
                                std::to_string(c.heads));
  uint64_t seed = c.seed;
  // GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers).
  auto normal = [&](Shape s, double std) { return ops::mul(Tensor::randn(s, seed++), std); };
  const double proj_std = 0.02 / std::sqrt(2.0 * double(c.layers));
  tok_emb_ = add_param("wte", normal({c.vocab, c.dim}, 0.02), false);
  pos_emb_ = add_param("wpe", normal({c.seq_len, c.dim}, 0.01), false);
  for (int64_t l = 0; l < c.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    Block b;
    b.ln1_w = add_param(p + "ln_1.weight", Tensor::ones({c.dim}), false);
    b.ln1_b = add_param(p + "ln_1.bias", Tensor::zeros({c.dim}), false);
    b.qkv_w = add_param(p + "attn.c_attn.weight", normal({3 * c.dim, c.dim}, 0.02), true);
    b.qkv_b = add_param(p + "attn.c_attn.bias", Tensor::zeros({3 * c.dim}), false);
    b.proj_w = add_param(p + "attn.c_proj.weight", normal({c.dim, c.dim}, proj_std), true);
    b.proj_b = add_param(p + "attn.c_proj.bias", Tensor::zeros({c.dim}), false);
    b.ln2_w = add_param(p + "ln_2.weight", Tensor::ones({c.dim}), false);
    b.ln2_b = add_param(p + "ln_2.bias", Tensor::zeros({c.dim}), false);
    b.fc_w = add_param(p + "mlp.c_fc.weight", normal({4 * c.dim, c.dim}, 0.02), true);
    b.fc_b = add_param(p + "mlp.c_fc.bias", Tensor::zeros({4 * c.dim}), false);
    b.out_w = add_param(p + "mlp.c_proj.weight", normal({c.dim, 4 * c.dim}, proj_std), true);
    b.out_b = add_param(p + "mlp.c_proj.bias", Tensor::zeros({c.dim}), false);
    blocks_.push_back(b);
  }
  lnf_w_ = add_param("ln_f.weight", Tensor::ones({c.dim}), false);
  lnf_b_ = add_param("ln_f.bias", Tensor::zeros({c.dim}), false);
  head_w_ = add_param("lm_head.weight", normal({c.vocab, c.dim}, 0.02), true);
}

int64_t TinyGpt::parameter_count() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.tensor.numel();
  return n;
}

Tensor TinyGpt::forward(const Tensor& ids, bool training) const {
  const int64_t B = ids.size(0), T = ids.size(1), C = cfg_.dim, H = cfg_.heads;
  if (T > cfg_.seq_len)
    throw std::invalid_argument("TinyGpt: sequence of " + std::to_string(T) + " tokens exceeds seq_len " +
                                std::to_string(cfg_.seq_len));
  const double p = training ? cfg_.dropout : 0.0;
  Tensor x = ops::add(ops::embedding(tok_emb_, ids), pos_emb_.narrow(0, 0, T));
  x = ops::dropout(x, p, training);
  for (const Block& b : blocks_) {
    // Attention: [B, T, 3C] -> q, k, v as [B, H, T, C/H].
    const Tensor h = ops::layer_norm(x, {C}, b.ln1_w, b.ln1_b, 1e-5);
    const Tensor qkv = ops::linear(h, b.qkv_w, b.qkv_b);
    auto heads = [&](int64_t part) { return qkv.narrow(2, part * C, C).reshape({B, T, H, C / H}).transpose(1, 2); };
    ops::AttentionArgs args;
    args.causal = true;
    args.dropout_p = p;
    const Tensor att = ops::scaled_dot_product_attention(heads(0), heads(1), heads(2), args);
    const Tensor merged = att.transpose(1, 2).reshape({B, T, C});
    x = ops::add(x, ops::dropout(ops::linear(merged, b.proj_w, b.proj_b), p, training));
    // MLP
    const Tensor h2 = ops::layer_norm(x, {C}, b.ln2_w, b.ln2_b, 1e-5);
    const Tensor m = ops::gelu(ops::linear(h2, b.fc_w, b.fc_b), ops::GeluApprox::Tanh);
    x = ops::add(x, ops::dropout(ops::linear(m, b.out_w, b.out_b), p, training));
  }
  x = ops::layer_norm(x, {C}, lnf_w_, lnf_b_, 1e-5);
  return ops::linear(x, head_w_);
}

}  // namespace hone::models
