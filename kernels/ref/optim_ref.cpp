// AdamW exactly as written in PyTorch's documentation (torch.optim.AdamW), in double.
#include <cmath>

#include "kernels/optim.h"

namespace hone::kernels::ref {

void adamw_update(int64_t n, float* param, const float* grad, float* m, float* v, const AdamWParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    double theta = param[i];
    theta -= double(p.lr) * p.weight_decay * theta;
    const double mi = double(p.beta1) * m[i] + (1.0 - p.beta1) * grad[i];
    const double vi = double(p.beta2) * v[i] + (1.0 - p.beta2) * double(grad[i]) * grad[i];
    const double m_hat = mi / (1.0 - std::pow(double(p.beta1), double(p.step)));
    const double v_hat = vi / (1.0 - std::pow(double(p.beta2), double(p.step)));
    theta -= p.lr * m_hat / (std::sqrt(v_hat) + p.eps);
    param[i] = float(theta);
    m[i] = float(mi);
    v[i] = float(vi);
  }
}

}  // namespace hone::kernels::ref
