// A small GPT-style decoder (pre-LayerNorm blocks of causal self-attention and a GELU MLP),
// written directly on engine ops. It is the model of `hone demo`: the engine core trained end to
// end before the real checkpoint-loading models exist.
#pragma once
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hone::models {

struct TinyGptConfig {
  int64_t vocab = 32, seq_len = 32, dim = 64, heads = 4, layers = 2;
  double dropout = 0.0;
  uint64_t seed = 1;
};

class TinyGpt {
 public:
  explicit TinyGpt(const TinyGptConfig& config);

  // ids int64 [B, T] -> logits [B, T, vocab]
  Tensor forward(const Tensor& ids, bool training) const;

  struct Param {
    std::string name;
    Tensor tensor;
    bool decay;  // weight decay applies (matrices), not biases, norms or embeddings
  };
  const std::vector<Param>& parameters() const { return params_; }
  int64_t parameter_count() const;

 private:
  struct Block {
    Tensor ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b;
  };
  Tensor add_param(const std::string& name, Tensor t, bool decay);

  TinyGptConfig cfg_;
  Tensor tok_emb_, pos_emb_, lnf_w_, lnf_b_, head_w_;
  std::vector<Block> blocks_;
  std::vector<Param> params_;
};

}  // namespace hone::models
