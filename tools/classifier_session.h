// A fine-tuned classifier ready to use: model, tokenizer and the run's settings (labels,
// pooling, max_length from hone.json). Shared by `hone eval` and `hone predict`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/data/wordpiece_tokenizer.h"
#include "engine/train/classification_task.h"
#include "models/bert/bert_loader.h"

namespace hone::cli {

struct ClassifierSession {
  models::LoadedBert loaded;
  std::unique_ptr<WordPieceTokenizer> tokenizer;
  std::vector<std::string> labels;
  int64_t max_length = 128;
  std::unique_ptr<ClassificationTask> task;  // evaluation / prediction over examples

  static ClassifierSession open(const std::string& folder);
  TokenizedExample encode(const std::string& text, const std::string& pair = "", int64_t label = 0) const;
};

}  // namespace hone::cli
