#include "tools/model_source.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace hone::cli {

models::LoadedGpt2 open_gpt2(const std::string& folder, bool verbose) {
  models::LoadedGpt2 m = models::load_gpt2(folder);
  m.model->eval();
  if (verbose) std::fprintf(stderr, "loaded %s: %s\n", m.weights_path.c_str(), m.report.summary().c_str());
  return m;
}

std::string model_type_of(const std::string& folder) {
  const fs::path cfg = fs::path(folder) / "config.json";
  std::ifstream f(cfg);
  if (!f) throw std::runtime_error(cfg.string() + ": missing (every model folder needs one)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw std::runtime_error(cfg.string() + ": not valid JSON: " + e.what());
  }
  const std::string type = j.value("model_type", "");
  if (type == "gpt2" || (type.empty() && j.contains("n_embd"))) return "gpt2";
  if (type == "bert" || (type.empty() && j.contains("hidden_size"))) return "bert";
  throw std::runtime_error(cfg.string() + ": model_type '" + type + "' is not supported (gpt2, bert)");
}

models::LoadedBert open_bert(const std::string& folder, bool verbose) {
  models::BertLoadOptions o;
  std::ifstream h(fs::path(folder) / "hone.json");
  if (h) {
    const auto j = nlohmann::json::parse(h, nullptr, false);
    if (j.is_object() && j.value("pooling", "cls") == "mean") o.pooling = models::BertPooling::Mean;
  }
  models::LoadedBert m = models::load_bert_classifier(folder, o);
  m.model->eval();
  if (verbose) std::fprintf(stderr, "loaded %s: %s\n", m.weights_path.c_str(), m.report.summary().c_str());
  return m;
}

BpeTokenizer open_tokenizer(const std::string& folder) { return BpeTokenizer::from_folder(folder); }

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  for (const char* name : {"vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "vocab.txt", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    const fs::path src = fs::path(from) / name;
    if (fs::exists(src)) fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace hone::cli
