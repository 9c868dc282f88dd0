#include "models/bert/bert_config.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "models/model_folder.h"
#include <stdexcept>

namespace hone::models {


BertConfig BertConfig::from_json_file(const std::string& path) {
  const nlohmann::json j = read_config_json(path);
  if (j.contains("model_type") && j["model_type"].is_string() && j["model_type"] != "bert")
    throw std::runtime_error(path + ": model_type is '" + j["model_type"].get<std::string>() + "', expected 'bert'");
  BertConfig c;
  read_key(j, "vocab_size", c.vocab_size, path);
  read_key(j, "hidden_size", c.hidden_size, path);
  read_key(j, "num_hidden_layers", c.num_hidden_layers, path);
  read_key(j, "num_attention_heads", c.num_attention_heads, path);
  read_key(j, "intermediate_size", c.intermediate_size, path);
  read_key(j, "max_position_embeddings", c.max_position_embeddings, path);
  read_key(j, "type_vocab_size", c.type_vocab_size, path);
  read_key(j, "pad_token_id", c.pad_token_id, path);
  read_key(j, "hidden_act", c.hidden_act, path);
  read_key(j, "hidden_dropout_prob", c.hidden_dropout_prob, path);
  read_key(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, path);
  read_key(j, "layer_norm_eps", c.layer_norm_eps, path);
  read_key(j, "classifier_dropout", c.classifier_dropout, path);
  if (j.contains("position_embedding_type") && j["position_embedding_type"] != "absolute")
    throw std::runtime_error(path + ": position_embedding_type " + j["position_embedding_type"].dump() +
                             " is not supported (absolute)");
  // Labels: id2label {"0": "negative", ...} fixes num_labels; else num_labels (default 2).
  if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
    std::map<int64_t, std::string> m;
    for (auto& [k, v] : j["id2label"].items()) {
      try {
        m[std::stoll(k)] = v.get<std::string>();
      } catch (const std::exception&) {
        throw std::runtime_error(path + ": id2label entry '" + k + "' is not an integer id with a string name");
      }
    }
    for (int64_t i = 0; i < int64_t(m.size()); ++i) {
      if (!m.count(i)) throw std::runtime_error(path + ": id2label misses id " + std::to_string(i));
      c.id2label.push_back(m[i]);
    }
    c.num_labels = int64_t(c.id2label.size());
  } else {
    read_key(j, "num_labels", c.num_labels, path);
  }
  if (c.id2label.empty())
    for (int64_t i = 0; i < c.num_labels; ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
  c.validate(path);
  return c;
}

void BertConfig::validate(const std::string& where) const {
  auto fail = [&](const std::string& what) { throw std::runtime_error(where + ": " + what); };
  if (vocab_size < 1 || hidden_size < 1 || num_hidden_layers < 1 || num_attention_heads < 1 || intermediate_size < 1 ||
      max_position_embeddings < 1 || type_vocab_size < 1 || num_labels < 1)
    fail("sizes and num_labels must be positive");
  if (hidden_size % num_attention_heads != 0)
    fail("hidden_size " + std::to_string(hidden_size) + " is not divisible by num_attention_heads " +
         std::to_string(num_attention_heads));
  if (hidden_act != "gelu" && hidden_act != "gelu_new" && hidden_act != "relu" && hidden_act != "gelu_pytorch_tanh")
    fail("hidden_act '" + hidden_act + "' is not supported (gelu, gelu_new, relu)");
  for (double p : {hidden_dropout_prob, attention_probs_dropout_prob})
    if (p < 0 || p >= 1) fail("dropout probabilities must be in [0, 1)");
}

std::string BertConfig::to_json() const {
  nlohmann::json id2l = nlohmann::json::object(), l2id = nlohmann::json::object();
  for (size_t i = 0; i < id2label.size(); ++i) {
    id2l[std::to_string(i)] = id2label[i];
    l2id[id2label[i]] = i;
  }
  nlohmann::json j = {{"model_type", "bert"},
                      {"architectures", {"BertForSequenceClassification"}},
                      {"vocab_size", vocab_size},
                      {"hidden_size", hidden_size},
                      {"num_hidden_layers", num_hidden_layers},
                      {"num_attention_heads", num_attention_heads},
                      {"intermediate_size", intermediate_size},
                      {"max_position_embeddings", max_position_embeddings},
                      {"type_vocab_size", type_vocab_size},
                      {"pad_token_id", pad_token_id},
                      {"hidden_act", hidden_act},
                      {"hidden_dropout_prob", hidden_dropout_prob},
                      {"attention_probs_dropout_prob", attention_probs_dropout_prob},
                      {"layer_norm_eps", layer_norm_eps},
                      {"position_embedding_type", "absolute"},
                      {"num_labels", num_labels},
                      {"id2label", id2l},
                      {"label2id", l2id}};
  if (classifier_dropout >= 0) j["classifier_dropout"] = classifier_dropout;
  return j.dump(2);
}

}  // namespace hone::models
