#include "models/bert/bert.h"

#include <cmath>

namespace hone::models {

namespace {

Tensor activation(const Tensor& x, const std::string& name) {
  if (name == "relu") return ops::relu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return ops::gelu(x, ops::GeluApprox::Tanh);
  return ops::gelu(x, ops::GeluApprox::None);
}

// Container modules that only exist to give HF's names ("attention.self.query").
struct Named : nn::Module {
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    return register_module(name, std::move(m));
  }
};

}  // namespace

BertEmbeddings::BertEmbeddings(const BertConfig& c, uint64_t seed) : c_(c) {
  word_ = register_module("word_embeddings", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size, 0.02, seed));
  position_ = register_module("position_embeddings",
                              std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size, 0.02, seed + 1));
  token_type_ = register_module("token_type_embeddings",
                                std::make_shared<nn::Embedding>(c.type_vocab_size, c.hidden_size, 0.02, seed + 2));
  ln_ = register_module("LayerNorm", std::make_shared<nn::LayerNorm>(c.hidden_size, c.layer_norm_eps));
}

Tensor BertEmbeddings::forward(const Tensor& ids, const Tensor& token_types) const {
  const int64_t T = ids.size(1);
  if (T > c_.max_position_embeddings)
    throw std::invalid_argument("Bert: " + std::to_string(T) + " tokens exceed max_position_embeddings " +
                                std::to_string(c_.max_position_embeddings));
  Tensor x = ops::add(word_->forward(ids), position_->weight().narrow(0, 0, T));
  x = token_types.defined() ? ops::add(x, token_type_->forward(token_types))
                            : ops::add(x, token_type_->weight().narrow(0, 0, 1));
  x = ln_->forward(x);
  return ops::dropout(x, training() ? c_.hidden_dropout_prob : 0.0, training());
}

BertLayer::BertLayer(const BertConfig& c, uint64_t seed) : c_(c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  auto attention = register_module("attention", std::make_shared<Named>());
  auto self = attention->add("self", std::make_shared<Named>());
  query_ = self->add("query", std::make_shared<nn::Linear>(H, H, true, 0.02, seed));
  key_ = self->add("key", std::make_shared<nn::Linear>(H, H, true, 0.02, seed + 1));
  value_ = self->add("value", std::make_shared<nn::Linear>(H, H, true, 0.02, seed + 2));
  auto attn_output = attention->add("output", std::make_shared<Named>());
  attn_out_ = attn_output->add("dense", std::make_shared<nn::Linear>(H, H, true, 0.02, seed + 3));
  attn_ln_ = attn_output->add("LayerNorm", std::make_shared<nn::LayerNorm>(H, c.layer_norm_eps));
  auto intermediate = register_module("intermediate", std::make_shared<Named>());
  intermediate_ = intermediate->add("dense", std::make_shared<nn::Linear>(H, I, true, 0.02, seed + 4));
  auto output = register_module("output", std::make_shared<Named>());
  out_ = output->add("dense", std::make_shared<nn::Linear>(I, H, true, 0.02, seed + 5));
  out_ln_ = output->add("LayerNorm", std::make_shared<nn::LayerNorm>(H, c.layer_norm_eps));
}

Tensor BertLayer::forward(const Tensor& x, const Tensor& key_padding_mask) const {
  const int64_t B = x.size(0), T = x.size(1), H = c_.hidden_size, NH = c_.num_attention_heads, D = H / NH;
  auto heads = [&](const Tensor& t) { return t.reshape({B, T, NH, D}).transpose(1, 2); };
  ops::AttentionArgs args;
  args.key_padding_mask = key_padding_mask;
  args.dropout_p = training() ? c_.attention_probs_dropout_prob : 0.0;
  const Tensor att = ops::scaled_dot_product_attention(heads(query_->forward(x)), heads(key_->forward(x)),
                                                       heads(value_->forward(x)), args);
  const Tensor merged = att.transpose(1, 2).reshape({B, T, H});
  const double p = training() ? c_.hidden_dropout_prob : 0.0;
  // Post-LN: each residual add runs fused with the LayerNorm after it; the GELU with its bias add.
  const Tensor a = attn_ln_->forward_after_add(ops::dropout(attn_out_->forward(merged), p, training()), x).normed;
  const std::string& act = c_.hidden_act;
  const Tensor h = act == "gelu"       ? intermediate_->forward_gelu(a, ops::GeluApprox::None)
                   : act == "gelu_new" || act == "gelu_pytorch_tanh" ? intermediate_->forward_gelu(a, ops::GeluApprox::Tanh)
                                       : activation(intermediate_->forward(a), act);
  return out_ln_->forward_after_add(ops::dropout(out_->forward(h), p, training()), a).normed;
}

