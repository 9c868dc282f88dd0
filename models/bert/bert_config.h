// BERT's hyperparameters from a Hugging Face config.json (BertModel, MiniLM-style models, and
// BertForSequenceClassification with num_labels / id2label).
#pragma once
#include <string>
#include <vector>

namespace hone::models {

struct BertConfig {
  int64_t vocab_size = 30522, hidden_size = 768, num_hidden_layers = 12, num_attention_heads = 12,
          intermediate_size = 3072, max_position_embeddings = 512, type_vocab_size = 2, pad_token_id = 0;
  std::string hidden_act = "gelu";  // gelu (erf), gelu_new (tanh form), relu
  double hidden_dropout_prob = 0.1, attention_probs_dropout_prob = 0.1, layer_norm_eps = 1e-12;
  double classifier_dropout = -1;  // < 0: use hidden_dropout_prob, as HF does for null
  int64_t num_labels = 2;
  std::vector<std::string> id2label;  // label names by id ("LABEL_0".. when absent)

  static BertConfig from_json_file(const std::string& path);
  std::string to_json() const;
  void validate(const std::string& where) const;
};

}  // namespace hone::models
