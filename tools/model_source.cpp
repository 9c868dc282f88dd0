#include "tools/model_source.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/io/checkpoint.h"
#include "engine/nn/lora.h"

namespace fs = std::filesystem;

namespace hone::cli {

namespace {

// A run fine-tuned with LoRA keeps its adapters next to the base weights in its checkpoint
// ("<path>.lora_A.weight"); hone.json records the LoRA config. Re-create the adapters and load them.
void restore_lora(const std::string& folder, const std::string& weights_path, nn::Module& model,
                  std::vector<std::string>& unexpected) {
  std::ifstream h(fs::path(folder) / "hone.json");
  if (!h) return;
  const auto j = nlohmann::json::parse(h, nullptr, false);
  if (!j.is_object() || !j.contains("lora") || j["lora"].is_null()) return;
  nn::LoraConfig c;
  const auto& l = j["lora"];
  c.rank = l.at("rank").get<int64_t>();
  c.alpha = l.at("alpha").get<double>();
  c.dropout = l.value("dropout", 0.0);
  c.target_patterns = l.at("targets").get<std::vector<std::string>>();
  c.seed = l.value("seed", uint64_t(1234));
  nn::inject_lora(model, c);
  for (auto& [key, t] : io::load_checkpoint(weights_path))
    if (key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos)
      model.set_parameter(key.rfind("transformer.", 0) == 0 ? key.substr(12) : key, t);
  std::vector<std::string> rest;
  for (const std::string& k : unexpected)
    if (k.find(".lora_") == std::string::npos) rest.push_back(k);
  unexpected = rest;
}

}  // namespace

models::LoadedGpt2 open_gpt2(const std::string& folder, bool verbose) {
  models::LoadedGpt2 m = models::load_gpt2(folder);
  restore_lora(folder, m.weights_path, *m.model, m.report.unexpected);
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
  restore_lora(folder, m.weights_path, *m.model, m.report.unexpected);
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
