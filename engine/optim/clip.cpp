#include "engine/optim/clip.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace hone {

double global_grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  double sq = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    // Per-tensor sums accumulate in double inside the reduction kernel, in a fixed order.
    const Tensor g64 = g.to(DType::F64);
    sq += ops::sum(ops::mul(g64, g64)).item();
  }
  return std::sqrt(sq);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  clip_grads_to_norm(params, norm, max_norm);
  return norm;
}

void clip_grads_to_norm(const std::vector<Tensor>& params, double norm, double max_norm) {
  if (max_norm > 0 && norm > max_norm) {
    NoGradGuard no_grad;
    const double scale = max_norm / (norm + 1e-6);
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) ops::mul_(g, scale);
    }
  }
}

}  // namespace hone
