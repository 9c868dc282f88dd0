#include "models/gpt2/gpt2.h"

#include <cmath>

namespace hone::models {

namespace {

Tensor activation(const Tensor& x, const std::string& name) {
  if (name == "gelu") return ops::gelu(x, ops::GeluApprox::None);
  if (name == "relu") return ops::relu(x);
  if (name == "silu") return ops::silu(x);
  return ops::gelu(x, ops::GeluApprox::Tanh);  // gelu_new, gelu_pytorch_tanh, gelu_fast
}

// GPT-2's initialisation: N(0, 0.02); residual projections scaled by 1/sqrt(2 n_layer).
double residual_std(const Gpt2Config& c) { return 0.02 / std::sqrt(2.0 * double(c.n_layer)); }

}  // namespace

Gpt2Attention::Gpt2Attention(const Gpt2Config& c, uint64_t seed) : c_(c) {
  c_attn_ = register_module("c_attn", std::make_shared<nn::Conv1D>(c.n_embd, 3 * c.n_embd, 0.02, seed));
  c_proj_ = register_module("c_proj", std::make_shared<nn::Conv1D>(c.n_embd, c.n_embd, residual_std(c), seed + 1));
}

Tensor Gpt2Attention::forward(const Tensor& x, Tensor* cache_k, Tensor* cache_v) const {
  const int64_t B = x.size(0), T = x.size(1), C = c_.n_embd, H = c_.n_head, D = C / H;
  const Tensor qkv = c_attn_->forward(x);  // [B, T, 3C]
  ops::AttentionArgs args;
  args.causal = true;  // bottom-right aligned: new queries see the whole cache
  args.dropout_p = training() ? c_.attn_pdrop : 0.0;
  args.scale = c_.scale_attn_weights ? 1.0 / std::sqrt(double(D)) : 1.0;
  Tensor merged;  // [B, T, C]
  if (!cache_k) {
    // Training and scoring: the packed op, whose backward fills one [B, T, 3C] gradient.
    merged = ops::scaled_dot_product_attention_qkv(qkv, H, args);
  } else {
    Tensor q = ops::qkv_heads(qkv, 0, H), k = ops::qkv_heads(qkv, 1, H), v = ops::qkv_heads(qkv, 2, H);
    if (cache_k->defined()) {
      k = ops::concat({*cache_k, k}, 2);
      v = ops::concat({*cache_v, v}, 2);
    }
    *cache_k = k.contiguous();
    *cache_v = v.contiguous();
    merged = ops::scaled_dot_product_attention(q, k, v, args).transpose(1, 2).reshape({B, T, C});
  }
  return ops::dropout(c_proj_->forward(merged), training() ? c_.resid_pdrop : 0.0, training());
}

Gpt2Mlp::Gpt2Mlp(const Gpt2Config& c, uint64_t seed) : c_(c) {
  c_fc_ = register_module("c_fc", std::make_shared<nn::Conv1D>(c.n_embd, c.mlp_width(), 0.02, seed));
  c_proj_ = register_module("c_proj", std::make_shared<nn::Conv1D>(c.mlp_width(), c.n_embd, residual_std(c), seed + 1));
}

Tensor Gpt2Mlp::forward(const Tensor& x) const {
  // The GELUs run fused with c_fc's bias add; other activations after the plain layer.
  const std::string& act = c_.activation_function;
  const bool tanh_gelu = act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast";
  if (tanh_gelu)  // both layers as one op (on CUDA the GELU's gradient rides in a GEMM epilogue)
    return ops::dropout(nn::Conv1D::mlp_gelu_tanh(*c_fc_, *c_proj_, x), training() ? c_.resid_pdrop : 0.0, training());
  const Tensor h = act == "gelu"  ? c_fc_->forward_gelu(x, ops::GeluApprox::None)
                   : tanh_gelu    ? c_fc_->forward_gelu(x, ops::GeluApprox::Tanh)
                                  : activation(c_fc_->forward(x), act);
  return ops::dropout(c_proj_->forward(h), training() ? c_.resid_pdrop : 0.0, training());
}

Gpt2Block::Gpt2Block(const Gpt2Config& c, uint64_t seed) : c_(c) {
  ln_1_ = register_module("ln_1", std::make_shared<nn::LayerNorm>(c.n_embd, c.layer_norm_epsilon));
  attn_ = register_module("attn", std::make_shared<Gpt2Attention>(c, seed));
  ln_2_ = register_module("ln_2", std::make_shared<nn::LayerNorm>(c.n_embd, c.layer_norm_epsilon));
  mlp_ = register_module("mlp", std::make_shared<Gpt2Mlp>(c, seed + 2));
}

ops::AddLayerNormResult Gpt2Block::forward(const Tensor& x, const Tensor& normed, const nn::LayerNorm& next_ln,
                                           Tensor* cache_k, Tensor* cache_v) const {
  // Pre-LN: each normed output only feeds a matmul (c_fc; the next block's c_attn, or the LM head).
  const ops::AddLayerNormResult a = ln_2_->forward_after_add(x, attn_->forward(normed, cache_k, cache_v), true);
  return next_ln.forward_after_add(a.sum, mlp_->forward(a.normed), true);
}

Gpt2::Gpt2(const Gpt2Config& c, uint64_t seed) : config_(c) {
  c.validate("Gpt2");
  wte_ = register_module("wte", std::make_shared<nn::Embedding>(c.vocab_size, c.n_embd, 0.02, seed));
  wpe_ = register_module("wpe", std::make_shared<nn::Embedding>(c.n_positions, c.n_embd, 0.01, seed + 1));
  for (int64_t l = 0; l < c.n_layer; ++l)
    h_.push_back(register_module("h." + std::to_string(l), std::make_shared<Gpt2Block>(c, seed + 100 + 10 * l)));
  ln_f_ = register_module("ln_f", std::make_shared<nn::LayerNorm>(c.n_embd, c.layer_norm_epsilon));
  if (!c.tie_word_embeddings)
    lm_head_ = register_module("lm_head", std::make_shared<nn::Linear>(c.n_embd, c.vocab_size, false, 0.02, seed + 2));
}

Tensor Gpt2::forward(const Tensor& ids_in, Gpt2KvCache* cache) const {
  const Tensor ids = ids_in.to(wte_->weight().device());  // token ids follow the weights
  if (ids.dim() != 2) throw std::invalid_argument("Gpt2: expected token ids [B, T], got " + ids.str());
  const int64_t T = ids.size(1);
  const int64_t start = cache ? cache->length() : 0;
  if (start + T > config_.n_positions)
    throw std::invalid_argument("Gpt2: " + std::to_string(start + T) + " positions exceed n_positions " +
                                std::to_string(config_.n_positions));
  if (cache && cache->keys.empty()) {
    cache->keys.resize(h_.size());
    cache->values.resize(h_.size());
  }
  const Tensor pos = wpe_->weight().narrow(0, start, T);
  Tensor x = ops::add(wte_->forward(ids), pos);
  x = ops::dropout(x, training() ? config_.embd_pdrop : 0.0, training());
  // x stays the residual stream, `normed` the next LayerNorm's output of it.
  Tensor normed = h_.empty() ? ln_f_->forward(x) : h_[0]->ln_1().forward(x);
  for (size_t l = 0; l < h_.size(); ++l) {
    const nn::LayerNorm& next_ln = l + 1 < h_.size() ? h_[l + 1]->ln_1() : *ln_f_;
    ops::AddLayerNormResult r =
        h_[l]->forward(x, normed, next_ln, cache ? &cache->keys[l] : nullptr, cache ? &cache->values[l] : nullptr);
    x = std::move(r.sum);
    normed = std::move(r.normed);
  }
  x = normed;  // ln_f of the stream
  // Tied head: logits = x wte^T (a transposed view; no copy).
  return lm_head_ ? lm_head_->forward(x) : ops::matmul(x, wte_->weight().transpose(0, 1));
}

std::vector<std::vector<std::string>> Gpt2::layer_groups() const {
  std::vector<std::vector<std::string>> g{{"wte", "wpe"}};
  for (size_t l = 0; l < h_.size(); ++l) g.push_back({"h." + std::to_string(l)});
  g.push_back(lm_head_ ? std::vector<std::string>{"ln_f", "lm_head"} : std::vector<std::string>{"ln_f"});
  return g;
}

Tensor Gpt2::loss(const Tensor& ids, const Tensor& targets) const {
  const Tensor logits = forward(ids);
  return ops::cross_entropy(logits, targets.to(logits.device()), -100);
}

}  // namespace hone::models
