#include <cstdio>
#include <filesystem>

#include "engine/io/checkpoint.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"
#include "tools/recipe_common.h"

namespace hone::cli {

namespace {

void list_parameters(const nn::Module& m) {
  for (auto& [name, t] : m.named_parameters())
    std::printf("  %-56s %s\n", name.c_str(), (std::string(dtype_name(t.dtype())) + shape_str(t.shape())).c_str());
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  const Args a = parse("inspect", argc, argv, {}, {"trainable"});
  if (a.has("trainable")) {
    // A recipe: what its freezing rules leave trainable (nothing is trained).
    if (a.positional.size() != 1) throw std::invalid_argument("--trainable expects one recipe file");
    g_inspect_trainable_only = true;
    std::vector<std::string> args = {a.positional[0]};
    for (const std::string& o : a.overrides) args.push_back(o);
    std::vector<char*> argv2;
    for (std::string& s : args) argv2.push_back(s.data());
    return cmd_finetune(int(argv2.size()), argv2.data());
  }
  if (a.positional.size() != 1) throw std::invalid_argument("expected one model folder or checkpoint file");
  const std::string path = a.positional[0];
  if (std::filesystem::is_directory(path)) {
    if (model_type_of(path) == "gpt2") {
      const auto m = open_gpt2(path, false);
      const auto& c = m.model->config();
      std::printf("GPT-2 (%s)\n  n_layer %ld, n_head %ld, n_embd %ld, n_positions %ld, vocab_size %ld, activation %s, "
                  "eps %g, tied head %s\n  weights: %s\n  load: %s\n  parameters: %ld\n",
                  m.config_path.c_str(), long(c.n_layer), long(c.n_head), long(c.n_embd), long(c.n_positions),
                  long(c.vocab_size), c.activation_function.c_str(), c.layer_norm_epsilon,
                  c.tie_word_embeddings ? "yes" : "no", m.weights_path.c_str(), m.report.summary().c_str(),
                  long(m.model->parameter_count()));
      list_parameters(*m.model);
    } else {
      const auto m = open_bert(path, false);
      const auto& c = m.model->config();
      std::printf("BERT classifier (%s)\n  layers %ld, hidden %ld, heads %ld, intermediate %ld, max positions %ld, "
                  "vocab %ld, act %s, eps %g, labels %ld\n  weights: %s\n  load: %s\n  parameters: %ld\n",
                  m.config_path.c_str(), long(c.num_hidden_layers), long(c.hidden_size), long(c.num_attention_heads),
                  long(c.intermediate_size), long(c.max_position_embeddings), long(c.vocab_size), c.hidden_act.c_str(),
                  c.layer_norm_eps, long(c.num_labels), m.weights_path.c_str(), m.report.summary().c_str(),
                  long(m.model->parameter_count()));
      list_parameters(*m.model);
    }
    return 0;
  }
  // A single checkpoint file: list its tensors as stored.
  const io::StateDict sd = io::load_checkpoint(path);
  int64_t total = 0;
  for (auto& [name, t] : sd) total += t.numel();
  std::printf("%s: %zu tensors, %ld values\n", path.c_str(), sd.size(), long(total));
  for (auto& [name, t] : sd)
    std::printf("  %-56s %s\n", name.c_str(), (std::string(dtype_name(t.dtype())) + shape_str(t.shape())).c_str());
  return 0;
}

}  // namespace hone::cli
