#include "engine/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/allocator.h"
#include "engine/core/random.h"
#include "engine/io/checkpoint.h"
#include "engine/ops/ops.h"
#include "engine/optim/clip.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/train/early_stopping.h"
#include "engine/core/name_patterns.h"
#include "engine/train/plot.h"
#include "engine/train/progress.h"

namespace fs = std::filesystem;

namespace hone {

namespace {

LrScheduleConfig schedule_config(const TrainerOptions& o) {
  LrScheduleConfig c;
  c.kind = o.decay;
  c.total_steps = o.steps;
  c.warmup_steps = o.warmup_steps;
  c.warmup_ratio = o.warmup_ratio;
  c.min_lr_ratio = o.min_lr_ratio;
  c.cycles = o.restart_cycles;
  c.decay_ratio = o.wsd_decay_ratio;
  c.factor = o.plateau_factor;
  c.patience = o.plateau_patience;
  c.mode = o.early_stopping_metric.empty() ? "min" : o.early_stopping_mode;
  return c;
}

bool has_prefix(const std::string& name, const std::string& prefix) {
  return name == prefix || (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
                            name[prefix.size()] == '.');
}

}  // namespace

struct Trainer::State {
  std::unique_ptr<Optimizer> optimizer;
  LrSchedule schedule;
  EarlyStopping early;
  std::vector<bool> always_frozen;  // by the freeze patterns or freeze_layers
  std::optional<GradScaler> scaler;  // fp16 only
};

bool default_weight_decay(const std::string& name, const Tensor& param) {
  if (param.dim() < 2) return false;
  for (const char* embedding : {"wte", "wpe", "embeddings", "embed_tokens"})
    if (name.find(embedding) != std::string::npos) return false;
  return true;
}

double scheduled_lr(const TrainerOptions& o, int64_t step) { return LrSchedule(schedule_config(o), o.lr).lr(step); }

std::string TrainableSummary::text() const {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%ld of %ld parameters trainable (%.1f%%); frozen ones save %.1f MB of gradients and optimizer state",
                long(trainable), long(total), total ? 100.0 * double(trainable) / double(total) : 0.0,
                double(frozen_bytes_saved) / 1e6);
  return buf;
}

Trainer::Trainer(TrainTask& task, TrainerOptions options) : task_(task), o_(std::move(options)) {
  if (o_.steps < 1 || o_.grad_accum < 1) throw std::invalid_argument("steps and grad_accum must be >= 1");
  if (o_.layer_lr_decay <= 0 || o_.layer_lr_decay > 1) throw std::invalid_argument("layer_lr_decay must be in (0, 1]");
  if (o_.unfreeze_every < 0 || o_.freeze_layers < 0) throw std::invalid_argument("freeze_layers and unfreeze_every must be >= 0");
  autocast_ = autocast_dtype_for(o_.precision);
  LrSchedule schedule(schedule_config(o_), o_.lr);  // validates the phases against the step count
  EarlyStopping early({o_.early_stopping_metric, o_.early_stopping_mode, o_.early_stopping_patience,
                       o_.early_stopping_min_delta});

  for (auto& [name, p] : task_.model().named_parameters()) {
    names_.push_back(name);
    params_.push_back(p);
  }
  // Layer groups: each parameter's group index (unlisted parameters count as the top group).
  const auto groups = task_.model().layer_groups();
  num_groups_ = int64_t(groups.size());
  if ((o_.freeze_layers > 0 || o_.unfreeze_every > 0 || o_.layer_lr_decay < 1) && groups.empty())
    throw std::invalid_argument("freeze_layers, unfreeze_every and layer_lr_decay need a model with layer groups");
  if (o_.freeze_layers >= num_groups_ && o_.freeze_layers > 0)
    throw std::invalid_argument("freeze_layers " + std::to_string(o_.freeze_layers) + " would freeze all " +
                                std::to_string(num_groups_) + " layer groups");
  for (const std::string& n : names_) {
    int64_t g = std::max<int64_t>(0, num_groups_ - 1);
    for (int64_t i = 0; i < num_groups_; ++i)
      for (const std::string& pre : groups[i])
        if (has_prefix(n, pre)) g = i;
    group_of_.push_back(g);
  }
  // Patterns must match something: a typo should not silently train everything.
  for (const std::string& pat : o_.freeze) require_match("freeze", pat, names_);
  for (const ParamGroupRule& r : o_.groups) require_match("param group", r.pattern, names_);

  std::vector<bool> always_frozen(names_.size(), false);
  std::vector<ParamSpec> specs;
  for (size_t i = 0; i < names_.size(); ++i) {
    for (const std::string& pat : o_.freeze)
      if (name_matches(pat, names_[i])) always_frozen[i] = true;
    if (group_of_[i] < o_.freeze_layers) always_frozen[i] = true;
    if (!params_[i].requires_grad() && !always_frozen[i]) always_frozen[i] = true;  // frozen by the model (LoRA)
    ParamSpec s;
    s.name = names_[i];
    s.param = params_[i];
    s.weight_decay = default_weight_decay(names_[i], params_[i]) ? o_.weight_decay : 0.0;
    s.lr_scale = std::pow(o_.layer_lr_decay, double(std::max<int64_t>(0, num_groups_ - 1 - group_of_[i])));
    for (const ParamGroupRule& r : o_.groups)
      if (name_matches(r.pattern, names_[i])) {
        s.lr_scale *= r.lr_scale;
        if (r.weight_decay >= 0) s.weight_decay = r.weight_decay;
      }
    specs.push_back(s);
  }
  OptimizerConfig oc;
  oc.kind = o_.optimizer;
  oc.beta1 = o_.beta1;
  oc.beta2 = o_.beta2;
  oc.eps = o_.eps;
  oc.momentum = o_.momentum;
  oc.nesterov = o_.nesterov;
  st_ = std::make_unique<State>(State{Optimizer::create(oc, specs), schedule, early, always_frozen, std::nullopt});
  if (autocast_ == DType::F16) st_->scaler.emplace(o_.loss_scale);
  apply_freezing(0);
}

