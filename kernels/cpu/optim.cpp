#include <cmath>

#include "kernels/cpu/strided_loop.h"
#include "kernels/optim.h"

namespace hone::kernels {

void adamw_update(int64_t n, float* param, const float* grad, float* m, float* v, const AdamWParams& p) {
  const float bc1 = 1.0f - std::pow(p.beta1, static_cast<float>(p.step));
  const float bc2 = 1.0f - std::pow(p.beta2, static_cast<float>(p.step));
  const float step_size = p.lr / bc1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(bc2);
  const float decay = 1.0f - p.lr * p.weight_decay;
  cpu::parallel_chunks(n, 1 << 14, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const float g = grad[i];
      const float mi = p.beta1 * m[i] + (1.0f - p.beta1) * g;
      const float vi = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) * inv_sqrt_bc2 + p.eps;
      param[i] = param[i] * decay - step_size * mi / denom;
    }
  });
}

}  // namespace hone::kernels
