// Learning-rate schedules: warmup (by steps or as a ratio of the run) followed by one of
//   constant          the peak lr
//   linear            peak -> min linearly
//   cosine            peak -> min along half a cosine
//   cosine_restarts   `cycles` cosine decays, each restarting at the peak (SGDR without growth)
//   wsd               warmup-stable-decay: the peak until the last `decay_ratio` of the run, then
//                     linear to min (the schedule of MiniCPM / DeepSeek-style runs)
//   plateau           the peak, multiplied by `factor` whenever the evaluated metric has not
//                     improved by `threshold` for `patience` evaluations (ReduceLROnPlateau)
// Every kind is a pure function of the step (plus, for plateau, the evaluations seen), so a
// resumed run needs only the step and the plateau state.
#pragma once
#include <cstdint>
#include <string>

namespace hone {

struct LrScheduleConfig {
  std::string kind = "cosine";
  int64_t total_steps = 100;
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;  // used when warmup_steps == 0
  double min_lr_ratio = 0.0;
  int64_t cycles = 2;         // cosine_restarts
  double decay_ratio = 0.1;   // wsd
  double factor = 0.5;        // plateau
  int64_t patience = 2;       // plateau (evaluations)
  double threshold = 1e-4;    // plateau (relative improvement)
  std::string mode = "min";   // plateau: min or max of the metric
};

class LrSchedule {
 public:
  // Validates that the phases fit the run; throws std::invalid_argument naming what does not.
  LrSchedule(const LrScheduleConfig& config, double peak_lr);

  double lr(int64_t step) const;  // step is 0-based
  int64_t warmup_steps() const { return warmup_; }
  // Plateau bookkeeping (no-op for other kinds).
  void on_evaluation(double metric);
  double plateau_scale() const { return scale_; }
  // For checkpoints: the plateau state.
  struct State {
    double scale = 1.0, best = 0.0;
    int64_t bad = 0;
    bool has_best = false;
  };
  State state() const { return {scale_, best_, bad_, has_best_}; }
  void restore(const State& s) { scale_ = s.scale, best_ = s.best, bad_ = s.bad, has_best_ = s.has_best; }

 private:
  LrScheduleConfig c_;
  double peak_;
  int64_t warmup_;
  double scale_ = 1.0, best_ = 0.0;
  int64_t bad_ = 0;
  bool has_best_ = false;
};

}  // namespace hone