BertModel::BertModel(const BertConfig& c, uint64_t seed) : c_(c) {
  c.validate("BertModel");
  embeddings_ = register_module("embeddings", std::make_shared<BertEmbeddings>(c, seed));
  auto encoder = register_module("encoder", std::make_shared<Named>());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    layers_.push_back(encoder->add("layer." + std::to_string(l), std::make_shared<BertLayer>(c, seed + 10 * (l + 1))));
  auto pooler = register_module("pooler", std::make_shared<Named>());
  pooler_ = pooler->add("dense", std::make_shared<nn::Linear>(c.hidden_size, c.hidden_size, true, 0.02, seed + 5));
}

BertInputs BertInputs::to(Device device) const {
  auto move = [&](const Tensor& t) { return t.defined() ? t.to(device) : t; };
  return {move(input_ids), move(token_type_ids), move(attention_mask)};
}

Tensor BertModel::forward(const BertInputs& in_any) const {
  const BertInputs in = in_any.to(device());
  if (in.input_ids.dim() != 2) throw std::invalid_argument("Bert: input_ids must be [B, T], got " + in.input_ids.str());
  Tensor mask;
  if (in.attention_mask.defined()) {
    if (in.attention_mask.shape() != in.input_ids.shape())
      throw std::invalid_argument("Bert: attention_mask " + in.attention_mask.str() + " does not match input_ids " +
                                  in.input_ids.str());
    mask = ops::gt(in.attention_mask.to(DType::I64), Tensor::scalar(0, DType::I64, in.attention_mask.device()));
  }
  if (in.token_type_ids.defined() && in.token_type_ids.shape() != in.input_ids.shape())
    throw std::invalid_argument("Bert: token_type_ids " + in.token_type_ids.str() + " does not match input_ids " +
                                in.input_ids.str());
  Tensor x = embeddings_->forward(in.input_ids, in.token_type_ids);
  for (const auto& layer : layers_) x = layer->forward(x, mask);
  return x;
}

Tensor BertModel::pooled(const Tensor& hidden) const { return ops::tanh(pooler_->forward(hidden.select(1, 0))); }

Tensor mean_pool(const Tensor& hidden, const Tensor& attention_mask) {
  if (!attention_mask.defined()) return ops::mean(hidden, {1});
  const Tensor m = attention_mask.to(hidden.device()).to(hidden.dtype()).unsqueeze(-1);  // [B, T, 1]
  const Tensor count = ops::maximum(ops::sum(m, {1}), Tensor::scalar(1e-9, hidden.dtype(), hidden.device()));
  return ops::div(ops::sum(ops::mul(hidden, m), {1}), count);
}

BertForSequenceClassification::BertForSequenceClassification(const BertConfig& c, BertPooling pooling, uint64_t seed)
    : pooling_(pooling), dropout_(c.classifier_dropout >= 0 ? c.classifier_dropout : c.hidden_dropout_prob) {
  bert_ = register_module("bert", std::make_shared<BertModel>(c, seed));
  classifier_ = register_module("classifier", std::make_shared<nn::Linear>(c.hidden_size, c.num_labels, true, 0.02, seed + 7));
}

std::vector<std::vector<std::string>> BertForSequenceClassification::layer_groups() const {
  std::vector<std::vector<std::string>> g{{"bert.embeddings"}};
  for (int64_t l = 0; l < config().num_hidden_layers; ++l) g.push_back({"bert.encoder.layer." + std::to_string(l)});
  g.push_back({"bert.pooler", "classifier"});
  return g;
}

Tensor BertForSequenceClassification::logits(const BertInputs& in) const {
  const Tensor h = bert_->forward(in);
  const Tensor pooled = pooling_ == BertPooling::Cls ? bert_->pooled(h) : mean_pool(h, in.attention_mask);
  return classifier_->forward(ops::dropout(pooled, training() ? dropout_ : 0.0, training()));
}

}  // namespace hone::models
