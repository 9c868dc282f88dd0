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

Conv1D::Conv1D(int64_t in, int64_t out, double init_std, uint64_t seed) {
  register_parameter("weight", normal_init({in, out}, init_std, seed));
  register_parameter("bias", Tensor::zeros({out}));
}

Tensor Conv1D::forward(const Tensor& x) const {
  Tensor y = ops::add(ops::matmul(x, param("weight")), param("bias"));
  return forward_hook() ? forward_hook()(x, y) : y;
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

}  // namespace hone::nn
