// Fused ops (issue #4): bias + gelu, and residual add + layer norm, each one kernel pass forward
// (kernels/fused.h).
//
// bias_gelu is one autograd node over {x, bias}: its backward recomputes x + bias and writes the
// gradients of both in one pass.
// add_layer_norm has two outputs and the autograd's nodes have one, so it records one node per
// output, chained as the composition would be: sum = x + residual (backward: the gradient passes
// through to both) and normed = layer_norm(sum) (backward: the layer-norm backward on the saved
// sum, kernels::layernorm_backward). Gradients reaching both outputs meet at `sum`, where the
// engine adds them. So only the forward is fused here; the backward costs what the composed
// add + layer_norm costs.
#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/fused.h"
#include "kernels/layernorm.h"

namespace hone::ops {

namespace {

// The per-row statistics of the layer norm: the kernels' accumulation type.
DType stats_dtype(DType x) { return x == DType::F64 ? DType::F64 : DType::F32; }

// Kernel pointers for optional tensors: null means absent (weight, bias) or not wanted (gradients).
template <class T> const T* in_ptr(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}
template <class T> T* out_ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr; }

// `t` (if defined) is a [C] vector of x's dtype and device.
void check_vector_arg(const Tensor& x, const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) return;
  const int64_t C = x.shape().back();
  if (t.shape() != Shape{C})
    throw std::invalid_argument(std::string(op) + ": " + what + " " + t.str() + " must have shape [" +
                                std::to_string(C) + "] (the last dim of " + x.str() + ")");
  detail::require_same_dtype(x, t, op);
  detail::require_same_device(x, t, op);
}

void check_rows_arg(const Tensor& x, const char* op) {
  detail::require_floating(x, op);
  if (x.dim() < 1) throw std::invalid_argument(std::string(op) + ": expected at least one dim, got " + x.str());
}

// x viewed as [rows, C].
int64_t rows_of(const Tensor& x) {
  const int64_t C = x.shape().back();
  return C == 0 ? 0 : x.numel() / C;
}

kernels::UnaryOp gelu_op(GeluApprox approx) {
  return approx == GeluApprox::Tanh ? kernels::UnaryOp::GeluTanh : kernels::UnaryOp::GeluErf;
}

// s's gradient rounded to the 16-bit dtype of the branch added into the stream (s = stream + x),
// written by the LayerNorm backward beside the float32 one when it completed that gradient, for
// the sum's backward to hand x instead of casting. Valid only for the very tensor it was made from
// (`of`), at the storage version it had then (take_pending_grad bumps it before any later add).
struct LowpGradTwin {
  std::weak_ptr<TensorImpl> of;
  uint64_t version = 0;
  Tensor value;
};

