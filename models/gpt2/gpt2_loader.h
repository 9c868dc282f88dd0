// Loading GPT-2 from what people have: a Hugging Face folder (config.json + model.safetensors or
// pytorch_model.bin, sharded or not) or a hone run folder (config.json + checkpoints/latest).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/gpt2/gpt2.h"
#include "models/load_report.h"

namespace hone::models {


struct LoadedGpt2 {
  std::shared_ptr<Gpt2> model;
  ModelLoadReport report;
  std::string config_path, weights_path;
};

// Where a model folder keeps its weights: the HF files, or a hone run's latest checkpoint.
std::string gpt2_weights_path(const std::string& folder);

// Throws std::runtime_error naming the file on a missing or corrupt file, a config that
// disagrees with the tensor shapes (naming the tensor and both shapes), or missing weights.
LoadedGpt2 load_gpt2(const std::string& folder);

// An HF folder that transformers loads: config.json + model.safetensors (names prefixed with
// "transformer.", Conv1D layout as HF stores it).
void export_gpt2_hf(const Gpt2& model, const std::string& out_dir);

}  // namespace hone::models
