// One function per fine-tuning task; each reads its recipe schema, builds the model and data,
// and runs the shared Trainer. The run folder is itself a model folder (config.json, tokenizer
// files, hone.json, checkpoints/latest), so other commands accept it as --model.
#pragma once
#include <string>
#include <vector>

namespace hone::cli {

int finetune_causal_lm(const std::string& recipe, const std::vector<std::string>& overrides);
int finetune_classification(const std::string& recipe, const std::vector<std::string>& overrides);
int finetune_image(const std::string& recipe, const std::vector<std::string>& overrides);

}  // namespace hone::cli
