// softmax and log_softmax along any dim. The kernels work on the rows of a contiguous
// [rows, cols] array, so a dim that is not last is first moved there (permute + copy) and the
// result moved back.
#include <numeric>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/softmax.h"

namespace hone::ops {

namespace {

// The permutation that moves `dim` to the end, and its inverse.
struct LastDimLayout {
  std::vector<int64_t> perm, inverse;
  bool identity = true;
};

LastDimLayout move_dim_last(int64_t dim, int64_t ndim) {
  LastDimLayout l;
  if (ndim == 0 || dim == ndim - 1) return l;
  l.identity = false;
  for (int64_t d = 0; d < ndim; ++d)
    if (d != dim) l.perm.push_back(d);
  l.perm.push_back(dim);
  l.inverse.resize(ndim);
  for (int64_t i = 0; i < ndim; ++i) l.inverse[l.perm[i]] = i;
  return l;
}

Tensor to_rows(const Tensor& t, const LastDimLayout& l) {
  return l.identity ? t.detach().contiguous() : t.detach().permute(l.perm).contiguous();
}
Tensor from_rows(const Tensor& t, const LastDimLayout& l) {
  return l.identity ? t : t.permute(l.inverse).contiguous();
}

Tensor softmax_impl(const Tensor& x, int64_t dim_in, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  detail::require_floating(x, name);
  const int64_t dim = wrap_dim(dim_in, x.dim(), name);
  const LastDimLayout layout = move_dim_last(dim, x.dim());
  const Tensor xr = to_rows(x, layout);
  const int64_t cols = x.dim() == 0 ? 1 : x.shape()[dim];
  const int64_t rows = cols == 0 ? 0 : xr.numel() / cols;
  Tensor yr = Tensor::empty(xr.shape(), xr.dtype(), xr.device());
  HONE_DISPATCH_FLOATING(x.dtype(), name, [&] {
    const auto* px = static_cast<const scalar_t*>(xr.data_ptr());
    auto* py = static_cast<scalar_t*>(yr.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY(name, kernels::cuda::softmax_forward<scalar_t>(rows, cols, px, py, log, cuda::stream(x.device())));
    } else {
      kernels::softmax_forward<scalar_t>(rows, cols, px, py, log);
    }
  });
  Tensor out = from_rows(yr, layout);
  if (needs_grad({&x})) {
    // The rows layout of the output is what the backward kernel wants: save that one. (When
    // dim is last it is `out` itself, so in-place writes to `out` are still caught.)
    SavedTensor y_saved(yr);
    const std::string node = log ? "LogSoftmaxBackward" : "SoftmaxBackward";
    record(node, out, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor y = y_saved.unpack(node);
      const Tensor gr = to_rows(g, layout);
      Tensor gx = Tensor::empty(y.shape(), y.dtype(), y.device());
      HONE_DISPATCH_FLOATING(y.dtype(), node, [&] {
        const auto* py = static_cast<const scalar_t*>(y.data_ptr());
        const auto* pg = static_cast<const scalar_t*>(gr.data_ptr());
        auto* pgx = static_cast<scalar_t*>(gx.data_ptr());
        if (detail::on_cuda(y)) {
          HONE_CUDA_ONLY(
              name, kernels::cuda::softmax_backward<scalar_t>(rows, cols, py, pg, pgx, log, cuda::stream(y.device())));
        } else {
          kernels::softmax_backward<scalar_t>(rows, cols, py, pg, pgx, log);
        }
      });
      return {from_rows(gx, layout)};
    });
  }
  return out;
}

}  // namespace

// Under autocast both run in float32 (exponentials of 16-bit logits lose too much).
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(detail::autocast_fp32_if_on(x), dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(detail::autocast_fp32_if_on(x), dim, true); }

}  // namespace hone::ops
