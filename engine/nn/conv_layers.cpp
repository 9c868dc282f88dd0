#include "engine/nn/conv_layers.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"

namespace hone::nn {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, uint64_t seed,
               int64_t groups, int64_t dilation)
    : out_(out), bias_(bias) {
  args_.stride_h = args_.stride_w = stride;
  args_.pad_h = args_.pad_w = padding;
  args_.dilation_h = args_.dilation_w = dilation;
  args_.groups = groups;
  // Kaiming normal (fan_out, ReLU), torchvision's ResNet initialisation.
  const double std = std::sqrt(2.0 / double(out * kernel * kernel));
  register_parameter("weight", normal_init({out, in / groups, kernel, kernel}, std, seed));
  if (bias) register_parameter("bias", Tensor::zeros({out}));
}

Tensor Conv2d::forward(const Tensor& x) const {
  Tensor y = ops::conv2d(x, param("weight"), bias_ ? param("bias") : Tensor(), args_);
  return forward_hook() ? forward_hook()(x, y) : y;
}

BatchNorm2d::BatchNorm2d(int64_t channels, double eps, double momentum) : eps_(eps), momentum_(momentum) {
  register_parameter("weight", Tensor::ones({channels}));
  register_parameter("bias", Tensor::zeros({channels}));
  register_buffer("running_mean", Tensor::zeros({channels}));
  register_buffer("running_var", Tensor::ones({channels}));
  register_buffer("num_batches_tracked", Tensor::zeros({}, DType::I64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  const auto buffers = named_buffers();  // running_mean, running_var, num_batches_tracked (in order)
  Tensor mean = buffers[0].second, var = buffers[1].second;
  if (training()) {
    NoGradGuard no_grad;
    Tensor tracked = buffers[2].second;
    if (tracked_ < 0 || tracked.storage().get() != tracked_storage_ || tracked.storage()->version() != tracked_version_)
      tracked_ = int64_t(tracked.item());
    tracked.fill_(double(++tracked_));
    tracked_storage_ = tracked.storage().get();
    tracked_version_ = tracked.storage()->version();
  }
  return ops::batch_norm(x, mean, var, param("weight"), param("bias"), training(), momentum_, eps_);
}

}  // namespace hone::nn
