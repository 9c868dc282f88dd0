// Optimizer update kernels (one fused pass over a parameter tensor).
#pragma once
#include <cstdint>

namespace hone::kernels {

struct AdamWParams {
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based step after increment (for bias correction)
};

// AdamW (Loshchilov & Hutter): decoupled weight decay p -= lr * wd * p, then the Adam step with
// bias-corrected moments. m and v are updated in place.
void adamw_update(int64_t n, float* param, const float* grad, float* m, float* v, const AdamWParams& p);

}  // namespace hone::kernels

namespace hone::kernels::ref {
void adamw_update(int64_t n, float* param, const float* grad, float* m, float* v, const AdamWParams& p);
}
