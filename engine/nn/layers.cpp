#include "engine/nn/layers.h"

namespace hone::nn {

Tensor normal_init(const Shape& shape, double std, uint64_t seed) {
  Tensor t = Tensor::randn(shape, seed, DType::F64);
  return ops::mul(t, std).to(DType::F32);
}

Linear::Linear(int64_t in, int64_t out, bool bias, double init_std, uint64_t seed) : has_bias_(bias) {
  register_parameter("weight", normal_init({out, in}, init_std, seed));
  if (bias) register_parameter("bias", Tensor::zeros({out}));
}

Tensor Linear::forward(const Tensor& x) const {
  Tensor y = ops::linear(x, param("weight"), has_bias_ ? param("bias") : Tensor());
  return forward_hook() ? forward_hook()(x, y) : y;
}

namespace {

// The GELU after a layer with a bias: the tanh form through ops::linear_gelu_tanh (on CUDA one
// GEMM with cuBLASLt's GELU epilogue; on the CPU the product then ops::bias_gelu), the erf form
// as the product then ops::bias_gelu (cuBLASLt has no erf epilogue). `weight_t` is [out, in].
Tensor gelu_after_linear(const Tensor& x, const Tensor& weight_t, const Tensor& bias, ops::GeluApprox approx) {
  if (approx == ops::GeluApprox::Tanh) return ops::linear_gelu_tanh(x, weight_t, bias);
  const Tensor y = ops::matmul(x, weight_t.transpose(0, 1));
  return ops::bias_gelu(y, bias.to(y.dtype()), approx);  // the bias joins the product's dtype, as in linear
}

}  // namespace

Tensor Linear::forward_gelu(const Tensor& x, ops::GeluApprox approx) const {
  if (forward_hook() || !has_bias_) return ops::gelu(forward(x), approx);
  return gelu_after_linear(x, param("weight"), param("bias"), approx);
}

Conv1D::Conv1D(int64_t in, int64_t out, double init_std, uint64_t seed) {
  register_parameter("weight", normal_init({in, out}, init_std, seed));
  register_parameter("bias", Tensor::zeros({out}));
}

// HF's Conv1D is addmm(bias, x, W) with W [in, out]: ops::linear over the transposed view (no
// copy), so it gets linear's CUDA bias epilogue and its autocast rule (the bias in 16 bits too).
Tensor Conv1D::forward(const Tensor& x) const {
  Tensor y = ops::linear(x, param("weight").transpose(0, 1), param("bias"));
  return forward_hook() ? forward_hook()(x, y) : y;
}

Tensor Conv1D::forward_gelu(const Tensor& x, ops::GeluApprox approx) const {
  if (forward_hook()) return ops::gelu(forward(x), approx);
  return gelu_after_linear(x, param("weight").transpose(0, 1), param("bias"), approx);
}

Tensor Conv1D::mlp_gelu_tanh(const Conv1D& fc, const Conv1D& proj, const Tensor& x) {
  if (fc.forward_hook() || proj.forward_hook()) return proj.forward(fc.forward_gelu(x, ops::GeluApprox::Tanh));
  return ops::mlp_gelu_tanh(x, fc.param("weight").transpose(0, 1), fc.param("bias"),
                            proj.param("weight").transpose(0, 1), proj.param("bias"));
}

Embedding::Embedding(int64_t num, int64_t dim, double init_std, uint64_t seed) {
  register_parameter("weight", normal_init({num, dim}, init_std, seed));
}

Tensor Embedding::forward(const Tensor& ids) const { return ops::embedding(param("weight"), ids); }

LayerNorm::LayerNorm(int64_t dim, double eps) : dim_(dim), eps_(eps) {
  register_parameter("weight", Tensor::ones({dim}));
  register_parameter("bias", Tensor::zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) const {
  return ops::layer_norm(x, {dim_}, param("weight"), param("bias"), eps_);
}

ops::AddLayerNormResult LayerNorm::forward_after_add(const Tensor& x, const Tensor& residual,
                                                     bool normed_feeds_matmul) const {
  return ops::add_layer_norm(x, residual, param("weight"), param("bias"), eps_, normed_feeds_matmul);
}

}  // namespace hone::nn
