// The recipe keys every fine-tuning task shares (optimizer, schedule, loop, run folder) and
// their translation into TrainerOptions. Task files add their own keys to these.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/train/recipe.h"
#include "engine/nn/lora.h"
#include "engine/train/trainer.h"

namespace hone::cli {

std::vector<RecipeField> common_recipe_fields();
TrainerOptions trainer_options(const Recipe& r);
// `task` as given in the recipe file or an override (before the task's schema is known).
std::string recipe_task(const std::string& path, const std::vector<std::string>& overrides);
// Refuses device/precision values this build or machine cannot run, naming the recipe.
void check_runtime_keys(const Recipe& r);
// The recipe's `device`, checked against this build and machine.
Device recipe_device(const Recipe& r);
// Moves the model to the recipe's device (after loading and LoRA, before the Trainer exists).
void move_to_run_device(nn::Module& model, const Recipe& r);
// `hone inspect --trainable RECIPE`: the finetune functions build the model and the Trainer (with
// the recipe's freezing rules), print what trains, and return before any data is touched.
extern bool g_inspect_trainable_only;
// Prints what the Trainer would train for this model and options (no data is read), with the
// memory frozen parameters save.
void print_trainable(nn::Module& model, const TrainerOptions& options);

// LoRA from the recipe (lora.rank > 0): injected into the model (which freezes everything but the
// adapters); returns the config to record in hone.json, or rank 0 when LoRA is off.
nn::LoraConfig apply_lora(const Recipe& r, nn::Module& model);
// hone.json's "lora" entry for a config (null when off).
nlohmann::json lora_json(const nn::LoraConfig& c);
// After training: adapters to <out_dir>/adapter (PEFT layout) when LoRA is on.
void save_adapters_if_any(const nn::LoraConfig& c, const nn::Module& model, const std::string& out_dir);

// Writes text to <dir>/<name> atomically.
void write_text(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace hone::cli