Trainer::~Trainer() = default;

std::vector<std::string> Trainer::frozen_group_prefixes(int64_t step) const {
  const auto groups = task_.model().layer_groups();
  int64_t frozen_below = o_.freeze_layers;
  if (o_.unfreeze_every > 0) {
    const int64_t trainable_groups = 1 + step / o_.unfreeze_every;  // top group first
    frozen_below = std::max(frozen_below, num_groups_ - trainable_groups);
  }
  std::vector<std::string> out;
  for (int64_t g = 0; g < frozen_below && g < num_groups_; ++g)
    for (const std::string& p : groups[g]) out.push_back(p);
  return out;
}

void Trainer::apply_freezing(int64_t step) {
  const std::vector<std::string> frozen_prefixes = frozen_group_prefixes(step);
  for (size_t i = 0; i < params_.size(); ++i) {
    bool frozen = st_->always_frozen[i];
    for (const std::string& pre : frozen_prefixes)
      if (has_prefix(names_[i], pre)) frozen = true;
    if (params_[i].requires_grad() == frozen) {
      params_[i].requires_grad_(!frozen);
      if (frozen) params_[i].zero_grad();
    }
  }
}

TrainableSummary Trainer::trainable() const {
  TrainableSummary s;
  const int64_t moments = o_.optimizer == "adamw" ? 2 : (o_.momentum > 0 ? 1 : 0);
  for (const Tensor& p : params_) {
    s.total += p.numel();
    if (p.requires_grad())
      s.trainable += p.numel();
    else
      s.frozen_bytes_saved += int64_t(p.nbytes()) * (1 + moments);
  }
  return s;
}

double Trainer::lr_of(const std::string& name, int64_t step) const {
  for (const ParamSpec& s : st_->optimizer->params())
    if (s.name == name) return st_->schedule.lr(step) * s.lr_scale;
  throw std::invalid_argument("no parameter named " + name);
}

