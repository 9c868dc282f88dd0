// Resolving what the user named as a model (`--model M`): an HF GPT-2 folder or a hone run.
#pragma once
#include <memory>
#include <string>

#include "engine/data/bpe_tokenizer.h"
#include "models/bert/bert_loader.h"
#include "models/gpt2/gpt2_loader.h"

namespace hone::cli {

// "gpt2" or "bert", from the folder's config.json (model_type, else the keys it has).
std::string model_type_of(const std::string& folder);
// BERT classifier in eval mode; pooling from the run's hone.json when present, else CLS.
models::LoadedBert open_bert(const std::string& folder, bool verbose);

// Loads the model in eval mode; prints the load report to stderr when `verbose`.
models::LoadedGpt2 open_gpt2(const std::string& folder, bool verbose);
// The tokenizer files beside the model (vocab.json + merges.txt or encoder.json + vocab.bpe).
BpeTokenizer open_tokenizer(const std::string& folder);
// Copies whichever tokenizer files exist in `from` into `to`.
void copy_tokenizer_files(const std::string& from, const std::string& to);

}  // namespace hone::cli
