#include "models/bert/bert_loader.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "engine/io/checkpoint.h"
#include "models/model_folder.h"

namespace fs = std::filesystem;

namespace hone::models {

std::string bert_weights_path(const std::string& folder) { return model_weights_path(folder); }

std::string bert_parameter_name(const std::string& key_in) {
  std::string k = key_in;
  if (k.rfind("module.", 0) == 0) k = k.substr(7);
  if (k.ends_with("position_ids") || k.rfind("cls.", 0) == 0) return "";  // buffers, pretraining heads
  // Legacy TF-era names.
  auto replace_suffix = [&](const char* from, const char* to) {
    if (k.ends_with(from)) k = k.substr(0, k.size() - std::string(from).size()) + to;
  };
  replace_suffix("LayerNorm.gamma", "LayerNorm.weight");
  replace_suffix("LayerNorm.beta", "LayerNorm.bias");
  if (k.rfind("classifier.", 0) == 0 || k.rfind("bert.", 0) == 0) return k;
  return "bert." + k;
}

LoadedBert load_bert_classifier(const std::string& folder, const BertLoadOptions& o) {
  if (!fs::is_directory(folder))
    throw std::runtime_error(folder + ": not a model folder (expected a directory with config.json)");
  LoadedBert out;
  out.config_path = (fs::path(folder) / "config.json").string();
  if (!fs::exists(out.config_path)) throw std::runtime_error(out.config_path + ": missing (every model folder needs one)");
  BertConfig cfg = BertConfig::from_json_file(out.config_path);
  const int64_t checkpoint_labels = cfg.num_labels;
  if (o.dropout >= 0) cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = cfg.classifier_dropout = o.dropout;
  if (!o.labels.empty()) {
    cfg.id2label = o.labels;
    cfg.num_labels = int64_t(o.labels.size());
  }
  out.model = std::make_shared<BertForSequenceClassification>(cfg, o.pooling, o.seed);
  if (o.random_init) {
    out.report.notes.push_back("random initialisation (no weights loaded)");
    out.new_head = true;
    return out;
  }
  out.weights_path = bert_weights_path(folder);
  const io::StateDict sd = io::load_checkpoint(out.weights_path);
  std::map<std::string, Tensor> params;
  for (auto& [name, t] : out.model->named_parameters()) params[name] = t;
  std::set<std::string> seen;
  bool head_shape_differs = false;
  for (const auto& [key, tensor] : sd) {
    out.checkpoint_keys.push_back(key);
    const std::string name = bert_parameter_name(key);
    if (name.empty()) {
      out.report.ignored.push_back(key);
      continue;
    }
    auto it = params.find(name);
    if (it == params.end()) {
      out.report.unexpected.push_back(key);
      continue;
    }
    if (tensor.shape() != it->second.shape()) {
      // Another label count (same hidden size): the head starts fresh. Any other mismatch is an error.
      if (name.rfind("classifier.", 0) == 0 && tensor.dim() == it->second.dim() &&
          (tensor.dim() == 1 || tensor.size(1) == it->second.size(1))) {
        head_shape_differs = true;
        continue;
      }
      throw std::runtime_error(out.weights_path + ": tensor '" + key + "' has shape " + shape_str(tensor.shape()) +
                               " but " + out.config_path + " implies " + shape_str(it->second.shape()));
    }
    out.model->set_parameter(name, tensor);
    out.report.applied.push_back(key);
    seen.insert(name);
  }
  bool pooler_missing = false;
  for (auto& [name, t] : params) {
    if (seen.count(name)) continue;
    if (name.rfind("classifier.", 0) == 0) continue;  // reported below
    if (name.rfind("bert.pooler.", 0) == 0) {
      // Checkpoints saved without a pooling layer: HF initialises it fresh too.
      pooler_missing = true;
      continue;
    }
    out.report.missing.push_back(name);
  }
  if (pooler_missing)
    out.report.notes.push_back("pooler not in the checkpoint: initialised fresh" +
                               std::string(o.pooling == BertPooling::Mean ? " (unused with mean pooling)" : ""));
  if (!seen.count("classifier.weight")) {
    out.new_head = true;
    out.report.notes.push_back(head_shape_differs
                                   ? "classification head re-initialised: the checkpoint's has " +
                                         std::to_string(checkpoint_labels) + " labels, the task " +
                                         std::to_string(cfg.num_labels)
                                   : "new classification head initialised (" + std::to_string(cfg.num_labels) + " labels)");
  }
  if (!out.report.missing.empty())
    throw std::runtime_error(out.weights_path + ": " + std::to_string(out.report.missing.size()) +
                             " parameters missing, e.g. '" + out.report.missing.front() + "' (" + out.report.summary() + ")");
  return out;
}

void export_bert_hf(const BertForSequenceClassification& model, const std::string& out_dir) {
  fs::create_directories(out_dir);
  io::StateDict sd;
  for (auto& [name, t] : model.named_parameters()) sd[name] = t.detach().contiguous();
  io::save_safetensors((fs::path(out_dir) / "model.safetensors").string(), sd, {{"format", "pt"}});
  const std::string cfg = model.config().to_json();
  io::write_file_atomic((fs::path(out_dir) / "config.json").string(), [&](std::FILE* f) { std::fputs(cfg.c_str(), f); });
}

}  // namespace hone::models