double Trainer::train_step(int64_t step) {
  apply_freezing(step);
  task_.model().train(true);
  // Frozen layer groups stay in eval mode: their BatchNorm statistics must not move.
  task_.model().eval_subtrees(frozen_group_prefixes(step));
  st_->optimizer->zero_grad();
  std::vector<TrainBatch> batches;
  int64_t total = 0;
  last_work_ = 0;
  for (int64_t i = 0; i < o_.grad_accum; ++i) {
    batches.push_back(task_.next_batch());
    total += batches.back().count;
    last_work_ += batches.back().work;
  }
  // The step's loss accumulates where the model runs and is read once, after the backward
  // passes are queued (on a GPU, reading it per micro-batch would stall the stream each time).
  Tensor step_loss_sum;
  GradScaler* scaler = st_->scaler ? &*st_->scaler : nullptr;
  for (const TrainBatch& b : batches) {
    if (b.count == 0) continue;
    const double weight = double(b.count) / double(total);
    Tensor loss;
    {
      AutocastGuard autocast(autocast_);  // the forward only; backward computes in its saved dtypes
      // The gradient the loss will get: a loss that forms its gradient in the forward forms that one.
      ops::LossGradScaleGuard expected(weight * (scaler ? scaler->scale() : 1.0));
      loss = task_.mean_loss(b);
    }
    const Tensor weighted = ops::mul(loss, weight);
    (scaler ? scaler->scale_loss(weighted) : weighted).backward();
    NoGradGuard no_grad;
    const Tensor w = ops::mul(loss.detach().to(DType::F64), weight);
    step_loss_sum = step_loss_sum.defined() ? ops::add(step_loss_sum, w) : w;
  }
  const double step_loss = step_loss_sum.defined() ? step_loss_sum.item() : 0.0;
  std::vector<Tensor> trainable;
  for (const Tensor& p : params_)
    if (p.requires_grad()) trainable.push_back(p);
  if (scaler) scaler->unscale(trainable);
  last_grad_norm_ = global_grad_norm(trainable);
  // A non-finite norm means some gradient overflowed: with loss scaling the step is skipped (the
  // scale backs off and the next step tries again); without it there is nothing to retry.
  last_step_skipped_ = scaler && !std::isfinite(last_grad_norm_);
  if (last_step_skipped_) {
    st_->optimizer->zero_grad();
  } else {
    clip_grads_to_norm(trainable, last_grad_norm_, o_.clip_grad_norm);
    st_->optimizer->step(st_->schedule.lr(step));
  }
  if (scaler) scaler->update(last_step_skipped_);
  return step_loss;
}

std::map<std::string, double> Trainer::evaluate_model() {
  task_.model().eval();
  AutocastGuard autocast(autocast_);  // evaluate in the precision the model trains in
  return task_.evaluate();
}

double Trainer::loss_scale() const { return st_->scaler ? st_->scaler->scale() : 1.0; }

void Trainer::log_metrics(const std::string& line) const {
  if (o_.out_dir.empty()) return;
  std::ofstream f(fs::path(o_.out_dir) / "metrics.jsonl", std::ios::app);
  f << line << "\n";
}

void Trainer::save_weights(const std::string& dir, const std::string& file) const {
  io::StateDict weights;
  for (auto& [n, p] : task_.model().named_parameters()) weights[n] = p.detach();
  for (auto& [n, b] : task_.model().named_buffers()) weights[n] = b.detach();
  io::save_safetensors((fs::path(dir) / file).string(), weights, {{"format", "pt"}});
}

void Trainer::load_weights(const std::string& path) {
  const io::StateDict weights = io::load_safetensors(path);
  for (auto& [n, p] : task_.model().named_parameters()) {
    auto it = weights.find(n);
    if (it == weights.end()) throw std::runtime_error(path + ": no tensor '" + n + "'");
    task_.model().set_parameter(n, it->second);
  }
  for (auto& [n, b] : task_.model().named_buffers()) {
    auto it = weights.find(n);
    if (it != weights.end()) task_.model().set_parameter(n, it->second);
  }
}

void Trainer::save_checkpoint(int64_t step) const {
  if (o_.out_dir.empty()) return;
  char name[32];
  std::snprintf(name, sizeof name, "step-%07ld", long(step));
  const fs::path ckdir = fs::path(o_.out_dir) / "checkpoints";
  const fs::path dir = ckdir / name;
  fs::create_directories(dir);
  save_weights(dir.string(), "model.safetensors");
  io::StateDict moments;
  for (auto& [k, t] : st_->optimizer->state()) moments[k] = t;
  io::save_safetensors((dir / "optimizer.safetensors").string(), moments);
  const LrSchedule::State ps = st_->schedule.state();
  nlohmann::json state = {{"step", step},
                          {"rng_seed", default_generator().seed},
                          {"rng_offset", default_generator().offset},
                          {"data_position", task_.data_position()},
                          {"lr", st_->schedule.lr(std::max<int64_t>(0, step - 1))},
                          {"plateau", {{"scale", ps.scale}, {"best", ps.best}, {"bad", ps.bad}, {"has_best", ps.has_best}}},
                          {"early_stopping",
                           {{"best", st_->early.best()},
                            {"has_best", st_->early.has_best()},
                            {"bad", st_->early.evaluations_without_improvement()}}}};
  if (st_->scaler) {
    const GradScaler::State s = st_->scaler->state();
    state["loss_scale"] = {{"scale", s.scale}, {"growth_tracker", s.growth_tracker}, {"skipped", s.skipped}};
  }
  const std::string text = state.dump(2);
  io::write_file_atomic((dir / "trainer_state.json").string(), [&](std::FILE* f) { std::fputs(text.c_str(), f); });
  // Only now does the checkpoint become the one to resume from.
  io::write_file_atomic((ckdir / "latest").string(), [&](std::FILE* f) { std::fputs(name, f); });
  // Keep the newest two (the previous one survives a crash during the next write).
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(ckdir))
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + 2 < all.size(); ++i) fs::remove_all(all[i]);
}

