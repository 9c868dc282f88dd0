#include "engine/optim/adamw.h"

#include <stdexcept>

#include "engine/autograd/grad_mode.h"
#include "kernels/optim.h"

namespace hone {

AdamW::AdamW(std::vector<Tensor> params, std::vector<bool> decay, AdamWConfig config)
    : params_(std::move(params)), decay_(std::move(decay)), config_(config) {
  if (decay_.size() != params_.size())
    throw std::invalid_argument("AdamW: one weight-decay flag per parameter is needed");
  for (const Tensor& p : params_) {
    if (p.dtype() != DType::F32 || !p.is_contiguous() || !p.device().is_cpu())
      throw std::invalid_argument("AdamW: parameters must be contiguous float32 CPU tensors, got " + p.str());
    m_.push_back(Tensor::zeros(p.shape()));
    v_.push_back(Tensor::zeros(p.shape()));
  }
}

void AdamW::step() {
  NoGradGuard no_grad;
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    const Tensor gc = g.contiguous();
    kernels::AdamWParams hp{float(config_.lr), float(config_.beta1), float(config_.beta2), float(config_.eps),
                            decay_[i] ? float(config_.weight_decay) : 0.0f, step_};
    kernels::adamw_update(params_[i].numel(), params_[i].data<float>(), gc.data<float>(), m_[i].data<float>(),
                          v_[i].data<float>(), hp);
    params_[i].bump_version();
  }
}

void AdamW::restore(const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq, int64_t steps) {
  if (exp_avg.size() != params_.size() || exp_avg_sq.size() != params_.size())
    throw std::invalid_argument("AdamW::restore: expected moments for " + std::to_string(params_.size()) + " parameters");
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (exp_avg[i].shape() != m_[i].shape() || exp_avg_sq[i].shape() != v_[i].shape())
      throw std::invalid_argument("AdamW::restore: moment shapes of parameter " + std::to_string(i) + " do not match");
    m_[i].copy_(exp_avg[i]);
    v_[i].copy_(exp_avg_sq[i]);
  }
  step_ = steps;
}

void AdamW::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

}  // namespace hone
