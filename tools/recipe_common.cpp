#include "tools/recipe_common.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "engine/io/checkpoint.h"
#include "tools/run_device.h"

namespace hone::cli {

bool g_inspect_trainable_only = false;

namespace {
// Only what the Trainer's constructor needs: the model.
class ModelOnlyTask : public TrainTask {
 public:
  explicit ModelOnlyTask(nn::Module& m) : m_(m) {}
  nn::Module& model() override { return m_; }
  TrainBatch next_batch() override { throw std::logic_error("inspect: no data"); }
  Tensor mean_loss(const TrainBatch&) override { throw std::logic_error("inspect: no data"); }
  std::map<std::string, double> evaluate() override { return {}; }
  int64_t data_position() const override { return 0; }
  void restore_data_position(int64_t) override {}

 private:
  nn::Module& m_;
};
}  // namespace

void print_trainable(nn::Module& model, const TrainerOptions& options) {
  ModelOnlyTask task(model);
  TrainerOptions o = options;
  o.quiet = true;
  Trainer trainer(task, o);
  std::printf("%s\n", trainer.trainable().text().c_str());
  for (auto& [name, p] : model.named_parameters())
    std::printf("  %-9s %-56s %s\n", p.requires_grad() ? "trainable" : "frozen", name.c_str(),
                (std::string(dtype_name(p.dtype())) + shape_str(p.shape())).c_str());
}

using T = RecipeField::Type;

namespace {
std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> out;
  for (std::string rest = text; !rest.empty();) {
    const size_t comma = rest.find(',');
    std::string p = rest.substr(0, comma);
    while (!p.empty() && p.front() == ' ') p.erase(p.begin());
    while (!p.empty() && p.back() == ' ') p.pop_back();
    if (!p.empty()) out.push_back(p);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  return out;
}
}  // namespace

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
      {"optimizer.kind", T::String, "adamw", "adamw or sgd"},
      {"optimizer.momentum", T::Float, "0.0", "SGD momentum"},
      {"optimizer.nesterov", T::Bool, "false", "SGD Nesterov momentum"},
      {"schedule.warmup_steps", T::Int, "0", "linear warmup steps"},
      {"schedule.warmup_ratio", T::Float, "0.0", "warmup as a fraction of the steps (when warmup_steps is 0)"},
      {"schedule.decay", T::String, "cosine", "after warmup: constant, linear, cosine, cosine_restarts, wsd or plateau"},
      {"schedule.min_lr_ratio", T::Float, "0.0", "final lr as a fraction of the peak"},
      {"schedule.cycles", T::Int, "2", "cosine_restarts: number of cycles"},
      {"schedule.decay_ratio", T::Float, "0.1", "wsd: fraction of the run spent decaying"},
      {"schedule.factor", T::Float, "0.5", "plateau: lr factor on a plateau"},
      {"schedule.patience", T::Int, "2", "plateau: evaluations without improvement before reducing"},
      {"freeze.patterns", T::String, "", "comma-separated globs/regexes of parameters kept frozen"},
      {"freeze.layers", T::Int, "0", "freeze the first N layer groups (embeddings/stem first)"},
      {"freeze.unfreeze_every", T::Int, "0", "gradual unfreezing: train only the top group, add one every N steps"},
      {"freeze.unfreeze_every_epochs", T::Float, "0", "gradual unfreezing every N epochs (tasks that know epochs)"},
      {"layer_lr_decay", T::Float, "1.0", "lr x decay^(layer groups above) (layer-wise LR decay)"},
      {"param_groups.*.pattern", T::String, "", "parameters of this group (glob or regex)"},
      {"param_groups.*.lr_scale", T::Float, "1.0", "lr multiplier of this group"},
      {"param_groups.*.weight_decay", T::Float, "-1", "weight decay of this group (-1: default rule)"},
      {"lora.rank", T::Int, "0", "LoRA rank (0: off; > 0 trains only low-rank adapters)"},
      {"lora.alpha", T::Float, "16", "LoRA alpha (the update is scaled by alpha / rank)"},
      {"lora.dropout", T::Float, "0.0", "dropout on the adapters' input"},
      {"lora.targets", T::String, "", "comma-separated module patterns (e.g. *.attn.c_attn,*.mlp.c_fc)"},
      {"early_stopping.metric", T::String, "", "evaluation metric to watch (e.g. loss, accuracy, macro_f1)"},
      {"early_stopping.mode", T::String, "min", "min or max"},
      {"early_stopping.patience", T::Int, "3", "evaluations without improvement before stopping"},
      {"early_stopping.min_delta", T::Float, "0.0", "smallest change that counts as an improvement"},
      {"early_stopping.load_best", T::Bool, "true", "load the best weights at the end"},
      {"clip_grad_norm", T::Float, "1.0", "global gradient-norm clip (0 disables)"},
      {"eval_every", T::Int, "50", "evaluate on held-out data every N steps"},
      {"save_every", T::Int, "0", "checkpoint every N steps (0: only at the end)"},
      {"log_every", T::Int, "10", "progress line every N steps when not on a terminal"},
      {"dropout", T::Float, "-1", "override every dropout rate of the config (-1 keeps the config's)"},
      {"out_dir", T::String, "runs/finetune", "run folder (metrics.jsonl, checkpoints, config)"},
      {"resume", T::Bool, "false", "continue from out_dir's latest checkpoint"},
      {"stop_after", T::Int, "0", "stop after N steps of this invocation (0: run to the end); resume later"},
      {"seed", T::Int, "1234", "seed of data order, dropout and any fresh weights"},
      {"device", T::String, "cpu", "cpu | cuda | cuda:N (the model, its gradients and the optimizer state live there)"},
      {"precision", T::String, "fp32", "fp32 | bf16 (autocast, fp32 master weights) | fp16 (autocast + dynamic loss scaling)"},
      {"tf32", T::Bool, "false", "CUDA: float32 matmuls and convolutions on TF32 tensor cores"},
      {"loss_scale.init", T::Float, "65536", "fp16: initial loss scale"},
      {"loss_scale.growth_interval", T::Int, "2000", "fp16: clean steps before the scale doubles"},
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
  o.optimizer = r.get_string("optimizer.kind");
  o.momentum = r.get_float("optimizer.momentum");
  o.nesterov = r.get_bool("optimizer.nesterov");
  o.warmup_steps = r.get_int("schedule.warmup_steps");
  o.warmup_ratio = r.get_float("schedule.warmup_ratio");
  o.decay = r.get_string("schedule.decay");
  o.min_lr_ratio = r.get_float("schedule.min_lr_ratio");
  o.restart_cycles = r.get_int("schedule.cycles");
  o.wsd_decay_ratio = r.get_float("schedule.decay_ratio");
  o.plateau_factor = r.get_float("schedule.factor");
  o.plateau_patience = r.get_int("schedule.patience");
  o.freeze = comma_list(r.get_string("freeze.patterns"));
  o.freeze_layers = r.get_int("freeze.layers");
  o.unfreeze_every = r.get_int("freeze.unfreeze_every");
  o.layer_lr_decay = r.get_float("layer_lr_decay");
  for (const std::string& g : r.wildcard_names("param_groups.*.pattern")) {
    const std::string base = "param_groups." + g + ".";
    if (!r.has(base + "pattern")) throw std::invalid_argument(r.source() + ": param_groups." + g + " needs a pattern");
    ParamGroupRule rule;
    rule.pattern = r.get_string(base + "pattern");
    if (r.has(base + "lr_scale")) rule.lr_scale = r.get_float(base + "lr_scale");
    if (r.has(base + "weight_decay")) rule.weight_decay = r.get_float(base + "weight_decay");
    o.groups.push_back(rule);
  }
  for (const std::string& g : r.wildcard_names("param_groups.*.lr_scale"))
    if (!r.has("param_groups." + g + ".pattern")) throw std::invalid_argument(r.source() + ": param_groups." + g + " needs a pattern");
  o.early_stopping_metric = r.get_string("early_stopping.metric");
  o.early_stopping_mode = r.get_string("early_stopping.mode");
  o.early_stopping_patience = r.get_int("early_stopping.patience");
  o.early_stopping_min_delta = r.get_float("early_stopping.min_delta");
  o.load_best = r.get_bool("early_stopping.load_best");
  o.clip_grad_norm = r.get_float("clip_grad_norm");
  o.eval_every = r.get_int("eval_every");
  o.save_every = r.get_int("save_every");
  o.log_every = r.get_int("log_every");
  o.out_dir = r.get_string("out_dir");
  o.seed = uint64_t(r.get_int("seed"));
  o.resume = r.get_bool("resume");
  o.stop_after = r.get_int("stop_after");
  o.precision = r.get_string("precision");
  o.loss_scale.init_scale = r.get_float("loss_scale.init");
  o.loss_scale.growth_interval = r.get_int("loss_scale.growth_interval");
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


nn::LoraConfig apply_lora(const Recipe& r, nn::Module& model) {
  nn::LoraConfig c;
  c.rank = r.get_int("lora.rank");
  if (c.rank <= 0) {
    c.rank = 0;
    return c;
  }
  c.alpha = r.get_float("lora.alpha");
  c.dropout = r.get_float("lora.dropout");
  c.target_patterns = comma_list(r.get_string("lora.targets"));
  c.seed = uint64_t(r.get_int("seed"));
  if (c.target_patterns.empty()) throw std::invalid_argument(r.source() + ": lora.rank > 0 needs lora.targets");
  const int64_t n = nn::inject_lora(model, c);
  std::printf("LoRA: rank %ld, alpha %g, %ld modules adapted\n", long(c.rank), c.alpha, long(n));
  return c;
}

nlohmann::json lora_json(const nn::LoraConfig& c) {
  if (c.rank <= 0) return nullptr;
  return {{"rank", c.rank}, {"alpha", c.alpha}, {"dropout", c.dropout}, {"targets", c.target_patterns}, {"seed", c.seed}};
}

void save_adapters_if_any(const nn::LoraConfig& c, const nn::Module& model, const std::string& out_dir) {
  if (c.rank <= 0) return;
  const std::string dir = (std::filesystem::path(out_dir) / "adapter").string();
  std::filesystem::create_directories(dir);
  nn::save_lora_adapters(model, dir, c);
  std::printf("LoRA adapters: %s (adapter_model.safetensors + adapter_config.json)\n", dir.c_str());
}

Device recipe_device(const Recipe& r) { return checked_device(r.get_string("device"), r.source()); }

void move_to_run_device(nn::Module& model, const Recipe& r) {
  const Device d = recipe_device(r);
  if (d.is_cpu()) {
    if (r.get_string("precision") != "fp32")
      std::printf("note: precision %s on the CPU runs the 16-bit rounding for study, not speed: the CPU kernels "
                  "compute in float32 and convert, so fp32 is faster there\n", r.get_string("precision").c_str());
    return;
  }
  set_allow_tf32(r.get_bool("tf32"));
  place_model(model, d, stdout);  // finetune's log is its stdout
}

void check_runtime_keys(const Recipe& r) {
  recipe_device(r);
  autocast_dtype_of(r.get_string("precision"), r.source());
}

void write_text(const std::string& dir, const std::string& name, const std::string& text) {
  io::write_file_atomic((std::filesystem::path(dir) / name).string(), [&](std::FILE* f) { std::fputs(text.c_str(), f); });
}

}  // namespace hone::cli
