// AdamW over a list of float32 parameters, with per-parameter weight decay (so biases, norms
// and embeddings can be excluded, as Hugging Face's Trainer does by default).
#pragma once
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hone {

struct AdamWConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  // `decay[i]` says whether params[i] gets weight decay.
  AdamW(std::vector<Tensor> params, std::vector<bool> decay, AdamWConfig config);

  // One update from the parameters' .grad (parameters without a gradient are skipped).
  void step();
  void zero_grad();
  void set_lr(double lr) { config_.lr = lr; }
  double lr() const { return config_.lr; }
  int64_t steps_taken() const { return step_; }

  // Moments of parameter i (for checkpoints) and restoring them with the step count.
  const Tensor& exp_avg(size_t i) const { return m_[i]; }
  const Tensor& exp_avg_sq(size_t i) const { return v_[i]; }
  void restore(const std::vector<Tensor>& exp_avg, const std::vector<Tensor>& exp_avg_sq, int64_t steps);
  size_t size() const { return params_.size(); }

 private:
  std::vector<Tensor> params_;
  std::vector<bool> decay_;
  std::vector<Tensor> m_, v_;
  AdamWConfig config_;
  int64_t step_ = 0;
};

}  // namespace hone
