// GPT-2 (Radford et al. 2019) as Hugging Face's GPT2LMHeadModel, with its parameter names:
// wte, wpe, h.{i}.ln_1, h.{i}.attn.c_attn (Conv1D [in, out]), h.{i}.attn.c_proj, h.{i}.ln_2,
// h.{i}.mlp.c_fc, h.{i}.mlp.c_proj, ln_f; the LM head is tied to wte unless the config unties it
// (then lm_head.weight). Checkpoint keys with a "transformer." prefix map onto these names.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/gpt2/gpt2_config.h"

namespace hone::models {

// Keys and values of every layer for incremental decoding: cost per new token stays linear in
// the context instead of recomputing the whole prefix.
struct Gpt2KvCache {
  std::vector<Tensor> keys, values;  // per layer [B, H, T_cached, D]
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

class Gpt2Attention : public nn::Module {
 public:
  Gpt2Attention(const Gpt2Config& c, uint64_t seed);
  // x [B, T, C]; with cache tensors, appends this call's keys/values to them.
  Tensor forward(const Tensor& x, Tensor* cache_k, Tensor* cache_v) const;

 private:
  Gpt2Config c_;
  std::shared_ptr<nn::Conv1D> c_attn_, c_proj_;
};

class Gpt2Mlp : public nn::Module {
 public:
  Gpt2Mlp(const Gpt2Config& c, uint64_t seed);
  Tensor forward(const Tensor& x) const;

 private:
  Gpt2Config c_;
  std::shared_ptr<nn::Conv1D> c_fc_, c_proj_;
};

class Gpt2Block : public nn::Module {
 public:
  Gpt2Block(const Gpt2Config& c, uint64_t seed);
  // One pre-LN block on the residual stream `x`, given normed = ln_1(x) (computed by whoever
  // produced x), and `next_ln`, the LayerNorm after this block (the next block's ln_1, or ln_f).
  // Returns {x + attn + mlp, next_ln of it}: each residual add runs fused with the LayerNorm that
  // follows it (ops::add_layer_norm), so the stream is read once per add instead of twice.
  ops::AddLayerNormResult forward(const Tensor& x, const Tensor& normed, const nn::LayerNorm& next_ln,
                                  Tensor* cache_k, Tensor* cache_v) const;
  const nn::LayerNorm& ln_1() const { return *ln_1_; }

 private:
  Gpt2Config c_;
  std::shared_ptr<nn::LayerNorm> ln_1_, ln_2_;
  std::shared_ptr<Gpt2Attention> attn_;
  std::shared_ptr<Gpt2Mlp> mlp_;
};

class Gpt2 : public nn::Module {
 public:
  explicit Gpt2(const Gpt2Config& config, uint64_t seed = 1234);

  const Gpt2Config& config() const { return config_; }
  // Embeddings, each block, then the final norm (and an untied head).
  std::vector<std::vector<std::string>> layer_groups() const override;
  // ids int [B, T] -> logits float32 [B, T, vocab]. With a cache, ids are the new tokens only
  // and their positions continue after the cached ones.
  Tensor forward(const Tensor& ids, Gpt2KvCache* cache = nullptr) const;
  // Mean cross-entropy of logits against targets [B, T] (entries == -100 ignored), no shift:
  // targets[b, t] is the token expected after ids[b, t].
  Tensor loss(const Tensor& ids, const Tensor& targets) const;

 private:
  Gpt2Config config_;
  std::shared_ptr<nn::Embedding> wte_, wpe_;
  std::vector<std::shared_ptr<Gpt2Block>> h_;
  std::shared_ptr<nn::LayerNorm> ln_f_;
  std::shared_ptr<nn::Linear> lm_head_;  // only when embeddings are not tied
};

}  // namespace hone::models
