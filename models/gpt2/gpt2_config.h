// GPT-2's hyperparameters, read from a Hugging Face config.json.
#pragma once
#include <string>

#include "engine/ops/ops.h"

namespace hone::models {

struct Gpt2Config {
  int64_t n_layer = 12, n_head = 12, n_embd = 768, n_positions = 1024, vocab_size = 50257;
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";  // gelu_new / gelu_pytorch_tanh (tanh form), gelu (erf), relu, silu
  double resid_pdrop = 0.1, embd_pdrop = 0.1, attn_pdrop = 0.1;
  bool tie_word_embeddings = true;
  bool scale_attn_weights = true;
  int64_t n_inner = 0;  // MLP width; 0 (HF: null) means 4 * n_embd
  int64_t mlp_width() const { return n_inner > 0 ? n_inner : 4 * n_embd; }

  // Reads config.json; unknown keys are ignored (HF configs carry many), but a present key of
  // the wrong type, or values that do not fit together (n_embd % n_head), name the file and key.
  static Gpt2Config from_json_file(const std::string& path);
  std::string to_json() const;  // an HF-compatible config.json
  void validate(const std::string& where) const;
};

}  // namespace hone::models
