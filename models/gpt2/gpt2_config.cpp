#include "models/gpt2/gpt2_config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/model_folder.h"
#include <sstream>
#include <stdexcept>

namespace hone::models {


Gpt2Config Gpt2Config::from_json_file(const std::string& path) {
  const nlohmann::json j = read_config_json(path);
  Gpt2Config c;
  if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "gpt2")
    throw std::runtime_error(path + ": model_type is '" + j["model_type"].get<std::string>() + "', expected 'gpt2'");
  read_key(j, "n_layer", c.n_layer, path);
  read_key(j, "n_head", c.n_head, path);
  read_key(j, "n_embd", c.n_embd, path);
  read_key(j, "n_positions", c.n_positions, path);
  read_key(j, "vocab_size", c.vocab_size, path);
  read_key(j, "layer_norm_epsilon", c.layer_norm_epsilon, path);
  read_key(j, "activation_function", c.activation_function, path);
  read_key(j, "resid_pdrop", c.resid_pdrop, path);
  read_key(j, "embd_pdrop", c.embd_pdrop, path);
  read_key(j, "attn_pdrop", c.attn_pdrop, path);
  read_key(j, "tie_word_embeddings", c.tie_word_embeddings, path);
  read_key(j, "scale_attn_weights", c.scale_attn_weights, path);
  read_key(j, "n_inner", c.n_inner, path);
  // Keys that change the architecture in ways hone does not implement: refuse rather than
  // silently computing something else.
  if (j.contains("scale_attn_by_inverse_layer_idx") && j["scale_attn_by_inverse_layer_idx"].is_boolean() &&
      j["scale_attn_by_inverse_layer_idx"].get<bool>())
    throw std::runtime_error(path + ": key 'scale_attn_by_inverse_layer_idx' = true is not supported");
  c.validate(path);
  return c;
}

void Gpt2Config::validate(const std::string& where) const {
  auto fail = [&](const std::string& what) { throw std::runtime_error(where + ": " + what); };
  if (n_layer < 1 || n_head < 1 || n_embd < 1 || n_positions < 1 || vocab_size < 1)
    fail("n_layer, n_head, n_embd, n_positions and vocab_size must be positive");
  if (n_embd % n_head != 0)
    fail("n_embd " + std::to_string(n_embd) + " is not divisible by n_head " + std::to_string(n_head));
  for (double p : {resid_pdrop, embd_pdrop, attn_pdrop})
    if (p < 0 || p >= 1) fail("dropout probabilities must be in [0, 1)");
  if (activation_function != "gelu_new" && activation_function != "gelu" && activation_function != "relu" &&
      activation_function != "gelu_pytorch_tanh" && activation_function != "silu" && activation_function != "gelu_fast")
    fail("activation_function '" + activation_function + "' is not supported (gelu_new, gelu, gelu_pytorch_tanh, relu, silu)");
}

std::string Gpt2Config::to_json() const {
  nlohmann::json j = {{"model_type", "gpt2"},
                      {"architectures", {"GPT2LMHeadModel"}},
                      {"n_layer", n_layer},
                      {"n_head", n_head},
                      {"n_embd", n_embd},
                      {"n_positions", n_positions},
                      {"n_ctx", n_positions},
                      {"vocab_size", vocab_size},
                      {"layer_norm_epsilon", layer_norm_epsilon},
                      {"activation_function", activation_function},
                      {"resid_pdrop", resid_pdrop},
                      {"embd_pdrop", embd_pdrop},
                      {"attn_pdrop", attn_pdrop},
                      {"tie_word_embeddings", tie_word_embeddings},
                      {"scale_attn_weights", scale_attn_weights},
                      {"n_inner", n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr)},
                      {"bos_token_id", 50256},
                      {"eos_token_id", 50256}};
  return j.dump(2);
}

}  // namespace hone::models
