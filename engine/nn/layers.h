// The basic layers. Weight layouts follow the checkpoints they load: Linear is nn.Linear
// ([out, in]); Conv1D is GPT-2's Hugging Face Conv1D ([in, out], y = x W + b), kept in that
// layout so gradients compare 1:1 with PyTorch's param.grad. Linear and Conv1D (like Conv2d)
// pass their output through the module's forward hook when one is set (Module::set_forward_hook).
#pragma once
#include "engine/nn/module.h"
#include "engine/ops/ops.h"

namespace hone::nn {

// Initialisers draw from the Philox stream `seed` (reproducible on every machine).
Tensor normal_init(const Shape& shape, double std, uint64_t seed);

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, double init_std, uint64_t seed);
  Tensor forward(const Tensor& x) const;
  // gelu(forward(x)), the bias add fused with the GELU when there is a bias and no hook.
  Tensor forward_gelu(const Tensor& x, ops::GeluApprox approx) const;

 private:
  bool has_bias_;
};

class Conv1D : public Module {
 public:
  Conv1D(int64_t in, int64_t out, double init_std, uint64_t seed);
  Tensor forward(const Tensor& x) const;
  // gelu(forward(x)) with the bias add and the GELU in one fused pass (ops::bias_gelu); with a
  // forward hook installed (LoRA) the hook sees the layer's output first, as in forward().
  Tensor forward_gelu(const Tensor& x, ops::GeluApprox approx) const;
  // proj.forward(fc.forward_gelu(x, Tanh)), the transformer MLP, as one op (ops::mlp_gelu_tanh: on
  // CUDA the GELU's gradient rides in a GEMM epilogue); the two layers' own forwards when either
  // has a forward hook (LoRA).
  static Tensor mlp_gelu_tanh(const Conv1D& fc, const Conv1D& proj, const Tensor& x);
};

class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, double init_std, uint64_t seed);
  Tensor forward(const Tensor& ids) const;
  const Tensor& weight() const { return param("weight"); }
};

class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, double eps);
  Tensor forward(const Tensor& x) const;
  // The pre-LN residual step in one kernel (ops::add_layer_norm): {x + residual, this(x + residual)}.
  // normed_feeds_matmul: see ops::add_layer_norm (under autocast, normed in the autocast dtype).
  ops::AddLayerNormResult forward_after_add(const Tensor& x, const Tensor& residual,
                                            bool normed_feeds_matmul = false) const;

 private:
  int64_t dim_;
  double eps_;
};

}  // namespace hone::nn