// The backward of normed = layer_norm(s) with the saved statistics: gradients of s, weight, bias.
// `twin` (may be null): where to leave the 16-bit copy of s's gradient (see LowpGradTwin).
std::vector<Tensor> layer_norm_grads(const Tensor& s, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& g_in, bool want_s, bool want_w, bool want_b,
                                     LowpGradTwin* twin = nullptr) {
  const char* node = "AddLayerNormBackward";
  const int64_t C = s.shape().back(), rows = rows_of(s);
  // A 16-bit gradient of a float32 sum (autocast's normed output fed a matmul) is read as is;
  // any other dtype mismatch is cast.
  const bool lowp_g = s.dtype() == DType::F32 && detail::is_16bit(g_in.dtype());
  const Tensor g = (lowp_g ? g_in : g_in.to(s.dtype())).contiguous();
  Tensor gs, gw, gb;
  // The sum's other consumer (the next residual add) usually sent its gradient first: the kernel
  // adds into that one as it writes, instead of writing its own for the autograd to add after.
  const Tensor pending = want_s ? take_pending_grad(0) : Tensor();
  const bool accumulate = pending.defined() && pending.dtype() == s.dtype() && pending.shape() == s.shape() &&
                          pending.device() == s.device();
  if (want_s) gs = accumulate ? pending : Tensor::empty(s.shape(), s.dtype(), s.device());
  // (A waiting gradient in another dtype is not expected: it is added after, as the autograd would.)
  auto result = [&] {
    return std::vector<Tensor>{pending.defined() && !accumulate ? ops::add(pending, gs) : gs, gw, gb};
  };
  if (want_w) gw = Tensor::empty({C}, s.dtype(), s.device());
  if (want_b) gb = Tensor::empty({C}, s.dtype(), s.device());
  if (lowp_g) {
    // With the waiting gradient taken, s's gradient is complete here: its 16-bit copy comes free.
    const Tensor lowp = twin && accumulate ? Tensor::empty(s.shape(), g.dtype(), s.device()) : Tensor();
    auto run = [&]<class H>() {
      const auto* pg = static_cast<const H*>(g.data_ptr());
      H* pl = lowp.defined() ? static_cast<H*>(lowp.data_ptr()) : nullptr;
      if (detail::on_cuda(s)) {
        HONE_CUDA_ONLY(node, kernels::cuda::layernorm_backward_lowp_gy<float, H>(
                                 rows, C, s.data<float>(), in_ptr<float>(w), mean.data<float>(), rstd.data<float>(), pg,
                                 out_ptr<float>(gs), out_ptr<float>(gw), out_ptr<float>(gb), cuda::stream(s.device()),
                                 accumulate, pl));
      } else {
        kernels::layernorm_backward_lowp_gy<float, H>(rows, C, s.data<float>(), in_ptr<float>(w), mean.data<float>(),
                                                      rstd.data<float>(), pg, out_ptr<float>(gs), out_ptr<float>(gw),
                                                      out_ptr<float>(gb), accumulate, pl);
      }
    };
    detail::dispatch_16bit(g.dtype(), run);
    if (lowp.defined()) *twin = {gs.impl_ptr(), gs.storage()->version(), lowp};
    return result();
  }
  HONE_DISPATCH_FLOATING(s.dtype(), node, [&] {
    using S = acc_t<scalar_t>;
    const auto* ps = static_cast<const scalar_t*>(s.data_ptr());
    const auto* pm = static_cast<const S*>(mean.data_ptr());
    const auto* pr = static_cast<const S*>(rstd.data_ptr());
    const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
    if (detail::on_cuda(s)) {
      HONE_CUDA_ONLY(node, kernels::cuda::layernorm_backward<scalar_t>(
                               rows, C, ps, in_ptr<scalar_t>(w), pm, pr, pg, out_ptr<scalar_t>(gs),
                               out_ptr<scalar_t>(gw), out_ptr<scalar_t>(gb), cuda::stream(s.device()), accumulate));
    } else {
      kernels::layernorm_backward<scalar_t>(rows, C, ps, in_ptr<scalar_t>(w), pm, pr, pg, out_ptr<scalar_t>(gs),
                                            out_ptr<scalar_t>(gw), out_ptr<scalar_t>(gb), accumulate);
    }
  });
  return result();
}

}  // namespace

Tensor bias_gelu(const Tensor& x_in, const Tensor& bias_in, GeluApprox approx) {
  const char* name = "bias_gelu";
  // As add does: two floating dtypes promote to the wider (a bf16 matmul output + a float32 bias).
  if (bias_in.defined() && detail::needs_promotion(x_in, bias_in)) {
    const DType t = detail::promote_floating(x_in.dtype(), bias_in.dtype());
    return bias_gelu(x_in.to(t), bias_in.to(t), approx);
  }
  check_rows_arg(x_in, name);
  if (!bias_in.defined()) throw std::invalid_argument("bias_gelu: the bias is undefined");
  check_vector_arg(x_in, bias_in, name, "bias");
  const kernels::UnaryOp op = gelu_op(approx);
  const int64_t C = x_in.shape().back(), rows = rows_of(x_in);
  const Tensor x = x_in.detach().contiguous();
  const Tensor b = bias_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), name, [&] {
    const auto* px = static_cast<const scalar_t*>(x.data_ptr());
    const auto* pb = static_cast<const scalar_t*>(b.data_ptr());
    auto* py = static_cast<scalar_t*>(out.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY(name,
                     kernels::cuda::bias_gelu_forward<scalar_t>(op, rows, C, px, pb, py, cuda::stream(x.device())));
    } else {
      kernels::bias_gelu_forward<scalar_t>(op, rows, C, px, pb, py);
    }
  });
  if (needs_grad({&x_in, &bias_in})) {
    SavedTensor x_saved(x), b_saved(b);
    const bool want_x = x_in.requires_grad(), want_b = bias_in.requires_grad();
    record("BiasGeluBackward", out, {x_in, bias_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const char* node = "BiasGeluBackward";
      const Tensor xv = x_saved.unpack(node), bv = b_saved.unpack(node);
      const Tensor g = g_in.contiguous();
      Tensor gx, gb;
      if (want_x) gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
      if (want_b) gb = Tensor::empty(bv.shape(), bv.dtype(), bv.device());
      HONE_DISPATCH_FLOATING(xv.dtype(), node, [&] {
        const auto* px = static_cast<const scalar_t*>(xv.data_ptr());
        const auto* pb = static_cast<const scalar_t*>(bv.data_ptr());
        const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
        if (detail::on_cuda(xv)) {
          HONE_CUDA_ONLY(node,
                         kernels::cuda::bias_gelu_backward<scalar_t>(op, rows, C, px, pb, pg, out_ptr<scalar_t>(gx),
                                                                     out_ptr<scalar_t>(gb), cuda::stream(xv.device())));
        } else {
          kernels::bias_gelu_backward<scalar_t>(op, rows, C, px, pb, pg, out_ptr<scalar_t>(gx), out_ptr<scalar_t>(gb));
        }
      });
      return {gx, gb};
    });
  }
  return out;
}

