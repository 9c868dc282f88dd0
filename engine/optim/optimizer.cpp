#include "engine/optim/optimizer.h"

#include <cmath>
#include <stdexcept>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/autocast_copy.h"
#include "engine/ops/ops.h"
#include "kernels/optim.h"

#if defined(HONE_WITH_CUDA)
#include "engine/core/cuda_runtime.h"
#endif

namespace hone {

namespace {

class AdamWOptimizer : public Optimizer {
 public:
  AdamWOptimizer(const OptimizerConfig& c, std::vector<ParamSpec> p) : Optimizer(std::move(p)), c_(c) {}
  void step(double lr) override {
    NoGradGuard no_grad;
    std::vector<Pending> device_updates;
    for (size_t i = 0; i < params_.size(); ++i) {
      ParamSpec& s = params_[i];
      const Tensor g = s.param.grad();
      if (!g.defined()) continue;
      Tensor& m = slot("exp_avg", i, true);
      Tensor& v = slot("exp_avg_sq", i, true);
      Tensor& steps = slot("step", i, true);  // on the host: read without a device round trip
      const int64_t t = steps.data<int64_t>()[0] + 1;
      steps.data<int64_t>()[0] = t;
      const Tensor gc = g.contiguous();
      kernels::AdamWParams hp{float(lr * s.lr_scale), float(c_.beta1),       float(c_.beta2),
                              float(c_.eps),          float(s.weight_decay), t};
      if (s.param.device().is_cuda()) {
        // A current autocast copy is rewritten by the same pass (read before the bump below).
        Pending u{i, gc, hp};
        u.copy = ops::current_autocast_copy(s.param, &u.copy_dtype);
        device_updates.push_back(u);
        s.param.bump_version();
        continue;
      }
      s.param.bump_version();  // the CPU's autocast copy goes stale: the next forward casts again
      kernels::adamw_update(s.param.numel(), s.param.data<float>(), gc.data<float>(), m.data<float>(), v.data<float>(), hp);
    }
    if (!device_updates.empty()) step_on_device(device_updates);
  }

 private:
  struct Pending {
    size_t index;
    Tensor grad;  // contiguous; kept alive until the launch is queued
    kernels::AdamWParams hp;
    void* copy = nullptr;  // the parameter's current autocast copy (engine/ops/autocast_copy.h)
    DType copy_dtype = DType::F32;
  };

  // All of a step's device parameters in as few launches as possible: one multi-tensor launch
  // per distinct (lr, step) pair, which is one launch unless layer-wise lr or a late unfreeze
  // gives parameters different learning rates or step counts.
  void step_on_device(const std::vector<Pending>& updates) {
#if defined(HONE_WITH_CUDA)
    std::vector<bool> done(updates.size(), false);
    for (size_t a = 0; a < updates.size(); ++a) {
      if (done[a]) continue;
      std::vector<kernels::cuda::AdamWTensor> batch;
      for (size_t b = a; b < updates.size(); ++b) {
        if (done[b] || updates[b].hp.lr != updates[a].hp.lr || updates[b].hp.step != updates[a].hp.step) continue;
        done[b] = true;
        const size_t i = updates[b].index;
        kernels::cuda::AdamWTensor t{params_[i].param.data<float>(),
                                     updates[b].grad.data<float>(),
                                     slot("exp_avg", i, false).data<float>(),
                                     slot("exp_avg_sq", i, false).data<float>(),
                                     params_[i].param.numel(),
                                     updates[b].hp.weight_decay};
        if (updates[b].copy_dtype == DType::BF16) t.copy_bf16 = static_cast<bf16*>(updates[b].copy);
        if (updates[b].copy_dtype == DType::F16) t.copy_f16 = static_cast<f16*>(updates[b].copy);
        batch.push_back(t);
      }
      kernels::cuda::adamw_multi(batch.data(), int(batch.size()), updates[a].hp,
                                 cuda::stream(params_[updates[a].index].param.device()));
    }
    for (const Pending& u : updates)
      if (u.copy) ops::mark_autocast_copy_written(params_[u.index].param);
#else
    (void)updates;
    throw std::logic_error("optimizer: a CUDA parameter in a build without CUDA");
#endif
  }

