// Causal-LM fine-tuning of GPT-2 on the user's text.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/core/random.h"
#include "engine/data/text_sources.h"
#include "engine/data/token_shards.h"
#include "engine/train/causal_lm_task.h"
#include "tools/finetune_tasks.h"
#include "tools/model_source.h"
#include "tools/recipe_common.h"

namespace fs = std::filesystem;

namespace hone::cli {

namespace {

using T = RecipeField::Type;

std::vector<RecipeField> causal_lm_schema() {
  std::vector<RecipeField> s = common_recipe_fields();
  s.insert(s.end(), {
      {"data.train", T::String, "", "text file, folder of .txt, JSONL, or a folder made by `hone prepare`", true},
      {"data.text_field", T::String, "text", "JSONL field holding the text"},
      {"data.val_fraction", T::Float, "0.05", "share of the data held out for evaluation"},
      {"seq_len", T::Int, "256", "tokens per training window"},
      {"eval_batches", T::Int, "20", "batches per evaluation"},
      {"label_smoothing", T::Float, "0.0", "label smoothing of the training loss"},
  });
  return s;
}

// Tokenises the training text into out_dir/data unless data.train is already a prepared folder.
std::string prepare_data(const Recipe& r, const BpeTokenizer& tok, const std::string& out_dir) {
  const std::string src = r.get_string("data.train");
  if (fs::is_directory(src) && fs::exists(fs::path(src) / "meta.json")) return src;
  const std::string data_dir = (fs::path(out_dir) / "data").string();
  if (r.get_bool("resume") && fs::exists(fs::path(data_dir) / "meta.json")) return data_dir;
  const auto docs = data::read_documents(src, r.get_string("data.text_field"));
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& d : docs) ids.push_back(tok.encode(d, /*allow_special=*/false));
  data::PrepareOptions po;
  po.val_fraction = r.get_float("data.val_fraction");
  const auto stats = data::write_token_shards(data_dir, ids, tok.vocab_size(), tok.eot_id(), po, {{"source", src}});
  std::printf("data: %ld documents, %ld train and %ld val tokens -> %s\n", long(docs.size()), long(stats.train_tokens),
              long(stats.val_tokens), data_dir.c_str());
  return data_dir;
}

}  // namespace

int finetune_causal_lm(const std::string& recipe_path, const std::vector<std::string>& overrides) {
  const Recipe r = Recipe::load(recipe_path, causal_lm_schema(), overrides);
  check_runtime_keys(r);
  const TrainerOptions o = trainer_options(r);
  if (r.get_float("freeze.unfreeze_every_epochs") > 0)
    throw std::invalid_argument(r.source() + ": causal_lm counts steps, not epochs: use freeze.unfreeze_every");
  const std::string out_dir = o.out_dir, model_dir = r.get_string("model");
  const std::string tok_dir = r.has("tokenizer") ? r.get_string("tokenizer") : model_dir;
  manual_seed(o.seed);

  std::shared_ptr<models::Gpt2> model;
  const std::string init = r.get_string("init");
  if (init == "pretrained")
    model = open_gpt2(model_dir, true).model;
  else if (init == "random")
    model = std::make_shared<models::Gpt2>(models::Gpt2Config::from_json_file((fs::path(model_dir) / "config.json").string()), o.seed);
  else
    throw std::invalid_argument(r.source() + ": init must be pretrained or random, got '" + init + "'");
  models::Gpt2Config cfg = model->config();
  if (r.get_float("dropout") >= 0) {
    cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = r.get_float("dropout");
    auto rebuilt = std::make_shared<models::Gpt2>(cfg, o.seed);  // same weights, new rates
    for (auto& [n, t] : model->named_parameters()) rebuilt->set_parameter(n, t);
    model = rebuilt;
  }
  const BpeTokenizer tok = open_tokenizer(tok_dir);
  if (tok.vocab_size() > cfg.vocab_size)
    throw std::invalid_argument("tokenizer in " + tok_dir + " has " + std::to_string(tok.vocab_size()) +
                                " tokens but the model's vocab_size is " + std::to_string(cfg.vocab_size));

  const nn::LoraConfig lora = apply_lora(r, *model);
  if (g_inspect_trainable_only) {
    print_trainable(*model, o);
    return 0;
  }
  fs::create_directories(out_dir);
  write_text(out_dir, "config.json", cfg.to_json());
  write_text(out_dir, "recipe.yaml", r.to_yaml());
  write_text(out_dir, "hone.json", nlohmann::json{{"task", "causal_lm"}, {"lora", lora_json(lora)}}.dump(2));
  copy_tokenizer_files(tok_dir, out_dir);
  const std::string data_dir = prepare_data(r, tok, out_dir);

  std::printf("model: GPT-2 %ld layers, %ld heads, n_embd %ld, %.1fM parameters (%s)\n", long(cfg.n_layer),
              long(cfg.n_head), long(cfg.n_embd), double(model->parameter_count()) / 1e6, init.c_str());
  CausalLmTask task(*model, [&](const Tensor& ids) { return model->forward(ids); }, data_dir, r.get_int("seq_len"),
                    r.get_int("batch_size"), r.get_int("eval_batches"), o.seed, r.get_float("label_smoothing"));
  move_to_run_device(*model, r);
  Trainer trainer(task, o);
  if (!o.resume) {
    model->eval();
    const auto before = task.evaluate();
    if (before.count("loss")) std::printf("val before: loss %.4f, perplexity %.2f\n", before.at("loss"), before.at("ppl"));
  }
  const TrainSummary s = trainer.run();
  if (s.steps_done < o.steps && !s.stopped_early) {
    std::printf("stopped after step %ld of %ld; continue with resume=true\n", long(s.steps_done), long(o.steps));
    return 0;
  }
  if (s.final_eval.count("loss"))
    std::printf("val after:  loss %.4f, perplexity %.2f\n", s.final_eval.at("loss"), s.final_eval.at("ppl"));
  save_adapters_if_any(lora, *model, out_dir);
  std::printf("run folder: %s (metrics.jsonl, checkpoints/, config.json: usable as --model)\n", out_dir.c_str());
  return 0;
}

}  // namespace hone::cli
