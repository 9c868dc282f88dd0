// add, sub, mul, div, maximum with broadcasting; in-place accumulation; comparisons.
#include <algorithm>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"

namespace hone::ops {

using kernels::BinaryOp;

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw std::invalid_argument("shapes " + shape_str(a) + " and " + shape_str(b) +
                                  " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor sum_to_shape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)) dims.push_back(d);
  Tensor s = dims.empty() ? x : sum(x, dims, /*keepdim=*/true);
  return s.reshape(shape);
}

namespace {

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  detail::require_same_device(a, b, name);
  detail::require_floating(a, name);
  detail::require_same_dtype(a, b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  const Shape sa = detail::broadcast_strides(a.detach(), shape);
  const Shape sb = detail::broadcast_strides(b.detach(), shape);
  HONE_DISPATCH_FLOATING(a.dtype(), name, [&] {
    const int nd = static_cast<int>(shape.size());
    const auto* pa = static_cast<const scalar_t*>(a.data_ptr());
    const auto* pb = static_cast<const scalar_t*>(b.data_ptr());
    auto* po = static_cast<scalar_t*>(out.data_ptr());
    if (detail::on_cuda(a)) {
      HONE_CUDA_ONLY(name, kernels::cuda::binary_forward<scalar_t>(op, nd, shape.data(), pa, sa.data(), pb, sb.data(),
                                                                   po, cuda::stream(a.device())));
    } else {
      kernels::binary_forward<scalar_t>(op, nd, shape.data(), pa, sa.data(), pb, sb.data(), po);
    }
  });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  if (detail::needs_promotion(a, b)) {
    const DType t = detail::promote_floating(a.dtype(), b.dtype());
    return add(a.to(t), b.to(t));
  }
  Tensor out = binary_forward(BinaryOp::Add, a, b, "add");
  if (needs_grad({&a, &b})) {
    const Shape sa = a.shape(), sb = b.shape();
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("AddBackward", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      return {ga ? sum_to_shape(g, sa) : Tensor(), gb ? sum_to_shape(g, sb) : Tensor()};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  if (detail::needs_promotion(a, b)) {
    const DType t = detail::promote_floating(a.dtype(), b.dtype());
    return sub(a.to(t), b.to(t));
  }
  Tensor out = binary_forward(BinaryOp::Sub, a, b, "sub");
  if (needs_grad({&a, &b})) {
    const Shape sa = a.shape(), sb = b.shape();
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("SubBackward", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      return {ga ? sum_to_shape(g, sa) : Tensor(), gb ? sum_to_shape(neg(g), sb) : Tensor()};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  if (detail::needs_promotion(a, b)) {
    const DType t = detail::promote_floating(a.dtype(), b.dtype());
    return mul(a.to(t), b.to(t));
  }
  Tensor out = binary_forward(BinaryOp::Mul, a, b, "mul");
  if (needs_grad({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    SavedTensor a_saved(gb ? a : Tensor()), b_saved(ga ? b : Tensor());
    const Shape sa = a.shape(), sb = b.shape();
    record("MulBackward", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      Tensor da, db;
      if (ga) da = sum_to_shape(mul(g, b_saved.unpack("MulBackward")), sa);
      if (gb) db = sum_to_shape(mul(g, a_saved.unpack("MulBackward")), sb);
      return {da, db};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  if (detail::needs_promotion(a, b)) {
    const DType t = detail::promote_floating(a.dtype(), b.dtype());
    return div(a.to(t), b.to(t));
  }
  Tensor out = binary_forward(BinaryOp::Div, a, b, "div");
  if (needs_grad({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    SavedTensor b_saved(b), out_saved(gb ? out : Tensor());
    const Shape sa = a.shape(), sb = b.shape();
    record("DivBackward", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor bv = b_saved.unpack("DivBackward");
      Tensor da, db;
      Tensor g_over_b = div(g, bv);
      if (ga) da = sum_to_shape(g_over_b, sa);
      // d(a/b)/db = -(a/b)/b
      if (gb) db = sum_to_shape(neg(mul(g_over_b, out_saved.unpack("DivBackward"))), sb);
      return {da, db};
    });
  }
  return out;
}

Tensor add(const Tensor& a, double b) { return add(a, Tensor::scalar(b, a.dtype(), a.device())); }
Tensor mul(const Tensor& a, double b) { return mul(a, Tensor::scalar(b, a.dtype(), a.device())); }

Tensor maximum(const Tensor& a, const Tensor& b) {
  if (detail::needs_promotion(a, b)) {
    const DType t = detail::promote_floating(a.dtype(), b.dtype());
    return maximum(a.to(t), b.to(t));
  }
  Tensor out = binary_forward(BinaryOp::Maximum, a, b, "maximum");
  if (needs_grad({&a, &b})) {
    SavedTensor a_saved(a), b_saved(b);
    const Shape sa = a.shape(), sb = b.shape();
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("MaximumBackward", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor av = a_saved.unpack("MaximumBackward"), bv = b_saved.unpack("MaximumBackward");
      // Where a == b the gradient is split in half between them, as in PyTorch.
      const Tensor a_gt = gt(av, bv).to(g.dtype()), b_gt = gt(bv, av).to(g.dtype());
      const Tensor tie = mul(eq(av, bv).to(g.dtype()), 0.5);
      Tensor da, db;
      if (ga) da = sum_to_shape(mul(g, add(a_gt, tie)), sa);
      if (gb) db = sum_to_shape(mul(g, add(b_gt, tie)), sb);
      return {da, db};
    });
  }
  return out;
}

namespace {
Tensor compare_op(kernels::CompareOp op, const Tensor& a, const Tensor& b, const char* name) {
  detail::require_same_device(a, b, name);
  detail::require_same_dtype(a, b, name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, DType::U8, a.device());
  const Shape sa = detail::broadcast_strides(a.detach(), shape);
  const Shape sb = detail::broadcast_strides(b.detach(), shape);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const int nd = static_cast<int>(shape.size());
    const T* pa = static_cast<const T*>(a.data_ptr());
    const T* pb = static_cast<const T*>(b.data_ptr());
    if (detail::on_cuda(a)) {
      HONE_CUDA_ONLY(name, kernels::cuda::compare<T>(op, nd, shape.data(), pa, sa.data(), pb, sb.data(),
                                                     out.data<uint8_t>(), cuda::stream(a.device())));
    } else {
      kernels::compare<T>(op, nd, shape.data(), pa, sa.data(), pb, sb.data(), out.data<uint8_t>());
    }
  };
  switch (a.dtype()) {
    case DType::F32: run(float{}); break;
    case DType::F64: run(double{}); break;
    case DType::BF16: run(bf16{}); break;
    case DType::F16: run(f16{}); break;
    case DType::I32: run(int32_t{}); break;
    case DType::I64: run(int64_t{}); break;
    default: throw std::invalid_argument(std::string(name) + ": unsupported dtype " + a.str());
  }
  return out;
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare_op(kernels::CompareOp::Eq, a, b, "eq"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare_op(kernels::CompareOp::Gt, a, b, "gt"); }

void add_(Tensor& a, const Tensor& b, double alpha) {
  detail::require_same_device(a, b, "add_");
  detail::require_same_dtype(a, b, "add_");
  if (a.requires_grad() && grad_mode_enabled())
    throw std::runtime_error("add_: in-place update of " + a.str() +
                             ", which requires grad, while grad mode is on");
  if (a.is_contiguous() && b.is_contiguous() && a.shape() == b.shape()) {
    HONE_DISPATCH_FLOATING(a.dtype(), "add_", [&] {
      const auto* pb = static_cast<const scalar_t*>(b.data_ptr());
      auto* pa = static_cast<scalar_t*>(a.data_ptr());
      if (detail::on_cuda(a)) {
        HONE_CUDA_ONLY("add_", kernels::cuda::axpy<scalar_t>(a.numel(), alpha, pb, pa, cuda::stream(a.device())));
      } else {
        kernels::axpy<scalar_t>(a.numel(), alpha, pb, pa);
      }
    });
    a.bump_version();
    return;
  }
  NoGradGuard no_grad;
  Tensor sum_ab = alpha == 1.0 ? add(a, b) : add(a, mul(b, alpha));
  if (sum_ab.shape() != a.shape())
    throw std::invalid_argument("add_: " + b.str() + " does not broadcast to " + a.str());
  a.copy_(sum_ab);
}

void mul_(Tensor& a, double s) {
  if (a.requires_grad() && grad_mode_enabled())
    throw std::runtime_error("mul_: in-place update of " + a.str() + ", which requires grad, while grad mode is on");
  if (!a.is_contiguous()) {
    NoGradGuard no_grad;
    a.copy_(mul(a, s));
    return;
  }
  HONE_DISPATCH_FLOATING(a.dtype(), "mul_", [&] {
    auto* pa = static_cast<scalar_t*>(a.data_ptr());
    if (detail::on_cuda(a)) {
      HONE_CUDA_ONLY("mul_", kernels::cuda::scale<scalar_t>(a.numel(), s, pa, cuda::stream(a.device())));
    } else {
      kernels::scale<scalar_t>(a.numel(), s, pa);
    }
  });
  a.bump_version();
}

}  // namespace hone::ops