  OptimizerConfig c_;
};

// torch.optim.SGD: g += wd * p (coupled decay); with momentum, buf = mu * buf + g (buf = g at
// the first step); nesterov uses g + mu * buf; p -= lr * update.
class SgdOptimizer : public Optimizer {
 public:
  SgdOptimizer(const OptimizerConfig& c, std::vector<ParamSpec> p) : Optimizer(std::move(p)), c_(c) {}
  void step(double lr) override {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      ParamSpec& s = params_[i];
      const Tensor g0 = s.param.grad();
      if (!g0.defined()) continue;
      Tensor g = g0.contiguous().clone();
      if (s.weight_decay != 0) ops::add_(g, s.param, s.weight_decay);
      Tensor update = g;
      if (c_.momentum != 0) {
        const bool fresh = !state_.count("momentum." + s.name);
        Tensor& buf = slot("momentum", i, true);
        if (fresh) {
          buf.copy_(g);
        } else {
          ops::mul_(buf, c_.momentum);
          ops::add_(buf, g);
        }
        if (c_.nesterov) {
          update = g.clone();
          ops::add_(update, buf, c_.momentum);
        } else {
          update = buf;
        }
      }
      ops::add_(s.param, update, -lr * s.lr_scale);
    }
  }

 private:
  OptimizerConfig c_;
};

}  // namespace

std::unique_ptr<Optimizer> Optimizer::create(const OptimizerConfig& c, std::vector<ParamSpec> params) {
  for (const ParamSpec& p : params) {
    if (p.param.dtype() != DType::F32 || !p.param.is_contiguous())
      throw std::invalid_argument("optimizer: parameter '" + p.name + "' must be a contiguous float32 tensor, got " +
                                  p.param.str());
    if (p.param.device() != params.front().param.device())
      throw std::invalid_argument("optimizer: parameter '" + p.name + "' is on " + p.param.device().str() + ", '" +
                                  params.front().name + "' on " + params.front().param.device().str() +
                                  " (move the whole model with Module::to first)");
  }
  if (c.kind == "adamw") return std::make_unique<AdamWOptimizer>(c, std::move(params));
  if (c.kind == "sgd") {
    if (c.momentum < 0 || (c.nesterov && c.momentum <= 0))
      throw std::invalid_argument("sgd: momentum must be >= 0, and > 0 with nesterov");
    return std::make_unique<SgdOptimizer>(c, std::move(params));
  }
  throw std::invalid_argument("optimizer '" + c.kind + "' is not available (adamw, sgd)");
}

void Optimizer::zero_grad() {
  for (ParamSpec& p : params_) p.param.zero_grad();
}

Tensor& Optimizer::slot(const std::string& kind, size_t i, bool create) {
  const std::string key = kind + "." + params_[i].name;
  auto it = state_.find(key);
  if (it != state_.end()) return it->second;
  if (!create) throw std::logic_error("optimizer: no state " + key);
  // Moments live beside their parameter; step counts stay on the host.
  Tensor t = kind == "step" ? Tensor::zeros({}, DType::I64)
                            : Tensor::zeros(params_[i].param.shape(), DType::F32, params_[i].param.device());
  return state_.emplace(key, t).first->second;
}

std::map<std::string, Tensor> Optimizer::state() const { return state_; }

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  NoGradGuard no_grad;
  state_.clear();
  for (const auto& [key, t] : state) {
    const size_t dot = key.find('.');
    const std::string name = dot == std::string::npos ? "" : key.substr(dot + 1);
    bool known = false;
    for (const ParamSpec& p : params_) {
      if (p.name != name) continue;
      known = true;
      const bool is_step = key.rfind("step.", 0) == 0;
      if (!is_step && t.shape() != p.param.shape())
        throw std::invalid_argument("optimizer state '" + key + "' has shape " + shape_str(t.shape()) +
                                    ", parameter has " + shape_str(p.param.shape()));
      Tensor own = is_step ? Tensor::zeros({}, DType::I64) : Tensor::zeros(p.param.shape(), DType::F32, p.param.device());
      own.copy_(t);
      state_[key] = own;
    }
    if (!known) throw std::invalid_argument("optimizer state '" + key + "' names no trainable parameter");
  }
}

int64_t Optimizer::state_bytes() const {
  int64_t n = 0;
  for (const auto& [k, t] : state_) n += int64_t(t.nbytes());
  return n;
}

}  // namespace hone
