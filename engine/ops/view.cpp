// Views: new shape/strides/offset over the same storage, and their backward. Also contiguous,
// clone and dtype conversion, which copy.
#include <algorithm>
#include <optional>
#include <stdexcept>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/ops/common.h"
#include "engine/ops/ops.h"

namespace hone {

namespace {

Tensor view_of(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  return Tensor::make_view(base.storage(), offset, std::move(shape), std::move(strides), base.dtype());
}

// Resolves one -1 in `shape` against numel.
Shape infer_shape(const Shape& shape, int64_t numel, const char* what) {
  Shape out = shape;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer_at >= 0) throw std::invalid_argument(std::string(what) + ": more than one -1 in shape");
      infer_at = static_cast<int64_t>(i);
    } else if (out[i] < 0) {
      throw std::invalid_argument(std::string(what) + ": negative size in " + shape_str(shape));
    } else {
      known *= out[i];
    }
  }
  if (infer_at >= 0) {
    if (known == 0 || numel % known != 0)
      throw std::invalid_argument(std::string(what) + ": cannot infer -1 in " + shape_str(shape) +
                                  " for " + std::to_string(numel) + " elements");
    out[infer_at] = numel / known;
  }
  if (shape_numel(out) != numel)
    throw std::invalid_argument(std::string(what) + ": shape " + shape_str(shape) + " does not hold " +
                                std::to_string(numel) + " elements");
  return out;
}

