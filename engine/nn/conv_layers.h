// Convolutional layers with torchvision's parameter and buffer names: Conv2d (weight [out, in/g,
// kh, kw], optional bias) and BatchNorm2d (weight, bias; buffers running_mean, running_var,
// num_batches_tracked). A BatchNorm2d in eval mode uses and never changes its running statistics.
#pragma once
#include "engine/nn/module.h"
#include "engine/ops/ops.h"

namespace hone::nn {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, uint64_t seed,
         int64_t groups = 1, int64_t dilation = 1);
  Tensor forward(const Tensor& x) const;
  int64_t out_channels() const { return out_; }
  // Stride, padding, dilation and groups, as passed to ops::conv2d.
  const ops::Conv2dArgs& args() const { return args_; }

 private:
  int64_t out_;
  ops::Conv2dArgs args_;
  bool bias_;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x);

 private:
  double eps_, momentum_;
  // A host copy of num_batches_tracked, so that counting a batch does not read the buffer back
  // (a synchronisation per layer and step on a GPU). It is re-read only when the buffer was
  // written by something else (a checkpoint load, Module::to): storage or version changed.
  int64_t tracked_ = -1;
  const void* tracked_storage_ = nullptr;
  uint64_t tracked_version_ = 0;
};

}  // namespace hone::nn