int64_t Trainer::load_latest_checkpoint() {
  const fs::path ckdir = fs::path(o_.out_dir) / "checkpoints";
  std::ifstream latest(ckdir / "latest");
  if (!latest) return 0;
  std::string name;
  std::getline(latest, name);
  const fs::path dir = ckdir / name;
  std::ifstream sf(dir / "trainer_state.json");
  if (!sf) throw std::runtime_error((dir / "trainer_state.json").string() + ": missing; the checkpoint is incomplete");
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(sf);
  } catch (const std::exception& e) {
    throw std::runtime_error((dir / "trainer_state.json").string() + ": not valid JSON: " + e.what());
  }
  load_weights((dir / "model.safetensors").string());
  const io::StateDict moments = io::load_safetensors((dir / "optimizer.safetensors").string());
  st_->optimizer->load_state(std::map<std::string, Tensor>(moments.begin(), moments.end()));
  default_generator().seed = state.at("rng_seed").get<uint64_t>();
  default_generator().offset = state.at("rng_offset").get<uint64_t>();
  task_.restore_data_position(state.at("data_position").get<int64_t>());
  if (state.contains("plateau")) {
    const auto& p = state["plateau"];
    st_->schedule.restore({p.at("scale").get<double>(), p.at("best").get<double>(), p.at("bad").get<int64_t>(),
                           p.at("has_best").get<bool>()});
  }
  if (state.contains("early_stopping")) {
    const auto& e = state["early_stopping"];
    st_->early.restore(e.at("best").get<double>(), e.at("has_best").get<bool>(), e.at("bad").get<int64_t>());
  }
  if (st_->scaler && state.contains("loss_scale")) {
    const auto& s = state["loss_scale"];
    st_->scaler->load_state({s.at("scale").get<double>(), s.at("growth_tracker").get<int64_t>(), s.at("skipped").get<int64_t>()});
  }
  return state.at("step").get<int64_t>();
}

void Trainer::report_peak_device_memory() const {
  if (const Device d = task_.model().device(); d.is_cuda() && !o_.quiet)
    std::printf("%s (%s)\n", cuda_peak_memory_text(d.index).c_str(), d.str().c_str());
}

