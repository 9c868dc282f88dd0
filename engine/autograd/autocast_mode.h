// Automatic mixed precision (the semantics of torch.autocast), as a thread-local mode.
//
// Inside an AutocastGuard(BF16 or F16) the ops choose their own compute dtype:
//   lower precision  matmul, linear, scaled-dot-product attention, conv2d cast their floating
//                    inputs to the autocast dtype (tensor-core GEMMs, half the activation bytes);
//   float32          layer_norm, softmax, log_softmax, the reductions (sum, mean, var) and
//                    exp/log/pow/rsqrt cast 16-bit inputs to float32 (statistics and
//                    exponentials need the range and the mantissa); cross_entropy reads 16-bit
//                    logits as they are but computes and returns the loss in float32;
//   input dtype      batch_norm keeps a 16-bit input 16-bit (its weight and bias join it) and
//                    computes its statistics in float32, as cuDNN's batch norm does: a CNN's
//                    conv -> BN -> ReLU chain then stays 16-bit instead of widening after
//                    every convolution;
//   promote          every other op runs in its inputs' dtype, and binary ops on two floating
//                    dtypes run in the wider one (bf16 + f32 -> f32), as PyTorch promotes.
// The parameters stay float32 (master weights): a cast is an ordinary differentiable op, so
// the gradient of a bf16 copy arrives at the float32 parameter as float32.
// Backward runs outside autocast (run_backward turns it off): each backward op computes in the
// dtype its forward saved.
#pragma once
#include <string>

#include "engine/core/dtype.h"

namespace hone {

// F32 means autocast is off.
DType autocast_dtype();
void set_autocast_dtype(DType dtype);
inline bool autocast_enabled() { return autocast_dtype() != DType::F32; }
// The autocast dtype of a precision name as recipes and flags spell it: fp32 -> F32 (off),
// bf16 -> BF16, fp16 -> F16; throws std::invalid_argument naming anything else.
DType autocast_dtype_for(const std::string& precision);

class AutocastGuard {
 public:
  // BF16 or F16 turns autocast on, F32 turns it off, for this scope.
  explicit AutocastGuard(DType dtype) : previous_(autocast_dtype()) { set_autocast_dtype(dtype); }
  ~AutocastGuard() { set_autocast_dtype(previous_); }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DType previous_;
};

}  // namespace hone
