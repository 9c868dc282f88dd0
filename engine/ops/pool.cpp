// max_pool2d, avg_pool2d and adaptive_avg_pool2d over [N, C, H, W] (or unbatched [C, H, W])
// through kernels/pool.h (CPU) or kernels/cuda_api.h (CUDA). max_pool2d saves the argmax of every
// output for its backward.
#include <string>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/pool.h"

namespace hone::ops {

namespace {

void check_input(const Tensor& x, const char* op) {
  detail::require_floating(x, op);
  if (x.dim() != 4 && x.dim() != 3)
    throw std::invalid_argument(std::string(op) + ": x must be [N, C, H, W] or [C, H, W], got " + x.str());
  if (x.size(-1) < 1 || x.size(-2) < 1)
    throw std::invalid_argument(std::string(op) + ": x has an empty spatial size: " + x.str());
}

int64_t planes_of(const Tensor& x) { return x.numel() / (x.size(-1) * x.size(-2)); }

Shape out_shape(const Tensor& x, int64_t oh, int64_t ow) {
  Shape s = x.shape();
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return s;
}

kernels::Pool2dGeometry pool_geometry(const Tensor& x, const Pool2dArgs& a, const char* op) {
  check_input(x, op);
  // Appended piece by piece: GCC 12 misreads "literal" + std::string&& (a false -Wrestrict, its bug 105329).
  auto pair = [](int64_t h, int64_t w) {
    std::string s = "(";
    s += std::to_string(h);
    s += ", ";
    s += std::to_string(w);
    return s += ")";
  };
  const std::string desc = "kernel=" + pair(a.kernel_h, a.kernel_w) + ", stride=" + pair(a.stride_h, a.stride_w) +
                           ", padding=" + pair(a.pad_h, a.pad_w);
  if (a.kernel_h < 1 || a.kernel_w < 1 || a.stride_h < 1 || a.stride_w < 1 || a.pad_h < 0 || a.pad_w < 0)
    throw std::invalid_argument(std::string(op) + ": invalid arguments (" + desc +
                                "): kernel and stride must be >= 1, padding >= 0");
  if (2 * a.pad_h > a.kernel_h || 2 * a.pad_w > a.kernel_w)
    throw std::invalid_argument(std::string(op) + ": padding must be at most half the kernel size (" + desc + ")");
  kernels::Pool2dGeometry g;
  g.planes = planes_of(x);
  g.in_h = x.size(-2);
  g.in_w = x.size(-1);
  g.kernel_h = a.kernel_h;
  g.kernel_w = a.kernel_w;
  g.stride_h = a.stride_h;
  g.stride_w = a.stride_w;
  g.pad_h = a.pad_h;
  g.pad_w = a.pad_w;
  const int64_t eh = g.in_h + 2 * g.pad_h - g.kernel_h, ew = g.in_w + 2 * g.pad_w - g.kernel_w;
  if (eh < 0 || ew < 0)
    throw std::invalid_argument(std::string(op) + ": the (padded) input " + x.str() + " is smaller than the kernel (" +
                                desc + ")");
  g.out_h = eh / g.stride_h + 1;
  g.out_w = ew / g.stride_w + 1;
  return g;
}

template <class T> const T* cptr(const Tensor& t) { return static_cast<const T*>(t.data_ptr()); }
template <class T> T* mptr(const Tensor& t) { return static_cast<T*>(t.data_ptr()); }

// Shared by the two average pools: forward kernel, backward kernel.
template <class Fwd, class Bwd>
Tensor avg_like(const Tensor& x_in, const kernels::Pool2dGeometry& g, const char* node, Fwd fwd, Bwd bwd) {
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(out_shape(x, g.out_h, g.out_w), x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), node, [&] { fwd(scalar_t{}, x, out); });
  if (needs_grad({&x_in})) {
    const Shape in_shape = x.shape();
    const DType dt = x.dtype();
    record(node, out, {x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor gy = g_in.contiguous();
      Tensor gx = Tensor::empty(in_shape, dt, gy.device());
      HONE_DISPATCH_FLOATING(dt, node, [&] { bwd(scalar_t{}, gy, gx); });
      return {gx};
    });
  }
  return out;
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, const Pool2dArgs& args) {
  const kernels::Pool2dGeometry g = pool_geometry(x_in, args, "max_pool2d");
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(out_shape(x, g.out_h, g.out_w), x.dtype(), x.device());
  const Tensor argmax = Tensor::empty(out.shape(), DType::I64, x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), "max_pool2d", [&] {
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY("max_pool2d",
                     kernels::cuda::max_pool2d_forward<scalar_t>(g, cptr<scalar_t>(x), mptr<scalar_t>(out),
                                                                 mptr<int64_t>(argmax), cuda::stream(x.device())));
    } else {
      kernels::max_pool2d_forward<scalar_t>(g, cptr<scalar_t>(x), mptr<scalar_t>(out), mptr<int64_t>(argmax));
    }
  });
  if (needs_grad({&x_in})) {
    SavedTensor arg_saved(argmax);
    const Shape in_shape = x.shape();
    const DType dt = x.dtype();
    record("MaxPool2dBackward", out, {x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor am = arg_saved.unpack("MaxPool2dBackward");
      const Tensor gy = g_in.contiguous();
      Tensor gx = Tensor::empty(in_shape, dt, gy.device());
      HONE_DISPATCH_FLOATING(dt, "max_pool2d backward", [&] {
        if (detail::on_cuda(gy)) {
          HONE_CUDA_ONLY("max_pool2d backward",
                         kernels::cuda::max_pool2d_backward<scalar_t>(g, cptr<scalar_t>(gy), cptr<int64_t>(am),
                                                                      mptr<scalar_t>(gx), cuda::stream(gy.device())));
        } else {
          kernels::max_pool2d_backward<scalar_t>(g, cptr<scalar_t>(gy), cptr<int64_t>(am), mptr<scalar_t>(gx));
        }
      });
      return {gx};
    });
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dArgs& args) {
  const kernels::Pool2dGeometry g = pool_geometry(x_in, args, "avg_pool2d");
  return avg_like(
      x_in, g, "AvgPool2dBackward",
      [&](auto tag, const Tensor& x, Tensor& y) {
        using T = decltype(tag);
        if (detail::on_cuda(x)) {
          HONE_CUDA_ONLY("avg_pool2d",
                         kernels::cuda::avg_pool2d_forward<T>(g, cptr<T>(x), mptr<T>(y), cuda::stream(x.device())));
        } else {
          kernels::avg_pool2d_forward<T>(g, cptr<T>(x), mptr<T>(y));
        }
      },
      [g](auto tag, const Tensor& gy, Tensor& gx) {
        using T = decltype(tag);
        if (detail::on_cuda(gy)) {
          HONE_CUDA_ONLY("avg_pool2d backward",
                         kernels::cuda::avg_pool2d_backward<T>(g, cptr<T>(gy), mptr<T>(gx), cuda::stream(gy.device())));
        } else {
          kernels::avg_pool2d_backward<T>(g, cptr<T>(gy), mptr<T>(gx));
        }
      });
}

