// Loading BERT-family checkpoints as people have them: BertModel folders (keys without prefix,
// e.g. all-MiniLM-L6-v2), BertForSequenceClassification folders ("bert." prefix plus
// "classifier"), DataParallel "module." prefixes, and the legacy LayerNorm.gamma/beta names.
// A classification head missing from the checkpoint (or of another label count) is initialised
// fresh, and the report says so.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/bert/bert.h"
#include "models/load_report.h"

namespace hone::models {

struct BertLoadOptions {
  BertPooling pooling = BertPooling::Cls;
  std::vector<std::string> labels;  // non-empty: the task's label names (fixes num_labels)
  uint64_t seed = 1234;             // for a fresh head
  bool random_init = false;         // only config.json is read
  double dropout = -1;              // >= 0: overrides the config's hidden/attention/classifier dropout
};

struct LoadedBert {
  std::shared_ptr<BertForSequenceClassification> model;
  ModelLoadReport report;
  std::string config_path, weights_path;
  bool new_head = false;
  std::vector<std::string> checkpoint_keys;  // as stored, for naming gradients like the checkpoint
};

std::string bert_weights_path(const std::string& folder);
LoadedBert load_bert_classifier(const std::string& folder, const BertLoadOptions& options);
// Checkpoint key -> our parameter name ("bert.encoder..." / "classifier..."), or "" if it is a
// known non-parameter (position_ids, pretraining heads).
std::string bert_parameter_name(const std::string& checkpoint_key);

// An HF BertForSequenceClassification folder: config.json (with id2label) + model.safetensors.
void export_bert_hf(const BertForSequenceClassification& model, const std::string& out_dir);

}  // namespace hone::models
