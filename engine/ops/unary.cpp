// Elementwise maps and their derivatives (kernels/cpu/elementwise.cpp holds both).
#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"

namespace hone::ops {

namespace {

using kernels::UnaryOp;

// Which forward tensor the derivative needs: the input, the output, or both.
bool derivative_uses_output(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Tanh ||
         op == UnaryOp::Sigmoid;
}

Tensor unary(UnaryOp op, const Tensor& x_in, double param = 0.0) {
  const char* name = kernels::unary_op_name(op);
  detail::require_floating(x_in, name);
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), name, [&] {
    const auto* px = static_cast<const scalar_t*>(x.data_ptr());
    auto* py = static_cast<scalar_t*>(out.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY(name,
                     kernels::cuda::unary_forward<scalar_t>(op, x.numel(), px, py, param, cuda::stream(x.device())));
    } else {
      kernels::unary_forward<scalar_t>(op, x.numel(), px, py, param);
    }
  });
  if (needs_grad({&x_in})) {
    const bool use_out = derivative_uses_output(op);
    SavedTensor x_saved(x), out_saved(use_out ? out : Tensor());
    const std::string node = std::string(name) + "Backward";
    record(node, out, {x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor xv = x_saved.unpack(node);
      const Tensor yv = use_out ? out_saved.unpack(node) : Tensor();
      const Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
      HONE_DISPATCH_FLOATING(xv.dtype(), name, [&] {
        const auto* px = static_cast<const scalar_t*>(xv.data_ptr());
        const auto* py = yv.defined() ? static_cast<const scalar_t*>(yv.data_ptr()) : nullptr;
        const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
        auto* pgx = static_cast<scalar_t*>(gx.data_ptr());
        if (detail::on_cuda(xv)) {
          HONE_CUDA_ONLY(name, kernels::cuda::unary_backward<scalar_t>(op, xv.numel(), px, py, pg, pgx, param,
                                                                       cuda::stream(xv.device())));
        } else {
          kernels::unary_backward<scalar_t>(op, xv.numel(), px, py, pg, pgx, param);
        }
      });
      return {gx};
    });
  }
  return out;
}

}  // namespace

Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, detail::autocast_fp32_if_on(x)); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, detail::autocast_fp32_if_on(x)); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, detail::autocast_fp32_if_on(x)); }
Tensor pow(const Tensor& x, double exponent) { return unary(UnaryOp::Pow, detail::autocast_fp32_if_on(x), exponent); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return unary(approx == GeluApprox::Tanh ? UnaryOp::GeluTanh : UnaryOp::GeluErf, x);
}
Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }

}  // namespace hone::ops
