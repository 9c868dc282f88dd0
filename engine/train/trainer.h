// The Trainer: the training loop every task shares (causal LM now; classification and images
// later). It knows tasks, not models: a TrainTask supplies batches, the loss and evaluation.
//
// One optimizer step = grad_accum micro-batches. Each micro-batch's mean loss is weighted by its
// share of the target count over all micro-batches of the step, so accumulation gives the same
// update as one large batch (the Hugging Face bug fixed in 2024: averaging per micro-batch
// over-weights short ones). Then global-norm clipping, the LR schedule, AdamW.
//
// Runs write to out_dir: metrics.jsonl (one JSON object per logged step or evaluation),
// recipe.yaml (by the caller), checkpoints/step-NNNNNNN/{model,optimizer}.safetensors +
// trainer_state.json and checkpoints/latest naming the newest complete one. Every file is
// written to a temporary name and renamed; `latest` moves only after a checkpoint is complete,
// so a crash mid-write leaves the previous checkpoint intact. Resume restores weights, moments,
// step, RNG state and data position: on the CPU the resumed loss curve equals the uninterrupted
// one bit for bit.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/optim/grad_scaler.h"

namespace hone {

struct TrainBatch {
  Tensor inputs, targets;
  std::vector<Tensor> aux;  // task-specific extra inputs (attention mask, token types, ...)
  int64_t count = 0;  // targets that count towards the loss (e.g. != -100)
  int64_t work = 0;   // units processed, for throughput (tokens, examples)
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual nn::Module& model() = 0;
  virtual TrainBatch next_batch() = 0;
  // Mean loss over the batch's counted targets (model in training mode).
  virtual Tensor mean_loss(const TrainBatch& batch) = 0;
  // Metrics on held-out data (model in eval mode, no grad), e.g. {"loss": .., "ppl": ..}.
  virtual std::map<std::string, double> evaluate() = 0;
  virtual int64_t data_position() const = 0;
  virtual void restore_data_position(int64_t position) = 0;
  virtual std::string work_unit() const { return "tok"; }
};

struct ParamGroupRule {
  std::string pattern;         // glob or regex over parameter names
  double lr_scale = 1.0;       // multiplies the scheduled lr
  double weight_decay = -1.0;  // >= 0 overrides the default rule for these parameters
};

struct TrainerOptions {
  int64_t steps = 100;
  int64_t grad_accum = 1;
  double lr = 5e-5, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string optimizer = "adamw";  // adamw | sgd
  double momentum = 0.0;            // sgd
  bool nesterov = false;            // sgd
  // Schedule (see engine/optim/lr_schedule.h): kind in decay, warmup by steps or ratio.
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;
  std::string decay = "cosine";  // constant | linear | cosine | cosine_restarts | wsd | plateau
  double min_lr_ratio = 0.0;     // final lr = lr * min_lr_ratio
  int64_t restart_cycles = 2;    // cosine_restarts
  double wsd_decay_ratio = 0.1;  // wsd
  double plateau_factor = 0.5;   // plateau (driven by the early-stopping metric, else val loss)
  int64_t plateau_patience = 2;
  double clip_grad_norm = 1.0;   // <= 0 disables
  // Mixed precision: fp32 | bf16 | fp16. bf16 and fp16 run the forward (and so the backward)
  // under autocast (engine/autograd/autocast_mode.h) with float32 master weights and optimizer
  // state; fp16 adds dynamic loss scaling (engine/optim/grad_scaler.h): a step whose gradients
  // overflow is skipped and logged with "skipped": true.
  std::string precision = "fp32";
  GradScalerOptions loss_scale;  // fp16 only
  // Which parameters train, and how fast.
  std::vector<std::string> freeze;  // patterns of parameters kept frozen all run
  int64_t freeze_layers = 0;        // freeze the first N layer groups (input side) all run
  int64_t unfreeze_every = 0;       // gradual unfreezing: start with only the top group trainable,
                                    // unfreeze one more group (top down) every N steps
  double layer_lr_decay = 1.0;      // lr x decay^(groups above this one)
  std::vector<ParamGroupRule> groups;
  // Early stopping on an evaluation metric; the best weights are kept (out_dir/best) and loaded
  // at the end when load_best.
  std::string early_stopping_metric;
  std::string early_stopping_mode = "min";
  int64_t early_stopping_patience = 3;
  double early_stopping_min_delta = 0.0;
  bool load_best = true;
  int64_t eval_every = 0;        // 0: only at the end
  int64_t save_every = 0;        // 0: only at the end
  int64_t log_every = 10;
  std::string out_dir;           // empty: nothing written
  uint64_t seed = 1234;
  bool resume = false;           // continue from out_dir's latest checkpoint when there is one
  bool quiet = false;            // no progress line (tests)
  // Stop after this many steps of this run (simulates an interruption in tests); 0 = no limit.
  int64_t stop_after = 0;
};

struct TrainSummary {
  std::vector<double> losses;  // training loss of every step run by this call, in order
  int64_t first_step = 0;      // global index of losses[0]
  std::map<std::string, double> final_eval;
  int64_t steps_done = 0;
  bool stopped_early = false;
  int64_t best_step = 0;       // with early stopping: the evaluation whose weights were kept
};

// Counts of what trains (for `hone inspect --trainable` and the start of every run).
struct TrainableSummary {
  int64_t total = 0, trainable = 0;
  int64_t frozen_bytes_saved = 0;  // gradients + optimizer moments frozen parameters do not need
  std::string text() const;
};

// Default weight-decay rule (Hugging Face's, plus embeddings): decay matrices, not biases,
// normalisation weights (1-d) or embedding tables.
bool default_weight_decay(const std::string& name, const Tensor& param);

double scheduled_lr(const TrainerOptions& o, int64_t step);

class Trainer {
 public:
  Trainer(TrainTask& task, TrainerOptions options);
  ~Trainer();
  TrainSummary run();

