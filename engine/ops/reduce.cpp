// sum, mean, max, var, argmax over any set of axes.
#include <algorithm>
#include <numeric>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/reduce.h"

namespace hone::ops {

namespace detail {
std::vector<int64_t> reduction_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    out.resize(ndim);
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}
}  // namespace detail

namespace {

Shape reduced_shape(const Shape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!reduced)
      out.push_back(shape[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Brings x to a contiguous [outer, r, inner] layout with the reduced dims in the middle.
struct MiddleLayout {
  Tensor data;
  int64_t outer = 1, r = 1, inner = 1;
};

MiddleLayout to_middle_layout(const Tensor& x, const std::vector<int64_t>& dims) {
  MiddleLayout m;
  const bool consecutive = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  Tensor t = x.detach();
  std::vector<int64_t> kept;
  if (!consecutive) {
    // Move the reduced dims to the end: [kept..., reduced...].
    std::vector<int64_t> perm;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (std::find(dims.begin(), dims.end(), d) == dims.end()) perm.push_back(d);
    for (int64_t d : dims) perm.push_back(d);
    t = t.permute(perm);
    for (int64_t d = 0; d < x.dim(); ++d)
      if (std::find(dims.begin(), dims.end(), d) == dims.end()) m.outer *= x.shape()[d];
    for (int64_t d : dims) m.r *= x.shape()[d];
  } else {
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (!dims.empty() && d < dims.front())
        m.outer *= x.shape()[d];
      else if (!dims.empty() && d <= dims.back())
        m.r *= x.shape()[d];
      else
        m.inner *= x.shape()[d];
    }
  }
  m.data = t.contiguous();
  return m;
}

Tensor reduce_forward(kernels::ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims,
                      bool keepdim, const char* name) {
  detail::require_floating(x, name);
  const MiddleLayout m = to_middle_layout(x, dims);
  if (op == kernels::ReduceOp::Max && m.r == 0)
    throw std::invalid_argument(std::string(name) + ": cannot take the max over an empty dimension of " + x.str());
  Tensor out = Tensor::empty(reduced_shape(x.shape(), dims, keepdim), x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), name, [&] {
    const auto* px = static_cast<const scalar_t*>(m.data.data_ptr());
    auto* po = static_cast<scalar_t*>(out.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY(
          name, kernels::cuda::reduce_middle<scalar_t>(op, m.outer, m.r, m.inner, px, po, cuda::stream(x.device())));
    } else {
      kernels::reduce_middle<scalar_t>(op, m.outer, m.r, m.inner, px, po);
    }
  });
  return out;
}

}  // namespace

Tensor sum(const Tensor& x_in, const std::vector<int64_t>& dims_in, bool keepdim) {
  const Tensor x = detail::autocast_fp32_if_on(x_in);  // float32 under autocast
  const auto dims = detail::reduction_dims(dims_in, x.dim(), "sum");
  Tensor out = reduce_forward(kernels::ReduceOp::Sum, x, dims, keepdim, "sum");
  if (needs_grad({&x})) {
    const Shape in_shape = x.shape();
    const Shape kept = reduced_shape(in_shape, dims, true);
    record("SumBackward", out, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
      return {g.reshape(kept).expand(in_shape).contiguous()};
    });
  }
  return out;
}

Tensor mean(const Tensor& x_in, const std::vector<int64_t>& dims_in, bool keepdim) {
  const Tensor x = detail::autocast_fp32_if_on(x_in);  // float32 under autocast
  const auto dims = detail::reduction_dims(dims_in, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(count));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const auto dims = detail::reduction_dims(dims_in, x.dim(), "max");
  Tensor out = reduce_forward(kernels::ReduceOp::Max, x, dims, keepdim, "max");
  if (needs_grad({&x})) {
    const Shape kept = reduced_shape(x.shape(), dims, true);
    SavedTensor x_saved(x), out_saved(out);
    record("MaxBackward", out, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor xv = x_saved.unpack("MaxBackward");
      const Tensor m = out_saved.unpack("MaxBackward").reshape(kept);
      // Gradient shared evenly among the positions that attain the maximum.
      const Tensor is_max = eq(xv, m).to(xv.dtype());
      const Tensor count = sum(is_max, dims, true);
      return {mul(is_max, div(g.reshape(kept), count))};
    });
  }
  return out;
}

Tensor var(const Tensor& x_in, const std::vector<int64_t>& dims_in, int64_t correction, bool keepdim) {
  const Tensor x = detail::autocast_fp32_if_on(x_in);  // float32 under autocast
  const auto dims = detail::reduction_dims(dims_in, x.dim(), "var");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  const Tensor centred = sub(x, mean(x, dims, true));
  const double denom = static_cast<double>(std::max<int64_t>(count - correction, 0));
  // Composed from differentiable ops: its gradient 2 (x - mean) / (n - c) falls out of them.
  return mul(sum(mul(centred, centred), dims, keepdim), 1.0 / denom);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = wrap_dim(dim, x.dim(), "argmax");
  const MiddleLayout m = to_middle_layout(x, {d});
  Tensor out = Tensor::empty(reduced_shape(x.shape(), {d}, keepdim), DType::I64, x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), "argmax", [&] {
    const auto* px = static_cast<const scalar_t*>(m.data.data_ptr());
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY("argmax", kernels::cuda::argmax_middle<scalar_t>(m.outer, m.r, m.inner, px, out.data<int64_t>(),
                                                                      cuda::stream(x.device())));
    } else {
      kernels::argmax_middle<scalar_t>(m.outer, m.r, m.inner, px, out.data<int64_t>());
    }
  });
  return out;
}

}  // namespace hone::ops
