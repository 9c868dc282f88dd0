#include "tools/classifier_session.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace hone::cli {

ClassifierSession ClassifierSession::open(const std::string& folder) {
  ClassifierSession s;
  models::BertLoadOptions o;
  const fs::path meta = fs::path(folder) / "hone.json";
  std::ifstream f(meta);
  if (f) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
      throw std::runtime_error(meta.string() + ": not valid JSON: " + e.what());
    }
    if (j.value("pooling", "cls") == "mean") o.pooling = models::BertPooling::Mean;
    s.max_length = j.value("max_length", int64_t(128));
  }
  s.loaded = models::load_bert_classifier(folder, o);
  if (s.loaded.new_head)
    throw std::runtime_error(folder + ": has no trained classification head (" + s.loaded.report.summary() +
                             "); fine-tune it first");
  s.loaded.model->eval();
  s.labels = s.loaded.model->config().id2label;
  s.tokenizer = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_folder(folder));
  auto model = s.loaded.model;
  s.task = std::make_unique<ClassificationTask>(
      *model, [model](const Tensor& i, const Tensor& t, const Tensor& m) { return model->logits({i, t, m}); },
      std::vector<TokenizedExample>{TokenizedExample{}}, std::vector<TokenizedExample>{}, s.labels, 32,
      s.tokenizer->pad_id(), 0.0, 0);
  return s;
}

TokenizedExample ClassifierSession::encode(const std::string& text, const std::string& pair, int64_t label) const {
  const Encoding e = tokenizer->encode(text, pair, max_length, !pair.empty());
  return {e.ids, e.token_type_ids, label};
}

}  // namespace hone::cli
