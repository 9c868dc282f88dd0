// The recipe keys every fine-tuning task shares (optimizer, schedule, loop, run folder) and
// their translation into TrainerOptions. Task files add their own keys to these.
#pragma once
#include <string>
#include <vector>

#include "engine/train/recipe.h"
#include "engine/train/trainer.h"

namespace hone::cli {

std::vector<RecipeField> common_recipe_fields();
TrainerOptions trainer_options(const Recipe& r);
// `task` as given in the recipe file or an override (before the task's schema is known).
std::string recipe_task(const std::string& path, const std::vector<std::string>& overrides);
// Refuses device/precision values this build cannot run yet, naming the recipe.
void check_runtime_keys(const Recipe& r);
// Writes text to <dir>/<name> atomically.
void write_text(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace hone::cli
