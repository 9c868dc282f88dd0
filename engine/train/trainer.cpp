#include "engine/train/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/io/checkpoint.h"
#include "engine/ops/ops.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip.h"
#include "engine/train/plot.h"
#include "engine/train/progress.h"

namespace fs = std::filesystem;

namespace hone {

struct Trainer::OptimizerBox {
  AdamW adamw;
};

bool default_weight_decay(const std::string& name, const Tensor& param) {
  if (param.dim() < 2) return false;
  for (const char* embedding : {"wte", "wpe", "embeddings", "embed_tokens"})
    if (name.find(embedding) != std::string::npos) return false;
  return true;
}

double scheduled_lr(const TrainerOptions& o, int64_t step) {
  const double peak = o.lr, floor = o.lr * o.min_lr_ratio;
  if (o.warmup_steps > 0 && step < o.warmup_steps) return peak * double(step + 1) / double(o.warmup_steps);
  if (o.decay == "constant") return peak;
  const double span = double(std::max<int64_t>(1, o.steps - o.warmup_steps));
  const double progress = std::min(1.0, double(step - o.warmup_steps) / span);
  if (o.decay == "linear") return floor + (peak - floor) * (1.0 - progress);
  return floor + 0.5 * (peak - floor) * (1.0 + std::cos(M_PI * progress));
}

Trainer::Trainer(TrainTask& task, TrainerOptions options) : task_(task), o_(std::move(options)) {
  if (o_.decay != "cosine" && o_.decay != "linear" && o_.decay != "constant")
    throw std::invalid_argument("schedule decay must be cosine, linear or constant, got '" + o_.decay + "'");
  if (o_.steps < 1 || o_.grad_accum < 1) throw std::invalid_argument("steps and grad_accum must be >= 1");
  if (o_.warmup_steps > o_.steps)
    throw std::invalid_argument("warmup_steps (" + std::to_string(o_.warmup_steps) + ") exceeds steps (" +
                                std::to_string(o_.steps) + ")");
  std::vector<bool> decay;
  for (auto& [name, p] : task_.model().named_parameters()) {
    if (!p.requires_grad()) continue;  // frozen
    names_.push_back(name);
    params_.push_back(p);
    decay.push_back(default_weight_decay(name, p));
  }
  AdamWConfig cfg{o_.lr, o_.beta1, o_.beta2, o_.eps, o_.weight_decay};
  opt_ = std::make_shared<OptimizerBox>(OptimizerBox{AdamW(params_, decay, cfg)});
}

double Trainer::train_step(int64_t step) {
  task_.model().train(true);
  opt_->adamw.zero_grad();
  std::vector<TrainBatch> batches;
  int64_t total = 0;
  last_work_ = 0;
  for (int64_t i = 0; i < o_.grad_accum; ++i) {
    batches.push_back(task_.next_batch());
    total += batches.back().count;
    last_work_ += batches.back().work;
  }
  double step_loss = 0;
  for (const TrainBatch& b : batches) {
    if (b.count == 0) continue;
    const double weight = double(b.count) / double(total);
    const Tensor loss = task_.mean_loss(b);
    ops::mul(loss, weight).backward();
    step_loss += loss.item() * weight;
  }
  last_grad_norm_ = clip_grad_norm(params_, o_.clip_grad_norm);
  opt_->adamw.set_lr(scheduled_lr(o_, step));
  opt_->adamw.step();
  return step_loss;
}

void Trainer::log_metrics(const std::string& line) const {
  if (o_.out_dir.empty()) return;
  std::ofstream f(fs::path(o_.out_dir) / "metrics.jsonl", std::ios::app);
  f << line << "\n";
}

void Trainer::save_checkpoint(int64_t step) const {
  if (o_.out_dir.empty()) return;
  char name[32];
  std::snprintf(name, sizeof name, "step-%07ld", long(step));
  const fs::path ckdir = fs::path(o_.out_dir) / "checkpoints";
  const fs::path dir = ckdir / name;
  fs::create_directories(dir);
  io::StateDict weights, moments;
  for (auto& [n, p] : task_.model().named_parameters()) weights[n] = p.detach();
  for (auto& [n, b] : task_.model().named_buffers()) weights[n] = b.detach();
  for (size_t i = 0; i < params_.size(); ++i) {
    moments["exp_avg." + names_[i]] = opt_->adamw.exp_avg(i);
    moments["exp_avg_sq." + names_[i]] = opt_->adamw.exp_avg_sq(i);
  }
  io::save_safetensors((dir / "model.safetensors").string(), weights, {{"format", "pt"}});
  io::save_safetensors((dir / "optimizer.safetensors").string(), moments);
  nlohmann::json state = {{"step", step},
                          {"optimizer_steps", opt_->adamw.steps_taken()},
                          {"rng_seed", default_generator().seed},
                          {"rng_offset", default_generator().offset},
                          {"data_position", task_.data_position()},
                          {"lr", scheduled_lr(o_, std::max<int64_t>(0, step - 1))}};
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
  const io::StateDict weights = io::load_safetensors((dir / "model.safetensors").string());
  for (auto& [n, p] : task_.model().named_parameters()) {
    auto it = weights.find(n);
    if (it == weights.end()) throw std::runtime_error((dir / "model.safetensors").string() + ": no tensor '" + n + "'");
    task_.model().set_parameter(n, it->second);
  }
  for (auto& [n, b] : task_.model().named_buffers()) {
    auto it = weights.find(n);
    if (it != weights.end()) task_.model().set_parameter(n, it->second);
  }
  const io::StateDict moments = io::load_safetensors((dir / "optimizer.safetensors").string());
  std::vector<Tensor> m, v;
  for (const std::string& n : names_) {
    auto a = moments.find("exp_avg." + n), b = moments.find("exp_avg_sq." + n);
    if (a == moments.end() || b == moments.end())
      throw std::runtime_error((dir / "optimizer.safetensors").string() + ": no moments for '" + n + "'");
    m.push_back(a->second);
    v.push_back(b->second);
  }
  opt_->adamw.restore(m, v, state.at("optimizer_steps").get<int64_t>());
  default_generator().seed = state.at("rng_seed").get<uint64_t>();
  default_generator().offset = state.at("rng_offset").get<uint64_t>();
  task_.restore_data_position(state.at("data_position").get<int64_t>());
  return state.at("step").get<int64_t>();
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
  ProgressLine progress(o_.steps, task_.work_unit(), o_.log_every);
  int64_t done_this_run = 0;
  for (int64_t step = start; step < o_.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = train_step(step);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    summary.losses.push_back(loss);
    const int64_t global = step + 1;
    const double lr = scheduled_lr(o_, step);
    nlohmann::json line = {{"step", global}, {"loss", loss}, {"lr", lr}, {"grad_norm", last_grad_norm_},
                           {"step_seconds", secs}};
    log_metrics(line.dump());
    if (!o_.quiet) {
      char extra[64];
      std::snprintf(extra, sizeof extra, "grad norm %.3f", last_grad_norm_);
      progress.update(global, loss, lr, last_work_, extra);
    }
    if (o_.eval_every > 0 && global % o_.eval_every == 0 && global != o_.steps) {
      task_.model().eval();
      const auto metrics = task_.evaluate();
      nlohmann::json ev = {{"step", global}, {"split", "val"}};
      for (auto& [k, v] : metrics) ev[k] = v;
      log_metrics(ev.dump());
      if (!o_.quiet) std::printf("\n[eval] step %ld: %s\n", long(global), ev.dump().c_str());
    }
    if (o_.save_every > 0 && global % o_.save_every == 0) save_checkpoint(global);
    ++done_this_run;
    if (o_.stop_after > 0 && done_this_run >= o_.stop_after) {
      summary.steps_done = global;
      return summary;  // simulated interruption
    }
  }
  if (!o_.quiet) progress.finish();
  task_.model().eval();
  summary.final_eval = task_.evaluate();
  nlohmann::json ev = {{"step", o_.steps}, {"split", "val"}};
  for (auto& [k, v] : summary.final_eval) ev[k] = v;
  log_metrics(ev.dump());
  save_checkpoint(o_.steps);
  summary.steps_done = o_.steps;
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
