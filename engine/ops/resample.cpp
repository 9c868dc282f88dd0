// Resizing ops for convolutional networks: upsample_nearest2d and upsample_bilinear2d through
// kernels/resample.h (CPU) or kernels/cuda_api.h (CUDA), and the option-A ResNet shortcut pieces
// subsample2d and pad_channels, written with index_select and concat (so they run wherever those
// do, with their backward).
#include <string>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/resample.h"

namespace hone::ops {

namespace {

void check_nchw(const Tensor& x, const char* op) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": x is undefined");
  if (x.dim() != 4) throw std::invalid_argument(std::string(op) + ": x must be [N, C, H, W], got " + x.str());
}

template <class Fwd, class Bwd>
Tensor resample(const Tensor& x_in, int64_t out_h, int64_t out_w, const char* op, const char* node, Fwd fwd, Bwd bwd) {
  detail::require_floating(x_in, op);
  check_nchw(x_in, op);
  if (out_h < 1 || out_w < 1 || x_in.size(2) < 1 || x_in.size(3) < 1)
    throw std::invalid_argument(std::string(op) + ": sizes must be >= 1: x " + x_in.str() + " to (" +
                                std::to_string(out_h) + ", " + std::to_string(out_w) + ")");
  kernels::Resample2dGeometry g;
  g.planes = x_in.size(0) * x_in.size(1);
  g.in_h = x_in.size(2);
  g.in_w = x_in.size(3);
  g.out_h = out_h;
  g.out_w = out_w;
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), op, [&] {
    fwd(g, static_cast<const scalar_t*>(x.data_ptr()), static_cast<scalar_t*>(out.data_ptr()), x.device());
  });
  if (needs_grad({&x_in})) {
    const Shape in_shape = x.shape();
    const DType dt = x.dtype();
    record(node, out, {x_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor gy = g_in.contiguous();
      Tensor gx = Tensor::empty(in_shape, dt, gy.device());
      HONE_DISPATCH_FLOATING(dt, node, [&] {
        bwd(g, static_cast<const scalar_t*>(gy.data_ptr()), static_cast<scalar_t*>(gx.data_ptr()), gy.device());
      });
      return {gx};
    });
  }
  return out;
}

}  // namespace

Tensor upsample_nearest2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  return resample(
      x, out_h, out_w, "upsample_nearest2d", "UpsampleNearest2dBackward",
      [](const kernels::Resample2dGeometry& g, const auto* in, auto* out, const Device& d) {
        if (d.is_cuda()) {
          HONE_CUDA_ONLY("upsample_nearest2d", kernels::cuda::upsample_nearest2d_forward(g, in, out, cuda::stream(d)));
        } else {
          kernels::upsample_nearest2d_forward(g, in, out);
        }
      },
      [](const kernels::Resample2dGeometry& g, const auto* gy, auto* gx, const Device& d) {
        if (d.is_cuda()) {
          HONE_CUDA_ONLY("upsample_nearest2d backward",
                         kernels::cuda::upsample_nearest2d_backward(g, gy, gx, cuda::stream(d)));
        } else {
          kernels::upsample_nearest2d_backward(g, gy, gx);
        }
      });
}

Tensor upsample_bilinear2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  return resample(
      x, out_h, out_w, "upsample_bilinear2d", "UpsampleBilinear2dBackward",
      [](const kernels::Resample2dGeometry& g, const auto* in, auto* out, const Device& d) {
        if (d.is_cuda()) {
          HONE_CUDA_ONLY("upsample_bilinear2d",
                         kernels::cuda::upsample_bilinear2d_forward(g, in, out, cuda::stream(d)));
        } else {
          kernels::upsample_bilinear2d_forward(g, in, out);
        }
      },
      [](const kernels::Resample2dGeometry& g, const auto* gy, auto* gx, const Device& d) {
        if (d.is_cuda()) {
          HONE_CUDA_ONLY("upsample_bilinear2d backward",
                         kernels::cuda::upsample_bilinear2d_backward(g, gy, gx, cuda::stream(d)));
        } else {
          kernels::upsample_bilinear2d_backward(g, gy, gx);
        }
      });
}

Tensor subsample2d(const Tensor& x, int64_t stride) {
  check_nchw(x, "subsample2d");
  if (stride < 1)
    throw std::invalid_argument("subsample2d: stride must be >= 1, got " + std::to_string(stride) + " for " + x.str());
  auto every = [&](int64_t n) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < n; i += stride) idx.push_back(i);
    return Tensor::from_vector(idx, {int64_t(idx.size())}).to(x.device());
  };
  return index_select(index_select(x, 2, every(x.size(2))), 3, every(x.size(3)));
}

Tensor pad_channels(const Tensor& x, int64_t before, int64_t after) {
  check_nchw(x, "pad_channels");
  if (before < 0 || after < 0)
    throw std::invalid_argument("pad_channels: before and after must be >= 0, got (" + std::to_string(before) + ", " +
                                std::to_string(after) + ") for " + x.str());
  std::vector<Tensor> parts;
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  if (before > 0) parts.push_back(Tensor::zeros({N, before, H, W}, x.dtype(), x.device()));
  parts.push_back(x);
  if (after > 0) parts.push_back(Tensor::zeros({N, after, H, W}, x.dtype(), x.device()));
  return concat(parts, 1);
}

}  // namespace hone::ops
