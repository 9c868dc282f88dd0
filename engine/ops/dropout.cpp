// Dropout with a counter-based (Philox) mask: the backward regenerates the mask from
// (seed, offset) instead of keeping it, and a CUDA kernel can produce the very same mask.
#include <cmath>

#include "engine/core/random.h"
#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/dropout.h"

namespace hone::ops {

namespace {

void check_probability(double p) {
  // p == 1 is allowed (everything dropped); written so that NaN fails too.
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("dropout: probability p must be in [0, 1], got " + std::to_string(p));
}

// y = keep ? x / (1 - p) : 0 for the row-major elements of x, into a fresh contiguous tensor.
Tensor apply_mask(const Tensor& x_in, double p, uint64_t seed, uint64_t offset) {
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), "dropout", [&] {
    const auto* px = static_cast<const scalar_t*>(x.data_ptr());
    auto* py = static_cast<scalar_t*>(y.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY("dropout", kernels::cuda::dropout_apply<scalar_t>(x.numel(), p, seed, offset, px, py,
                                                                       cuda::stream(x.device())));
    } else {
      kernels::dropout_apply<scalar_t>(x.numel(), p, seed, offset, px, py);
    }
  });
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  check_probability(p);
  if (!training || p == 0.0) return x;
  detail::require_floating(x, "dropout");
  Tensor out = apply_mask(x.detach(), p, seed, offset);
  if (needs_grad({&x})) {
    // The derivative is the same masked scaling, applied to the gradient.
    record("DropoutBackward", out, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
      return {apply_mask(g, p, seed, offset)};
    });
  }
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  check_probability(p);
  // No random numbers are drawn when nothing is dropped, so evaluation leaves the stream alone.
  if (!training || p == 0.0) return x;
  Generator& gen = default_generator();
  const uint64_t offset = gen.take(static_cast<uint64_t>(x.numel()));
  return dropout(x, p, training, gen.seed, offset);
}

}  // namespace hone::ops
