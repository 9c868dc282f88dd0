// `hone finetune RECIPE.yaml [key=value ...]`: dispatches on the recipe's task.
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/finetune_tasks.h"
#include "tools/recipe_common.h"

namespace hone::cli {

int cmd_finetune(int argc, char** argv) {
  const Args a = parse("finetune", argc, argv, {});
  if (a.positional.size() != 1) throw std::invalid_argument("expected exactly one recipe file");
  const std::string task = recipe_task(a.positional[0], a.overrides);
  if (task == "causal_lm") return finetune_causal_lm(a.positional[0], a.overrides);
  if (task == "sequence_classification") return finetune_classification(a.positional[0], a.overrides);
  if (task == "image_classification") return finetune_image(a.positional[0], a.overrides);
  throw std::invalid_argument(a.positional[0] + ": unknown task '" + task +
                              "' (causal_lm, sequence_classification, image_classification)");
}

}  // namespace hone::cli
