// BERT (Devlin et al. 2019) as Hugging Face's BertModel and BertForSequenceClassification, with
// their parameter names (embeddings.word_embeddings, encoder.layer.{i}.attention.self.query, ...,
// pooler.dense; the classifier as "classifier"). Post-LayerNorm blocks, erf GELU by default,
// padding masks from attention_mask, token types, the tanh pooler, and mean pooling as
// sentence-transformers models (all-MiniLM-L6-v2) use it.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/bert/bert_config.h"

namespace hone::models {

struct BertInputs {
  Tensor input_ids;       // int [B, T]
  Tensor token_type_ids;  // int [B, T] or undefined (all 0)
  Tensor attention_mask;  // int/uint8 [B, T] (1 = token, 0 = padding) or undefined (all 1)
  // The same inputs on `device` (the model's: inputs follow the weights).
  BertInputs to(Device device) const;
};

class BertEmbeddings : public nn::Module {
 public:
  BertEmbeddings(const BertConfig& c, uint64_t seed);
  Tensor forward(const Tensor& ids, const Tensor& token_types) const;

 private:
  BertConfig c_;
  std::shared_ptr<nn::Embedding> word_, position_, token_type_;
  std::shared_ptr<nn::LayerNorm> ln_;
};

class BertLayer : public nn::Module {
 public:
  BertLayer(const BertConfig& c, uint64_t seed);
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask) const;

 private:
  BertConfig c_;
  std::shared_ptr<nn::Linear> query_, key_, value_, attn_out_, intermediate_, out_;
  std::shared_ptr<nn::LayerNorm> attn_ln_, out_ln_;
};

class BertModel : public nn::Module {
 public:
  BertModel(const BertConfig& c, uint64_t seed);
  // Last hidden states [B, T, H].
  Tensor forward(const BertInputs& in) const;
  // tanh(dense(h[:, 0])) [B, H].
  Tensor pooled(const Tensor& hidden) const;
  const BertConfig& config() const { return c_; }

 private:
  BertConfig c_;
  std::shared_ptr<BertEmbeddings> embeddings_;
  std::vector<std::shared_ptr<BertLayer>> layers_;
  std::shared_ptr<nn::Linear> pooler_;
};

enum class BertPooling { Cls, Mean };  // pooler output of [CLS] (HF), or masked mean (sentence-transformers)

class BertForSequenceClassification : public nn::Module {
 public:
  BertForSequenceClassification(const BertConfig& c, BertPooling pooling, uint64_t seed);
  Tensor logits(const BertInputs& in) const;  // [B, num_labels]
  const BertConfig& config() const { return bert_->config(); }
  BertModel& bert() { return *bert_; }
  BertPooling pooling() const { return pooling_; }
  // Embeddings, each encoder layer, then pooler + classifier.
  std::vector<std::vector<std::string>> layer_groups() const override;

 private:
  std::shared_ptr<BertModel> bert_;
  std::shared_ptr<nn::Linear> classifier_;
  BertPooling pooling_;
  double dropout_;
};

// Masked mean over tokens: sum(h * mask) / sum(mask) -> [B, H].
Tensor mean_pool(const Tensor& hidden, const Tensor& attention_mask);

}  // namespace hone::models