namespace {

// Records add_layer_norm's two backward nodes: sum's (its gradient to x and residual, each in its
// own dtype) and normed's (the layer norm backward on sum; layer_norm_grads reads normed's gradient).
void record_add_layer_norm(AddLayerNormResult& res, const Tensor& x_in, const Tensor& residual_in, const Tensor& w,
                           const Tensor& weight_in, const Tensor& bias_in, const Tensor& mean, const Tensor& rstd) {
  // A 16-bit branch x of a float32 stream: the LayerNorm backward may leave x's gradient ready.
  const bool lowp_branch = x_in.requires_grad() && detail::is_16bit(x_in.dtype()) && residual_in.dtype() == DType::F32;
  const auto twin = lowp_branch ? std::make_shared<LowpGradTwin>() : nullptr;
  if (needs_grad({&x_in, &residual_in})) {
    const bool want_x = x_in.requires_grad(), want_r = residual_in.requires_grad();
    const DType x_dtype = x_in.dtype(), r_dtype = residual_in.dtype();
    const Shape x_shape = x_in.shape();
    record("AddLayerNormSumBackward", res.sum, {x_in, residual_in}, [=](const Tensor& g) -> std::vector<Tensor> {
      Tensor gx;
      if (want_x) {
        const bool twin_ok = twin && twin->value.defined() && twin->value.dtype() == x_dtype &&
                             twin->value.shape() == x_shape && twin->of.lock() == g.impl_ptr() &&
                             g.storage()->version() == twin->version;
        gx = twin_ok ? twin->value : g.to(x_dtype);
        if (twin) twin->value = Tensor();  // used once; the memory goes back
      }
      return {gx, want_r ? g.to(r_dtype) : Tensor()};
    });
  }
  if (needs_grad({&res.sum, &weight_in, &bias_in})) {
    SavedTensor s_saved(res.sum.detach()), w_saved(w), mean_saved(mean), rstd_saved(rstd);
    const bool want_s = res.sum.requires_grad();
    const bool want_w = weight_in.defined() && weight_in.requires_grad();
    const bool want_b = bias_in.defined() && bias_in.requires_grad();
    record("AddLayerNormBackward", res.normed, {res.sum, weight_in, bias_in},
           [=](const Tensor& g) -> std::vector<Tensor> {
             const char* node = "AddLayerNormBackward";
             return layer_norm_grads(s_saved.unpack(node), w_saved.unpack(node), mean_saved.unpack(node),
                                     rstd_saved.unpack(node), g, want_s, want_w, want_b, twin.get());
           });
  }
}

// add_layer_norm under autocast for a matmul's input: `lowp` (16-bit, the autocast dtype) is read as
// is, added to the float32 `stream`, and normed written in lowp's dtype; the same values as casting
// lowp up and normed down, two passes fewer. Undefined results when the operands are not that case.
AddLayerNormResult add_layer_norm_lowp(const Tensor& lowp_in, const Tensor& stream_in, const Tensor& weight_in,
                                       const Tensor& bias_in, double eps) {
  const char* name = "add_layer_norm";
  const DType h = lowp_in.dtype();
  auto f32 = [](const Tensor& t) { return !t.defined() || t.dtype() == DType::F32; };
  if (!detail::is_16bit(h) || h != autocast_dtype() || stream_in.dtype() != DType::F32 || !f32(weight_in) ||
      !f32(bias_in) || lowp_in.shape() != stream_in.shape() || lowp_in.device() != stream_in.device())
    return {};
  check_rows_arg(stream_in, name);
  check_vector_arg(stream_in, weight_in, name, "weight");
  check_vector_arg(stream_in, bias_in, name, "bias");
  const int64_t C = lowp_in.shape().back(), rows = rows_of(lowp_in);
  const Tensor x = lowp_in.detach().contiguous(), r = stream_in.detach().contiguous();
  const Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  const Tensor b = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  AddLayerNormResult res{Tensor::empty(r.shape(), DType::F32, r.device()), Tensor::empty(x.shape(), h, x.device())};
  const Tensor mean = Tensor::empty({rows}, DType::F32, x.device()),
               rstd = Tensor::empty({rows}, DType::F32, x.device());
  auto run = [&]<class H>() {
    const auto* px = static_cast<const H*>(x.data_ptr());
    auto* py = static_cast<H*>(res.normed.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY(
          name, kernels::cuda::add_layernorm_forward_lowp<float, H>(
                    rows, C, px, r.data<float>(), in_ptr<float>(w), in_ptr<float>(b), eps, res.sum.data<float>(), py,
                    mean.data<float>(), rstd.data<float>(), cuda::stream(x.device())));
    } else {
      kernels::add_layernorm_forward_lowp<float, H>(rows, C, px, r.data<float>(), in_ptr<float>(w), in_ptr<float>(b),
                                                    eps, res.sum.data<float>(), py, mean.data<float>(),
                                                    rstd.data<float>());
    }
  };
  detail::dispatch_16bit(h, run);
  record_add_layer_norm(res, lowp_in, stream_in, w, weight_in, bias_in, mean, rstd);
  return res;
}

}  // namespace

