#include "engine/optim/grad_scaler.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace hone {

GradScaler::GradScaler(GradScalerOptions options) : o_(options), scale_(options.init_scale) {
  if (!(o_.init_scale > 0) || !std::isfinite(o_.init_scale))
    throw std::invalid_argument("loss scaling: init_scale must be a positive number, got " + std::to_string(o_.init_scale));
  if (!(o_.growth_factor > 1)) throw std::invalid_argument("loss scaling: growth_factor must be > 1");
  if (!(o_.backoff_factor > 0 && o_.backoff_factor < 1)) throw std::invalid_argument("loss scaling: backoff_factor must be in (0, 1)");
  if (o_.growth_interval < 1) throw std::invalid_argument("loss scaling: growth_interval must be >= 1");
}

Tensor GradScaler::scale_loss(const Tensor& loss) const { return ops::mul(loss, scale_); }

void GradScaler::unscale(const std::vector<Tensor>& params) const {
  NoGradGuard no_grad;
  const double inv = 1.0 / scale_;  // exact: the scale is a power of two unless configured otherwise
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined()) ops::mul_(g, inv);
  }
}

void GradScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= o_.backoff_factor;
    growth_tracker_ = 0;
    ++skipped_;
    return;
  }
  if (++growth_tracker_ == o_.growth_interval) {
    // Stay finite: float32 cannot hold more than ~3.4e38 (PyTorch keeps the scale in float32).
    if (std::isfinite(float(scale_ * o_.growth_factor))) scale_ *= o_.growth_factor;
    growth_tracker_ = 0;
  }
}

void GradScaler::load_state(const State& s) {
  if (!(s.scale > 0) || !std::isfinite(s.scale) || s.growth_tracker < 0 || s.skipped < 0)
    throw std::invalid_argument("loss scaling: invalid saved state (scale " + std::to_string(s.scale) + ")");
  scale_ = s.scale;
  growth_tracker_ = s.growth_tracker;
  skipped_ = s.skipped;
}

}  // namespace hone
