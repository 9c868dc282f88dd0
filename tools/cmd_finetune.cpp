// `hone finetune RECIPE.yaml [key=value ...]`: causal-LM fine-tuning of GPT-2 (other tasks join
// as their model families land). The run folder is itself a model folder (config.json, tokenizer
// files, checkpoints/latest), so generate/logits/export/inspect accept it as --model.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/core/random.h"
#include "engine/data/text_sources.h"
#include "engine/data/token_shards.h"
#include "engine/io/checkpoint.h"
#include "engine/train/causal_lm_task.h"
#include "engine/train/recipe.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace fs = std::filesystem;

namespace hone::cli {

namespace {

using T = RecipeField::Type;

const std::vector<RecipeField> kCausalLmSchema = {
    {"task", T::String, "causal_lm", "what to train: causal_lm"},
    {"model", T::String, "", "Hugging Face GPT-2 folder (config.json + weights + tokenizer) or a hone run", true},
    {"init", T::String, "pretrained", "pretrained (load the weights) or random (config.json only)"},
    {"tokenizer", T::String, "", "folder with the tokenizer files (default: the model folder)"},
    {"data.train", T::String, "", "text file, folder of .txt, JSONL, or a folder made by `hone prepare`", true},
    {"data.text_field", T::String, "text", "JSONL field holding the text"},
    {"data.val_fraction", T::Float, "0.05", "share of the data held out for evaluation"},
    {"seq_len", T::Int, "256", "tokens per training window"},
    {"batch_size", T::Int, "8", "windows per micro-batch"},
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
    {"eval_every", T::Int, "50", "evaluate on the val split every N steps"},
    {"eval_batches", T::Int, "20", "batches per evaluation"},
    {"save_every", T::Int, "0", "checkpoint every N steps (0: only at the end)"},
    {"log_every", T::Int, "10", "progress line every N steps when not on a terminal"},
    {"dropout", T::Float, "-1", "override every dropout rate of the config (-1 keeps the config's)"},
    {"out_dir", T::String, "runs/finetune", "run folder (metrics.jsonl, checkpoints, config)"},
    {"resume", T::Bool, "false", "continue from out_dir's latest checkpoint"},
    {"stop_after", T::Int, "0", "stop after N steps of this invocation (0: run to the end); resume later"},
    {"seed", T::Int, "1234", "seed of data order, dropout and random init"},
    {"device", T::String, "cpu", "cpu (cuda arrives with the CUDA backend)"},
    {"precision", T::String, "fp32", "fp32 (bf16/fp16 arrive with the CUDA backend)"},
};

// Tokenises the training text into out_dir/data unless data.train is already a prepared folder.
std::string prepare_data(const Recipe& r, const BpeTokenizer& tok, const std::string& out_dir) {
  const std::string src = r.get_string("data.train");
  if (fs::is_directory(src) && fs::exists(fs::path(src) / "meta.json")) return src;
  const std::string data_dir = (fs::path(out_dir) / "data").string();
  if (r.get_bool("resume") && fs::exists(fs::path(data_dir) / "meta.json")) return data_dir;
  const auto docs = data::read_documents(src, r.get_string("data.text_field"));
  std::vector<std::vector<int32_t>> ids;
  int64_t n = 0;
  for (const std::string& d : docs) {
    ids.push_back(tok.encode(d, /*allow_special=*/false));
    n += int64_t(ids.back().size());
  }
  data::PrepareOptions po;
  po.val_fraction = r.get_float("data.val_fraction");
  const auto stats = data::write_token_shards(data_dir, ids, tok.vocab_size(), tok.eot_id(), po, {{"source", src}});
  std::printf("data: %ld documents, %ld train and %ld val tokens -> %s\n", long(docs.size()), long(stats.train_tokens),
              long(stats.val_tokens), data_dir.c_str());
  (void)n;
  return data_dir;
}

}  // namespace

int cmd_finetune(int argc, char** argv) {
  const Args a = parse("finetune", argc, argv, {});
  if (a.positional.size() != 1) throw std::invalid_argument("expected exactly one recipe file");
  const Recipe r = Recipe::load(a.positional[0], kCausalLmSchema, a.overrides);
  if (r.get_string("task") != "causal_lm")
    throw std::invalid_argument(r.source() + ": task '" + r.get_string("task") + "' is not available yet (causal_lm)");
  if (r.get_string("device") != "cpu")
    throw std::invalid_argument(r.source() + ": device '" + r.get_string("device") + "' is not available yet (cpu)");
  if (r.get_string("precision") != "fp32")
    throw std::invalid_argument(r.source() + ": precision '" + r.get_string("precision") + "' is not available yet (fp32)");

  const std::string out_dir = r.get_string("out_dir");
  const std::string model_dir = r.get_string("model");
  const std::string tok_dir = r.has("tokenizer") ? r.get_string("tokenizer") : model_dir;
  const uint64_t seed = uint64_t(r.get_int("seed"));
  manual_seed(seed);
  fs::create_directories(out_dir);

  // The model: pretrained weights, or the config's architecture from random init.
  std::shared_ptr<models::Gpt2> model;
  const std::string init = r.get_string("init");
  if (init == "pretrained") {
    model = open_gpt2(model_dir, true).model;
  } else if (init == "random") {
    model = std::make_shared<models::Gpt2>(models::Gpt2Config::from_json_file((fs::path(model_dir) / "config.json").string()), seed);
  } else {
    throw std::invalid_argument(r.source() + ": init must be pretrained or random, got '" + init + "'");
  }
  models::Gpt2Config cfg = model->config();
  if (r.get_float("dropout") >= 0) {
    // Rebuild with the recipe's dropout, keeping the weights.
    cfg.resid_pdrop = cfg.embd_pdrop = cfg.attn_pdrop = r.get_float("dropout");
    auto rebuilt = std::make_shared<models::Gpt2>(cfg, seed);
    for (auto& [n, t] : model->named_parameters()) rebuilt->set_parameter(n, t);
    model = rebuilt;
  }
  const BpeTokenizer tok = open_tokenizer(tok_dir);
  if (tok.vocab_size() > cfg.vocab_size)
    throw std::invalid_argument("tokenizer in " + tok_dir + " has " + std::to_string(tok.vocab_size()) +
                                " tokens but the model's vocab_size is " + std::to_string(cfg.vocab_size));

  // The run folder is a model folder.
  {
    const std::string text = cfg.to_json();
    io::write_file_atomic((fs::path(out_dir) / "config.json").string(), [&](std::FILE* f) { std::fputs(text.c_str(), f); });
    const std::string recipe = r.to_yaml();
    io::write_file_atomic((fs::path(out_dir) / "recipe.yaml").string(), [&](std::FILE* f) { std::fputs(recipe.c_str(), f); });
    copy_tokenizer_files(tok_dir, out_dir);
  }
  const std::string data_dir = prepare_data(r, tok, out_dir);

  std::printf("model: GPT-2 %ld layers, %ld heads, n_embd %ld, %.1fM parameters (%s)\n", long(cfg.n_layer),
              long(cfg.n_head), long(cfg.n_embd), double(model->parameter_count()) / 1e6, init.c_str());
  CausalLmTask task(*model, [&](const Tensor& ids) { return model->forward(ids); }, data_dir, r.get_int("seq_len"),
                    r.get_int("batch_size"), r.get_int("eval_batches"), seed);
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
  o.out_dir = out_dir;
  o.seed = seed;
  o.resume = r.get_bool("resume");
  o.stop_after = r.get_int("stop_after");

  Trainer trainer(task, o);
  if (!o.resume) {
    model->eval();
    const auto before = task.evaluate();
    if (before.count("loss"))
      std::printf("val before: loss %.4f, perplexity %.2f\n", before.at("loss"), before.at("ppl"));
  }
  const TrainSummary s = trainer.run();
  if (s.steps_done < o.steps) {
    std::printf("stopped after step %ld of %ld; continue with resume=true\n", long(s.steps_done), long(o.steps));
    return 0;
  }
  if (s.final_eval.count("loss"))
    std::printf("val after:  loss %.4f, perplexity %.2f\n", s.final_eval.at("loss"), s.final_eval.at("ppl"));
  std::printf("run folder: %s (metrics.jsonl, checkpoints/, config.json: usable as --model)\n", out_dir.c_str());
  return 0;
}

}  // namespace hone::cli