AddLayerNormResult add_layer_norm(const Tensor& x_in, const Tensor& residual_in, const Tensor& weight_in,
                                  const Tensor& bias_in, double eps, bool normed_feeds_matmul) {
  const char* name = "add_layer_norm";
  if (normed_feeds_matmul && autocast_enabled() && x_in.defined() && residual_in.defined()) {
    // x + residual = residual + x: the 16-bit one may be either.
    AddLayerNormResult lowp = add_layer_norm_lowp(x_in, residual_in, weight_in, bias_in, eps);
    if (!lowp.sum.defined()) {
      lowp = add_layer_norm_lowp(residual_in, x_in, weight_in, bias_in, eps);
    }
    if (lowp.sum.defined()) return lowp;
  }
  // Under autocast a float32 op, as layer_norm is: 16-bit inputs are computed in float32 (sum too).
  if (detail::autocast_to_fp32({&x_in, &residual_in, &weight_in, &bias_in}))
    return add_layer_norm(detail::autocast_fp32(x_in), detail::autocast_fp32(residual_in),
                          detail::autocast_fp32(weight_in), detail::autocast_fp32(bias_in), eps);
  // As add does: x and residual of two floating dtypes promote to the wider one.
  if (residual_in.defined() && detail::needs_promotion(x_in, residual_in)) {
    const DType t = detail::promote_floating(x_in.dtype(), residual_in.dtype());
    return add_layer_norm(x_in.to(t), residual_in.to(t), weight_in, bias_in, eps);
  }
  check_rows_arg(x_in, name);
  if (!residual_in.defined() || residual_in.shape() != x_in.shape())
    throw std::invalid_argument("add_layer_norm: the residual " +
                                (residual_in.defined() ? residual_in.str() : std::string("(undefined)")) +
                                " must have the shape of x " + x_in.str());
  detail::require_same_dtype(x_in, residual_in, name);
  detail::require_same_device(x_in, residual_in, name);
  check_vector_arg(x_in, weight_in, name, "weight");
  check_vector_arg(x_in, bias_in, name, "bias");
  const int64_t C = x_in.shape().back(), rows = rows_of(x_in);
  const Tensor x = x_in.detach().contiguous();
  const Tensor r = residual_in.detach().contiguous();
  const Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  const Tensor b = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  AddLayerNormResult res{Tensor::empty(x.shape(), x.dtype(), x.device()),
                         Tensor::empty(x.shape(), x.dtype(), x.device())};
  const Tensor mean = Tensor::empty({rows}, stats_dtype(x.dtype()), x.device());
  const Tensor rstd = Tensor::empty({rows}, stats_dtype(x.dtype()), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), name, [&] {
    using S = acc_t<scalar_t>;
    const auto* px = static_cast<const scalar_t*>(x.data_ptr());
    const auto* pr = static_cast<const scalar_t*>(r.data_ptr());
    auto* ps = static_cast<scalar_t*>(res.sum.data_ptr());
    auto* py = static_cast<scalar_t*>(res.normed.data_ptr());
    auto* pm = static_cast<S*>(mean.data_ptr());
    auto* prs = static_cast<S*>(rstd.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY(name, kernels::cuda::add_layernorm_forward<scalar_t>(rows, C, px, pr, in_ptr<scalar_t>(w),
                                                                          in_ptr<scalar_t>(b), eps, ps, py, pm, prs,
                                                                          cuda::stream(x.device())));
    } else {
      kernels::add_layernorm_forward<scalar_t>(rows, C, px, pr, in_ptr<scalar_t>(w), in_ptr<scalar_t>(b), eps, ps,
                                               py, pm, prs);
    }
  });
  record_add_layer_norm(res, x_in, residual_in, w, weight_in, bias_in, mean, rstd);
  return res;
}

}  // namespace hone::ops
