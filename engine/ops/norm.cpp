// layer_norm: x viewed as [rows, C] with C the product of the normalised trailing dims. The
// forward saves the per-row mean and 1/std (float32, or float64 for float64 inputs) so that the
// backward does not recompute them.
#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/layernorm.h"

namespace hone::ops {

namespace {

// The dtype of the saved statistics: the kernels' accumulation type.
DType stats_dtype(DType x) { return x == DType::F64 ? DType::F64 : DType::F32; }

void check_layer_norm_args(const Tensor& x, const Shape& ns, const Tensor& weight,
                           const Tensor& bias) {
  detail::require_floating(x, "layer_norm");
  const int64_t k = static_cast<int64_t>(ns.size());
  bool match = k >= 1 && k <= x.dim();
  for (int64_t i = 0; match && i < k; ++i) match = x.shape()[x.dim() - k + i] == ns[i];
  if (!match)
    throw std::invalid_argument("layer_norm: normalized_shape " + shape_str(ns) +
                                " does not match the last dims of " + x.str());
  for (auto [t, what] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!t->defined()) continue;
    if (t->shape() != ns)
      throw std::invalid_argument(std::string("layer_norm: ") + what + " " + t->str() +
                                  " must have the normalized_shape " + shape_str(ns));
    detail::require_same_dtype(x, *t, "layer_norm");
    detail::require_same_device(x, *t, "layer_norm");
  }
}

// Kernel pointers for optional tensors: null means absent (weight, bias) or not wanted (gradients).
template <class T> const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}
template <class T> T* mut_ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight_in,
                  const Tensor& bias_in, double eps) {
  if (detail::autocast_to_fp32({&x_in, &weight_in, &bias_in}))
    return layer_norm(detail::autocast_fp32(x_in), normalized_shape, detail::autocast_fp32(weight_in),
                      detail::autocast_fp32(bias_in), eps);
  check_layer_norm_args(x_in, normalized_shape, weight_in, bias_in);
  const int64_t cols = shape_numel(normalized_shape);
  const Shape lead(x_in.shape().begin(), x_in.shape().end() - normalized_shape.size());
  const int64_t rows = shape_numel(lead);
  const Tensor x = x_in.detach().contiguous();
  const Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  const Tensor b = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  const Tensor mean = Tensor::empty({rows}, stats_dtype(x.dtype()), x.device());
  const Tensor rstd = Tensor::empty({rows}, stats_dtype(x.dtype()), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), "layer_norm", [&] {
    using S = acc_t<scalar_t>;
    const auto* px = static_cast<const scalar_t*>(x.data_ptr());
    auto* py = static_cast<scalar_t*>(out.data_ptr());
    auto* pm = static_cast<S*>(mean.data_ptr());
    auto* pr = static_cast<S*>(rstd.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY("layer_norm", kernels::cuda::layernorm_forward<scalar_t>(rows, cols, px, ptr_or_null<scalar_t>(w),
                                                                              ptr_or_null<scalar_t>(b), eps, py, pm, pr,
                                                                              cuda::stream(x.device())));
    } else {
      kernels::layernorm_forward<scalar_t>(rows, cols, px, ptr_or_null<scalar_t>(w), ptr_or_null<scalar_t>(b), eps,
                                           py, pm, pr);
    }
  });
  if (needs_grad({&x_in, &weight_in, &bias_in})) {
    SavedTensor x_saved(x), w_saved(w), mean_saved(mean), rstd_saved(rstd);
    const bool want_x = x_in.requires_grad();
    const bool want_w = weight_in.defined() && weight_in.requires_grad();
    const bool want_b = bias_in.defined() && bias_in.requires_grad();
    record("LayerNormBackward", out, {x_in, weight_in, bias_in},
           [=](const Tensor& g_in) -> std::vector<Tensor> {
             const char* node = "LayerNormBackward";
             const Tensor xv = x_saved.unpack(node), wv = w_saved.unpack(node);
             const Tensor mv = mean_saved.unpack(node), rv = rstd_saved.unpack(node);
             const Tensor g = g_in.contiguous();
             Tensor gx, gw, gb;
             if (want_x) gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
             if (want_w) gw = Tensor::empty(normalized_shape, xv.dtype(), xv.device());
             if (want_b) gb = Tensor::empty(normalized_shape, xv.dtype(), xv.device());
             HONE_DISPATCH_FLOATING(xv.dtype(), node, [&] {
               using S = acc_t<scalar_t>;
               const auto* px = static_cast<const scalar_t*>(xv.data_ptr());
               const auto* pm = static_cast<const S*>(mv.data_ptr());
               const auto* pr = static_cast<const S*>(rv.data_ptr());
               const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
               if (detail::on_cuda(xv)) {
                 HONE_CUDA_ONLY(node, kernels::cuda::layernorm_backward<scalar_t>(
                                          rows, cols, px, ptr_or_null<scalar_t>(wv), pm, pr, pg,
                                          mut_ptr_or_null<scalar_t>(gx), mut_ptr_or_null<scalar_t>(gw),
                                          mut_ptr_or_null<scalar_t>(gb), cuda::stream(xv.device())));
               } else {
                 kernels::layernorm_backward<scalar_t>(rows, cols, px, ptr_or_null<scalar_t>(wv), pm, pr, pg,
                                                       mut_ptr_or_null<scalar_t>(gx), mut_ptr_or_null<scalar_t>(gw),
                                                       mut_ptr_or_null<scalar_t>(gb));
               }
             });
             return {gx, gw, gb};
           });
  }
  return out;
}

}  // namespace hone::ops
