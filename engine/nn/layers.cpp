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

Tensor Linear::forward_gelu(const Tensor& x, ops::GeluApprox approx) const {
  if (forward_hook() || !has_bias_) return ops::gelu(forward(x), approx);
  const Tensor y = ops::matmul(x, param("weight").transpose(0, 1));
  return ops::bias_gelu(y, param("bias").to(y.dtype()), approx);
}

Conv1D::Conv1D(int64_t in, int64_t out, double init_std, uint64_t seed) {
  register_parameter("weight", normal_init({in, out}, init_std, seed));
  register_parameter("bias", Tensor::zeros({out}));
}

Tensor Conv1D::forward(const Tensor& x) const {
  Tensor y = ops::add(ops::matmul(x, param("weight")), param("bias"));
  return forward_hook() ? forward_hook()(x, y) : y;
}

Tensor Conv1D::forward_gelu(const Tensor& x, ops::GeluApprox approx) const {
  if (forward_hook()) return ops::gelu(forward(x), approx);
  const Tensor y = ops::matmul(x, param("weight"));
  // The bias joins the product's dtype (16-bit under autocast), as in ops::linear.
  return ops::bias_gelu(y, param("bias").to(y.dtype()), approx);
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

ops::AddLayerNormResult LayerNorm::forward_after_add(const Tensor& x, const Tensor& residual) const {
  return ops::add_layer_norm(x, residual, param("weight"), param("bias"), eps_);
}

}  // namespace hone::nn
