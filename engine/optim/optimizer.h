// Optimizers over named parameters with per-parameter learning-rate scale and weight decay
// (parameter groups), state created lazily on a parameter's first update: frozen parameters
// (requires_grad false, so no gradient) never get moments, and a parameter unfrozen later starts
// its own state then, as in PyTorch where each parameter keeps its own step count.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hone {

struct ParamSpec {
  std::string name;
  Tensor param;
  double lr_scale = 1.0;      // this parameter's lr = schedule lr * lr_scale (layer-wise decay, groups)
  double weight_decay = 0.0;  // per parameter (0 for biases, norms, embeddings by default)
};

struct OptimizerConfig {
  std::string kind = "adamw";  // adamw | sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // AdamW
  double momentum = 0.0;                         // SGD
  bool nesterov = false;                         // SGD
};

class Optimizer {
 public:
  static std::unique_ptr<Optimizer> create(const OptimizerConfig& config, std::vector<ParamSpec> params);
  virtual ~Optimizer() = default;

  // One update of every parameter that has a gradient, at learning rate `lr` (times its scale).
  virtual void step(double lr) = 0;
  void zero_grad();
  const std::vector<ParamSpec>& params() const { return params_; }
  std::vector<ParamSpec>& params() { return params_; }

  // Named state tensors ("exp_avg.<param>", "exp_avg_sq.<param>", "step.<param>", "momentum.<param>")
  // for checkpoints, and restoring them.
  std::map<std::string, Tensor> state() const;
  void load_state(const std::map<std::string, Tensor>& state);
  // Bytes of optimizer state held now.
  int64_t state_bytes() const;

 protected:
  explicit Optimizer(std::vector<ParamSpec> params) : params_(std::move(params)) {}
  Tensor& slot(const std::string& kind, size_t i, bool create);
  std::vector<ParamSpec> params_;
  std::map<std::string, Tensor> state_;
};

}  // namespace hone
