#include "tools/recipe_common.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <stdexcept>

#include "engine/io/checkpoint.h"

namespace hone::cli {

using T = RecipeField::Type;

std::vector<RecipeField> common_recipe_fields() {
  return {
      {"task", T::String, "causal_lm", "what to train: causal_lm or sequence_classification"},
      {"model", T::String, "", "model folder (Hugging Face layout) or a hone run", true},
      {"init", T::String, "pretrained", "pretrained (load the weights) or random (config.json only)"},
      {"tokenizer", T::String, "", "folder with the tokenizer files (default: the model folder)"},
      {"batch_size", T::Int, "8", "examples (or windows) per micro-batch"},
      {"grad_accum", T::Int, "1", "micro-batches per optimizer step"},
      {"steps", T::Int, "100", "optimizer steps"},
      {"optimizer.lr", T::Float, "5e-5", "peak learning rate"},
      {"optimizer.weight_decay", T::Float, "0.01", "AdamW decoupled weight decay (matrices only)"},
      {"optimizer.beta1", T::Float, "0.9", "AdamW beta1"},
      {"optimizer.beta2", T::Float, "0.999", "AdamW beta2"},
      {"optimizer.eps", T::Float, "1e-8", "AdamW epsilon"},
      {"schedule.warmup_steps", T::Int, "0", "linear warmup steps"},
      {"schedule.decay", T::String, "cosine", "cosine, linear or constant after warmup"},
      {"schedule.min_lr_ratio", T::Float, "0.0", "final lr as a fraction of the peak"},
      {"clip_grad_norm", T::Float, "1.0", "global gradient-norm clip (0 disables)"},
      {"eval_every", T::Int, "50", "evaluate on held-out data every N steps"},
      {"save_every", T::Int, "0", "checkpoint every N steps (0: only at the end)"},
      {"log_every", T::Int, "10", "progress line every N steps when not on a terminal"},
      {"dropout", T::Float, "-1", "override every dropout rate of the config (-1 keeps the config's)"},
      {"out_dir", T::String, "runs/finetune", "run folder (metrics.jsonl, checkpoints, config)"},
      {"resume", T::Bool, "false", "continue from out_dir's latest checkpoint"},
      {"stop_after", T::Int, "0", "stop after N steps of this invocation (0: run to the end); resume later"},
      {"seed", T::Int, "1234", "seed of data order, dropout and any fresh weights"},
      {"device", T::String, "cpu", "cpu (cuda arrives with the CUDA backend)"},
      {"precision", T::String, "fp32", "fp32 (bf16/fp16 arrive with the CUDA backend)"},
  };
}

TrainerOptions trainer_options(const Recipe& r) {
  TrainerOptions o;
  o.steps = r.get_int("steps");
  o.grad_accum = r.get_int("grad_accum");
  o.lr = r.get_float("optimizer.lr");
  o.weight_decay = r.get_float("optimizer.weight_decay");
  o.beta1 = r.get_float("optimizer.beta1");
  o.beta2 = r.get_float("optimizer.beta2");
  o.eps = r.get_float("optimizer.eps");
  o.warmup_steps = r.get_int("schedule.warmup_steps");
  o.decay = r.get_string("schedule.decay");
  o.min_lr_ratio = r.get_float("schedule.min_lr_ratio");
  o.clip_grad_norm = r.get_float("clip_grad_norm");
  o.eval_every = r.get_int("eval_every");
  o.save_every = r.get_int("save_every");
  o.log_every = r.get_int("log_every");
  o.out_dir = r.get_string("out_dir");
  o.seed = uint64_t(r.get_int("seed"));
  o.resume = r.get_bool("resume");
  o.stop_after = r.get_int("stop_after");
  if (o.steps < 1 || o.grad_accum < 1 || r.get_int("batch_size") < 1)
    throw std::invalid_argument(r.source() + ": steps, grad_accum and batch_size must be >= 1");
  if (o.warmup_steps > o.steps)
    throw std::invalid_argument(r.source() + ": schedule.warmup_steps (" + std::to_string(o.warmup_steps) +
                                ") exceeds steps (" + std::to_string(o.steps) + ")");
  if (!(o.lr > 0)) throw std::invalid_argument(r.source() + ": optimizer.lr must be positive");
  return o;
}

std::string recipe_task(const std::string& path, const std::vector<std::string>& overrides) {
  std::string task = "causal_lm";
  try {
    const YAML::Node root = YAML::LoadFile(path);
    if (root.IsMap() && root["task"] && root["task"].IsScalar()) task = root["task"].Scalar();
  } catch (const YAML::BadFile&) {
    throw std::invalid_argument(path + ": cannot open the recipe");
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(path + ": not valid YAML: " + e.what());
  }
  for (const std::string& o : overrides)
    if (o.rfind("task=", 0) == 0) task = o.substr(5);
  return task;
}

void check_runtime_keys(const Recipe& r) {
  if (r.get_string("device") != "cpu")
    throw std::invalid_argument(r.source() + ": device '" + r.get_string("device") + "' is not available yet (cpu)");
  if (r.get_string("precision") != "fp32")
    throw std::invalid_argument(r.source() + ": precision '" + r.get_string("precision") + "' is not available yet (fp32)");
}

void write_text(const std::string& dir, const std::string& name, const std::string& text) {
  io::write_file_atomic((std::filesystem::path(dir) / name).string(), [&](std::FILE* f) { std::fputs(text.c_str(), f); });
}

}  // namespace hone::cli