  // Applies the freezing rules for `step` (gradual unfreezing moves with the step).
  void apply_freezing(int64_t step);
  TrainableSummary trainable() const;
  // This step's lr of parameter `name` (schedule x group scale).
  double lr_of(const std::string& name, int64_t step) const;

  // One optimizer step over grad_accum micro-batches; returns the step's loss (token-weighted
  // mean over the micro-batches) and sets last_grad_norm().
  double train_step(int64_t step);
  double last_grad_norm() const { return last_grad_norm_; }
  // fp16: whether the last step was skipped (its gradients overflowed), and the loss scale now.
  bool last_step_skipped() const { return last_step_skipped_; }
  double loss_scale() const;

  void save_checkpoint(int64_t step) const;
  // Returns the step to continue from (0 when there is nothing to resume).
  int64_t load_latest_checkpoint();

 private:
  void log_metrics(const std::string& json_line) const;
  std::map<std::string, double> evaluate_model();  // eval mode, under the run's autocast
  // "peak device memory: ..." for a run on CUDA (at its end, or where stop_after interrupts it).
  void report_peak_device_memory() const;

  std::vector<std::string> frozen_group_prefixes(int64_t step) const;
  void save_weights(const std::string& dir, const std::string& file) const;
  void load_weights(const std::string& path);

  TrainTask& task_;
  TrainerOptions o_;
  std::vector<std::string> names_;
  std::vector<Tensor> params_;
  std::vector<int64_t> group_of_;  // layer group of each parameter (top group when unlisted)
  int64_t num_groups_ = 0;
  struct State;
  std::unique_ptr<State> st_;
  double last_grad_norm_ = 0;
  bool last_step_skipped_ = false;
  DType autocast_ = DType::F32;  // from options.precision
  int64_t last_work_ = 0;
};

}  // namespace hone
