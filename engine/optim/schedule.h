// Learning-rate schedules as pure functions of the step (so a resumed run needs only the step).
#pragma once
#include <cmath>
#include <cstdint>

namespace hone {

// Linear warmup from 0 to peak over `warmup` steps, then cosine decay to `min_lr` at `total`.
inline double warmup_cosine_lr(int64_t step, int64_t warmup, int64_t total, double peak, double min_lr = 0.0) {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  if (step >= total) return min_lr;
  const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  return min_lr + 0.5 * (peak - min_lr) * (1.0 + std::cos(3.14159265358979323846 * progress));
}

}  // namespace hone