TrainSummary Trainer::run() {
  TrainSummary summary;
  int64_t start = 0;
  if (!o_.out_dir.empty()) fs::create_directories(o_.out_dir);
  if (o_.resume && !o_.out_dir.empty()) {
    start = load_latest_checkpoint();
    if (start > 0) {
      // Forget metrics logged after the checkpoint: they will be logged again.
      const fs::path mpath = fs::path(o_.out_dir) / "metrics.jsonl";
      std::ifstream in(mpath);
      std::string line, kept;
      while (std::getline(in, line)) {
        try {
          if (nlohmann::json::parse(line).value("step", int64_t(0)) <= start) kept += line + "\n";
        } catch (...) {
        }
      }
      in.close();
      io::write_file_atomic(mpath.string(), [&](std::FILE* f) { std::fputs(kept.c_str(), f); });
      if (!o_.quiet) std::printf("resumed from step %ld\n", long(start));
    }
  } else if (!o_.out_dir.empty()) {
    fs::remove(fs::path(o_.out_dir) / "metrics.jsonl");
  }
  summary.first_step = start;
  if (!o_.quiet) {
    apply_freezing(start);
    std::printf("%s\n", trainable().text().c_str());
  }
  ProgressLine progress(o_.steps, task_.work_unit(), o_.log_every);
  const bool early = st_->early.enabled();
  auto evaluate_and_log = [&](int64_t global) {
    const auto metrics = evaluate_model();
    nlohmann::json ev = {{"step", global}, {"split", "val"}};
    for (auto& [k, v] : metrics) ev[k] = v;
    log_metrics(ev.dump());
    // The plateau schedule follows the early-stopping metric, else the val loss.
    const std::string key = early ? o_.early_stopping_metric : "loss";
    if (metrics.count(key)) st_->schedule.on_evaluation(metrics.at(key));
    if (early) {
      auto it = metrics.find(o_.early_stopping_metric);
      if (it == metrics.end())
        throw std::invalid_argument("early_stopping.metric '" + o_.early_stopping_metric +
                                    "' is not among this task's evaluation metrics");
      if (st_->early.update(it->second) && !o_.out_dir.empty()) {
        fs::create_directories(fs::path(o_.out_dir) / "best");
        save_weights((fs::path(o_.out_dir) / "best").string(), "model.safetensors");
        summary.best_step = global;
      }
    }
    return metrics;
  };
  int64_t done_this_run = 0;
  int64_t last = start;
  for (int64_t step = start; step < o_.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = train_step(step);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    summary.losses.push_back(loss);
    const int64_t global = step + 1;
    last = global;
    const double lr = st_->schedule.lr(step);
    nlohmann::json line = {{"step", global}, {"loss", loss}, {"lr", lr}, {"grad_norm", last_grad_norm_},
                           {"step_seconds", secs}};
    if (st_->scaler) line["loss_scale"] = st_->scaler->scale();
    if (last_step_skipped_) line["skipped"] = true;
    log_metrics(line.dump());
    if (!o_.quiet) {
      char extra[96];
      if (st_->scaler)
        std::snprintf(extra, sizeof extra, "grad norm %.3f, loss scale %g%s", last_grad_norm_, st_->scaler->scale(),
                      last_step_skipped_ ? " (overflow: step skipped)" : "");
      else
        std::snprintf(extra, sizeof extra, "grad norm %.3f", last_grad_norm_);
      progress.update(global, loss, lr, last_work_, extra);
    }
    if (o_.eval_every > 0 && global % o_.eval_every == 0 && global != o_.steps) {
      const auto metrics = evaluate_and_log(global);
      if (!o_.quiet) {
        std::printf("\n[eval] step %ld:", long(global));
        for (auto& [k, v] : metrics) std::printf(" %s %.4f", k.c_str(), v);
        std::printf("\n");
      }
      if (early && st_->early.should_stop()) {
        summary.stopped_early = true;
        if (!o_.quiet)
          std::printf("early stopping: %s has not improved for %ld evaluations (best %.4f)\n",
                      o_.early_stopping_metric.c_str(), long(st_->early.evaluations_without_improvement()),
                      st_->early.best());
        break;
      }
    }
    if (o_.save_every > 0 && global % o_.save_every == 0) save_checkpoint(global);
    ++done_this_run;
    if (o_.stop_after > 0 && done_this_run >= o_.stop_after) {
      summary.steps_done = global;
      report_peak_device_memory();
      return summary;  // simulated interruption
    }
  }
  if (!o_.quiet) progress.finish();
  report_peak_device_memory();
  if (!summary.stopped_early) summary.final_eval = evaluate_and_log(o_.steps);
  if (early && o_.load_best && !o_.out_dir.empty() && fs::exists(fs::path(o_.out_dir) / "best" / "model.safetensors")) {
    load_weights((fs::path(o_.out_dir) / "best" / "model.safetensors").string());
    summary.final_eval = evaluate_model();
    if (!o_.quiet) std::printf("loaded the best weights (step %ld)\n", long(summary.best_step));
  } else if (summary.stopped_early) {
    summary.final_eval = evaluate_model();
  }
  save_checkpoint(last);
  summary.steps_done = last;
  if (!o_.out_dir.empty()) {
    // Curves a person would rather look at than read: <run>/curves.png and .svg.
    const std::string stem = (fs::path(o_.out_dir) / "curves").string();
    try {
      plot_runs({o_.out_dir}, stem);
      if (!o_.quiet) std::printf("curves: %s.png (and .svg)\n", stem.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "warning: could not draw the curves: %s\n", e.what());
    }
  }
  return summary;
}

}  // namespace hone
