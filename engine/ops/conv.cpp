// conv2d: forward and backward (data, weight, bias) through kernels/conv.h, which lowers the
// convolution to GEMMs, or on CUDA through kernels/cuda_api.h (cuDNN, or direct kernels without
// it). float32 and float64 run natively; 16-bit tensors are computed in float32 and rounded once
// (as matmul does), on both devices.
#include <string>
#include <type_traits>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/conv.h"

namespace hone::ops {

namespace {

// The dtype the kernels run in: the CPU's are float and double, so 16-bit tensors compute in
// float32 there; on CUDA 16-bit tensors stay 16-bit (cuDNN's tensor-core convolutions with float
// accumulation: what autocast's convolutions are for).
DType compute_dtype(DType d, bool cuda) {
  if (d == DType::F64) return DType::F64;
  if (cuda && (d == DType::BF16 || d == DType::F16)) return d;
  return DType::F32;
}

std::string args_str(const Conv2dArgs& a) {
  auto pair = [](int64_t h, int64_t w) { return "(" + std::to_string(h) + ", " + std::to_string(w) + ")"; };
  return "stride=" + pair(a.stride_h, a.stride_w) + ", padding=" + pair(a.pad_h, a.pad_w) +
         ", dilation=" + pair(a.dilation_h, a.dilation_w) + ", groups=" + std::to_string(a.groups);
}

kernels::Conv2dGeometry check_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dArgs& a) {
  const char* op = "conv2d";
  detail::require_floating(x, op);
  detail::require_same_device(x, w, op);
  detail::require_same_dtype(x, w, op);
  if (x.dim() != 4) throw std::invalid_argument("conv2d: x must be [N, C_in, H, W], got " + x.str());
  if (w.dim() != 4)
    throw std::invalid_argument("conv2d: weight must be [C_out, C_in / groups, kH, kW], got " + w.str());
  if (a.stride_h < 1 || a.stride_w < 1 || a.dilation_h < 1 || a.dilation_w < 1 || a.pad_h < 0 ||
      a.pad_w < 0 || a.groups < 1)
    throw std::invalid_argument("conv2d: invalid arguments (" + args_str(a) +
                                "): strides, dilations and groups must be >= 1, paddings >= 0");
  const int64_t Co = w.size(0);
  if (x.size(1) != w.size(1) * a.groups)
    throw std::invalid_argument("conv2d: x " + x.str() + " has " + std::to_string(x.size(1)) +
                                " channels but weight " + w.str() + " with groups=" + std::to_string(a.groups) +
                                " expects " + std::to_string(w.size(1) * a.groups));
  if (Co % a.groups != 0)
    throw std::invalid_argument("conv2d: weight " + w.str() + ": C_out = " + std::to_string(Co) +
                                " is not divisible by groups=" + std::to_string(a.groups));
  if (b.defined()) {
    detail::require_same_device(x, b, op);
    detail::require_same_dtype(x, b, op);
    if (b.dim() != 1 || b.size(0) != Co)
      throw std::invalid_argument("conv2d: bias must be [" + std::to_string(Co) + "] for weight " + w.str() +
                                  ", got " + b.str());
  }
  kernels::Conv2dGeometry g;
  g.batch = x.size(0);
  g.in_channels = x.size(1);
  g.in_h = x.size(2);
  g.in_w = x.size(3);
  g.out_channels = Co;
  g.kernel_h = w.size(2);
  g.kernel_w = w.size(3);
  g.stride_h = a.stride_h;
  g.stride_w = a.stride_w;
  g.pad_h = a.pad_h;
  g.pad_w = a.pad_w;
  g.dilation_h = a.dilation_h;
  g.dilation_w = a.dilation_w;
  g.groups = a.groups;
  const int64_t eh = g.in_h + 2 * g.pad_h - g.dilation_h * (g.kernel_h - 1) - 1;
  const int64_t ew = g.in_w + 2 * g.pad_w - g.dilation_w * (g.kernel_w - 1) - 1;
  if (eh < 0 || ew < 0 || g.kernel_h < 1 || g.kernel_w < 1)
    throw std::invalid_argument("conv2d: the (padded) input " + x.str() + " is smaller than the (dilated) kernel of " +
                                w.str() + " (" + args_str(a) + ")");
  return g;
}

template <class T> const T* cptr(const Tensor& t) { return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr; }
template <class T> T* mptr(const Tensor& t) { return static_cast<T*>(t.data_ptr()); }

#if defined(HONE_WITH_CUDA)
// cuDNN workspaces come from the engine's caching allocator.
kernels::cuda::ConvContext conv_context(const Device& d) { return detail::cudnn_context(d); }
#endif

// Runs f.template operator()<T>() with T = float, double, bf16 or f16 for the compute dtype.
template <class F>
void dispatch_compute(DType cdt, F&& f) {
  if (cdt == DType::F64)
    f.template operator()<double>();
  else if (cdt == DType::BF16)
    f.template operator()<bf16>();
  else if (cdt == DType::F16)
    f.template operator()<f16>();
  else
    f.template operator()<float>();
}

// The CPU kernels exist for float and double only (compute_dtype never asks for more there).
template <class T> constexpr bool cpu_kernel_type = std::is_same_v<T, float> || std::is_same_v<T, double>;

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, const Conv2dArgs& args) {
  if (detail::autocast_to_lower({&x_in, &weight_in, &bias_in}))
    return conv2d(detail::autocast_lower(x_in), detail::autocast_lower(weight_in), detail::autocast_lower(bias_in), args);
  const kernels::Conv2dGeometry g = check_conv2d(x_in, weight_in, bias_in, args);
  const DType dt = x_in.dtype(), cdt = compute_dtype(dt, detail::on_cuda(x_in));
  // The saved operands stay in the input dtype (16-bit ones are converted again in the backward).
  const Tensor x_saved_val = x_in.detach().contiguous();
  const Tensor w_saved_val = weight_in.detach().contiguous();
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor x = x_saved_val.to(cdt).contiguous(), w = w_saved_val.to(cdt).contiguous();
    const Tensor b = bias_in.defined() ? bias_in.detach().to(cdt).contiguous() : Tensor();
    out = Tensor::empty({g.batch, g.out_channels, g.out_h(), g.out_w()}, cdt, x.device());
    dispatch_compute(cdt, [&]<class T>() {
      if (detail::on_cuda(x)) {
        HONE_CUDA_ONLY("conv2d", kernels::cuda::conv2d_forward<T>(conv_context(x.device()), g, cptr<T>(x), cptr<T>(w),
                                                                  cptr<T>(b), mptr<T>(out), cuda::stream(x.device())));
      } else if constexpr (cpu_kernel_type<T>) {
        kernels::conv2d_forward<T>(g, cptr<T>(x), cptr<T>(w), cptr<T>(b), mptr<T>(out));
      }
    });
    if (cdt != dt) out = out.to(dt);
  }
  if (needs_grad({&x_in, &weight_in, &bias_in})) {
    const bool want_x = x_in.requires_grad(), want_w = weight_in.requires_grad();
    const bool want_b = bias_in.defined() && bias_in.requires_grad();
    SavedTensor x_saved(want_w ? x_saved_val : Tensor()), w_saved(want_x ? w_saved_val : Tensor());
    record("Conv2dBackward", out, {x_in, weight_in, bias_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const char* node = "Conv2dBackward";
      const Tensor gy = g_in.to(cdt).contiguous();
      Tensor gx, gw, gb;
      const bool cuda_dev = detail::on_cuda(gy);
#if !defined(HONE_WITH_CUDA)
      if (cuda_dev) detail::no_cuda_build(node);
#endif
      dispatch_compute(cdt, [&]<class T>() {
        if (want_x) {
          const Tensor w = w_saved.unpack(node).to(cdt).contiguous();
          gx = Tensor::empty({g.batch, g.in_channels, g.in_h, g.in_w}, cdt, gy.device());
          if (cuda_dev) {
#if defined(HONE_WITH_CUDA)
            kernels::cuda::conv2d_backward_data<T>(conv_context(gy.device()), g, cptr<T>(gy), cptr<T>(w),
                                                   mptr<T>(gx), cuda::stream(gy.device()));
#endif
          } else if constexpr (cpu_kernel_type<T>) {
            kernels::conv2d_backward_data<T>(g, cptr<T>(gy), cptr<T>(w), mptr<T>(gx));
          }
        }
        if (want_w) {
          const Tensor x = x_saved.unpack(node).to(cdt).contiguous();
          gw = Tensor::empty({g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w}, cdt, gy.device());
          if (cuda_dev) {
#if defined(HONE_WITH_CUDA)
            kernels::cuda::conv2d_backward_weight<T>(conv_context(gy.device()), g, cptr<T>(x), cptr<T>(gy),
                                                     mptr<T>(gw), cuda::stream(gy.device()));
#endif
          } else if constexpr (cpu_kernel_type<T>) {
            kernels::conv2d_backward_weight<T>(g, cptr<T>(x), cptr<T>(gy), mptr<T>(gw));
          }
        }
        if (want_b) {
          gb = Tensor::empty({g.out_channels}, cdt, gy.device());
          if (cuda_dev) {
#if defined(HONE_WITH_CUDA)
            kernels::cuda::conv2d_backward_bias<T>(g, cptr<T>(gy), mptr<T>(gb), cuda::stream(gy.device()));
#endif
          } else if constexpr (cpu_kernel_type<T>) {
            kernels::conv2d_backward_bias<T>(g, cptr<T>(gy), mptr<T>(gb));
          }
        }
      });
      if (cdt != dt) {
        if (gx.defined()) gx = gx.to(dt);
        if (gw.defined()) gw = gw.to(dt);
        if (gb.defined()) gb = gb.to(dt);
      }
      return {gx, gw, gb};
    });
  }
  return out;
}

std::vector<std::string> cuda_conv_algorithms() {
#if defined(HONE_WITH_CUDA)
  return kernels::cuda::cudnn_conv_choices();
#else
  return {};
#endif
}

}  // namespace hone::ops
