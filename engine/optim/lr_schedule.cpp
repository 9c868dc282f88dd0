#include "engine/optim/lr_schedule.h"

#include <cmath>
#include <stdexcept>

namespace hone {

LrSchedule::LrSchedule(const LrScheduleConfig& c, double peak) : c_(c), peak_(peak) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("schedule: " + what); };
  if (c.total_steps < 1) fail("total steps must be >= 1");
  if (c.warmup_ratio < 0 || c.warmup_ratio >= 1) fail("warmup_ratio must be in [0, 1)");
  warmup_ = c.warmup_steps > 0 ? c.warmup_steps : int64_t(std::llround(c.warmup_ratio * double(c.total_steps)));
  if (warmup_ > c.total_steps)
    fail("warmup of " + std::to_string(warmup_) + " steps does not fit a run of " + std::to_string(c.total_steps) + " steps");
  if (c.min_lr_ratio < 0 || c.min_lr_ratio > 1) fail("min_lr_ratio must be in [0, 1]");
  const int64_t after = c.total_steps - warmup_;
  if (c.kind == "cosine_restarts") {
    if (c.cycles < 1) fail("cycles must be >= 1");
    if (after < c.cycles)
      fail(std::to_string(c.cycles) + " restart cycles do not fit the " + std::to_string(after) + " steps after warmup");
  } else if (c.kind == "wsd") {
    if (c.decay_ratio <= 0 || c.decay_ratio > 1) fail("decay_ratio must be in (0, 1]");
    const int64_t decay = int64_t(std::llround(c.decay_ratio * double(c.total_steps)));
    if (warmup_ + decay > c.total_steps)
      fail("warmup (" + std::to_string(warmup_) + ") and decay (" + std::to_string(decay) + ") phases exceed the run's " +
           std::to_string(c.total_steps) + " steps");
  } else if (c.kind == "plateau") {
    if (c.factor <= 0 || c.factor >= 1) fail("factor must be in (0, 1)");
    if (c.patience < 0) fail("patience must be >= 0");
    if (c.mode != "min" && c.mode != "max") fail("mode must be min or max");
  } else if (c.kind != "constant" && c.kind != "linear" && c.kind != "cosine") {
    fail("unknown kind '" + c.kind + "' (constant, linear, cosine, cosine_restarts, wsd, plateau)");
  }
}

double LrSchedule::lr(int64_t step) const {
  const double floor = peak_ * c_.min_lr_ratio;
  if (step < warmup_) return peak_ * double(step + 1) / double(warmup_);
  const int64_t after = c_.total_steps - warmup_;
  const double t = after > 0 ? std::min(1.0, double(step - warmup_) / double(after)) : 1.0;
  const double pi = 3.14159265358979323846;
  if (c_.kind == "constant") return peak_;
  if (c_.kind == "plateau") return peak_ * scale_;
  if (c_.kind == "linear") return floor + (peak_ - floor) * (1.0 - t);
  if (c_.kind == "cosine") return floor + 0.5 * (peak_ - floor) * (1.0 + std::cos(pi * t));
  if (c_.kind == "cosine_restarts") {
    const double cycle_len = double(after) / double(c_.cycles);
    const double in_cycle = std::fmod(double(step - warmup_), cycle_len) / cycle_len;
    return floor + 0.5 * (peak_ - floor) * (1.0 + std::cos(pi * in_cycle));
  }
  // wsd
  const int64_t decay = int64_t(std::llround(c_.decay_ratio * double(c_.total_steps)));
  const int64_t decay_start = c_.total_steps - decay;
  if (step < decay_start) return peak_;
  const double d = std::min(1.0, double(step - decay_start + 1) / double(std::max<int64_t>(1, decay)));
  return peak_ + (floor - peak_) * d;
}

void LrSchedule::on_evaluation(double metric) {
  if (c_.kind != "plateau" || std::isnan(metric)) return;
  const bool better = !has_best_ || (c_.mode == "min" ? metric < best_ * (1 - c_.threshold)
                                                      : metric > best_ * (1 + c_.threshold));
  if (better) {
    best_ = metric;
    has_best_ = true;
    bad_ = 0;
    return;
  }
  if (++bad_ > c_.patience) {
    scale_ *= c_.factor;
    bad_ = 0;
  }
}

}  // namespace hone