// Strides that let `new_shape` view memory laid out with (old_shape, old_strides), or nothing
// when a copy is needed. The same algorithm as PyTorch's computeStride: walk both shapes in
// chunks of dims that are contiguous with each other.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape) {
  Shape new_strides(new_shape.size());
  // Empty or single-element tensors (including 0-dim ones) view as anything of the same numel.
  if (shape_numel(old_shape) <= 1) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  const Shape shape_new = infer_shape(shape_in, numel(), "view");
  auto st = view_strides(shape(), strides(), shape_new);
  if (!st)
    throw std::invalid_argument("view: " + str() + " cannot be viewed as " + shape_str(shape_new) +
                                " without a copy (its strides are not compatible); use reshape");
  Tensor out = view_of(*this, shape_new, *st, offset());
  if (needs_grad({this})) {
    const Shape in_shape = shape();
    record("ViewBackward", out, {*this},
           [in_shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(in_shape)}; });
  }
  return out;
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  const Shape shape_new = infer_shape(shape_in, numel(), "reshape");
  if (view_strides(shape(), strides(), shape_new)) return view(shape_new);
  return contiguous().view(shape_new);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  if (static_cast<int64_t>(dims.size()) != dim())
    throw std::invalid_argument("permute: " + std::to_string(dims.size()) + " dims given for " + str());
  Shape sh(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim(), "permute");
    if (inverse[d] != -1) throw std::invalid_argument("permute: dimension repeated");
    inverse[d] = static_cast<int64_t>(i);
    sh[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = view_of(*this, sh, st, offset());
  if (needs_grad({this})) {
    record("PermuteBackward", out, {*this},
           [inverse](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; });
    out.grad_fn()->only_relays = true;
  }
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(dim());
  for (int64_t i = 0; i < dim(); ++i) dims[i] = i;
  std::swap(dims[wrap_dim(d0, dim(), "transpose")], dims[wrap_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::narrow(int64_t d_in, int64_t start, int64_t length) const {
  const int64_t d = wrap_dim(d_in, dim(), "narrow");
  if (start < 0) start += shape()[d];
  if (start < 0 || length < 0 || start + length > shape()[d])
    throw std::out_of_range("narrow: range [" + std::to_string(start) + ", " +
                            std::to_string(start + length) + ") is outside dimension " +
                            std::to_string(d) + " of size " + std::to_string(shape()[d]));
  Shape sh = shape();
  sh[d] = length;
  Tensor out = view_of(*this, sh, strides(), offset() + start * strides()[d]);
  if (needs_grad({this})) {
    const Shape in_shape = shape();
    record("NarrowBackward", out, {*this}, [in_shape, d, start, length](const Tensor& g) -> std::vector<Tensor> {
      Tensor full = Tensor::zeros(in_shape, g.dtype(), g.device());
      full.narrow(d, start, length).copy_(g);
      return {full};
    });
  }
  return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  const int64_t dd = wrap_dim(d, dim(), "select");
  return narrow(dd, index, 1).squeeze(dd);
}

Tensor Tensor::expand(const Shape& target) const {
  if (target.size() < shape().size())
    throw std::invalid_argument("expand: cannot expand " + str() + " to fewer dims " + shape_str(target));
  const size_t lead = target.size() - shape().size();
  Shape st(target.size(), 0);
  bool same = lead == 0;
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) continue;
    const int64_t s = shape()[i - lead];
    if (s == target[i]) {
      st[i] = strides()[i - lead];
    } else if (s == 1) {
      st[i] = 0;
      same = false;
    } else {
      throw std::invalid_argument("expand: " + str() + " cannot be broadcast to " + shape_str(target));
    }
  }
  if (same) return *this;
  Tensor out = view_of(*this, target, st, offset());
  if (needs_grad({this})) {
    const Shape in_shape = shape();
    record("ExpandBackward", out, {*this},
           [in_shape](const Tensor& g) -> std::vector<Tensor> { return {ops::sum_to_shape(g, in_shape)}; });
  }
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  const int64_t dd = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sh = shape();
  sh.insert(sh.begin() + dd, 1);
  return view(sh);
}

Tensor Tensor::squeeze(int64_t d) const {
  const int64_t dd = wrap_dim(d, dim(), "squeeze");
  if (shape()[dd] != 1) return *this;
  Shape sh = shape();
  sh.erase(sh.begin() + dd);
  return view(sh);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  const int64_t s = wrap_dim(start, dim(), "flatten"), e = wrap_dim(end, dim(), "flatten");
  Shape sh(shape().begin(), shape().begin() + s);
  int64_t n = 1;
  for (int64_t i = s; i <= e; ++i) n *= shape()[i];
  sh.push_back(n);
  sh.insert(sh.end(), shape().begin() + e + 1, shape().end());
  return reshape(sh);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return ops::copy(*this);
}

Tensor Tensor::clone() const { return ops::copy(*this); }

Tensor Tensor::to(DType dtype_new) const {
  if (dtype_new == dtype()) return *this;
  return ops::cast(*this, dtype_new);
}

namespace ops {

Tensor copy(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  {
    NoGradGuard no_grad;
    out.copy_(x);
  }
  if (needs_grad({&x}))
    record("CopyBackward", out, {x}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  return out;
}

namespace {

// An uninitialised tensor like x in `dtype`: with x's strides when x's elements fill their span of
// storage in some dim order (a transpose or permutation of a contiguous tensor), else contiguous.
Tensor empty_like_layout(const Tensor& x, DType dtype) {
  const int64_t nd = x.dim();
  if (nd < 2 || x.numel() == 0 || x.is_contiguous()) return Tensor::empty(x.shape(), dtype, x.device());
  std::vector<int64_t> order(nd);  // dims from the outermost (largest stride) in
  for (int64_t d = 0; d < nd; ++d) order[d] = d;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return x.strides()[a] > x.strides()[b]; });
  int64_t dense = 1;
  for (int64_t i = nd - 1; i >= 0; --i) {
    const int64_t d = order[i];
    if (x.shape()[d] == 1) continue;
    if (x.strides()[d] != dense) return Tensor::empty(x.shape(), dtype, x.device());  // gaps or overlap
    dense *= x.shape()[d];
  }
  Shape storage_shape(nd);
  std::vector<int64_t> back(nd);
  for (int64_t i = 0; i < nd; ++i) storage_shape[i] = x.shape()[order[i]], back[order[i]] = i;
  return Tensor::empty(storage_shape, dtype, x.device()).permute(back);
}

Tensor cast_into(Tensor out, const Tensor& x, bool keep_layout) {
  {
    NoGradGuard no_grad;
    out.copy_(x);
  }
  if (needs_grad({&x})) detail::record_cast_backward(out, x, keep_layout);
  return out;
}

}  // namespace

void detail::record_cast_backward(Tensor& out, const Tensor& x, bool keep_layout) {
  const DType dtype = out.dtype();
  if (!is_floating(dtype))
    throw std::invalid_argument("cast: a tensor that requires grad cannot be cast to " +
                                std::string(dtype_name(dtype)) + " while grad mode is on");
  const DType from = x.dtype();
  record("CastBackward", out, {x}, [from, keep_layout](const Tensor& g) -> std::vector<Tensor> {
    return {keep_layout ? cast_keep_layout(g, from) : g.to(from)};
  });
  out.grad_fn()->only_relays = true;
}

Tensor cast(const Tensor& x, DType dtype) { return cast_into(Tensor::empty(x.shape(), dtype, x.device()), x, false); }

Tensor cast_keep_layout(const Tensor& x, DType dtype) {
  if (dtype == x.dtype()) return x;
  Tensor out;
  {
    NoGradGuard no_grad;  // the permute that restores x's dim order is not part of the graph
    out = empty_like_layout(x, dtype);
  }
  return cast_into(out, x, true);
}

}  // namespace ops
}  // namespace hone