Tensor adaptive_avg_pool2d(const Tensor& x_in, int64_t out_h, int64_t out_w) {
  check_input(x_in, "adaptive_avg_pool2d");
  if (out_h < 1 || out_w < 1)
    throw std::invalid_argument("adaptive_avg_pool2d: output size must be >= 1, got (" + std::to_string(out_h) +
                                ", " + std::to_string(out_w) + ") for " + x_in.str());
  kernels::Pool2dGeometry g;
  g.planes = planes_of(x_in);
  g.in_h = x_in.size(-2);
  g.in_w = x_in.size(-1);
  g.out_h = out_h;
  g.out_w = out_w;
  return avg_like(
      x_in, g, "AdaptiveAvgPool2dBackward",
      [&](auto tag, const Tensor& x, Tensor& y) {
        using T = decltype(tag);
        if (detail::on_cuda(x)) {
          HONE_CUDA_ONLY("adaptive_avg_pool2d", kernels::cuda::adaptive_avg_pool2d_forward<T>(
                                                    g, cptr<T>(x), mptr<T>(y), cuda::stream(x.device())));
        } else {
          kernels::adaptive_avg_pool2d_forward<T>(g, cptr<T>(x), mptr<T>(y));
        }
      },
      [g](auto tag, const Tensor& gy, Tensor& gx) {
        using T = decltype(tag);
        if (detail::on_cuda(gy)) {
          HONE_CUDA_ONLY("adaptive_avg_pool2d backward", kernels::cuda::adaptive_avg_pool2d_backward<T>(
                                                             g, cptr<T>(gy), mptr<T>(gx), cuda::stream(gy.device())));
        } else {
          kernels::adaptive_avg_pool2d_backward<T>(g, cptr<T>(gy), mptr<T>(gx));
        }
      });
}

}  // namespace hone::ops
