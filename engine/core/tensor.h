// Tensor: a typed, shaped, strided view of a Storage, plus the autograd fields.
//
// A Tensor is a handle (shared_ptr to TensorImpl): copying a Tensor copies the handle, as in
// PyTorch. Views (reshape, permute, narrow, expand, ...) share the Storage and differ in shape,
// strides and offset. Strides and offsets are counted in elements, not bytes.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/storage.h"

namespace hone {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

struct Node;  // autograd/node.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
  DType dtype = DType::F32;

  // autograd
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;           // set on results of differentiable ops
  std::shared_ptr<TensorImpl> grad;        // accumulated gradient of a leaf
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation -----------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // 0, 1, ..., n-1
  static Tensor arange(int64_t n, DType dtype = DType::I64);
  // Standard normal / uniform [lo, hi) values from a seeded Philox stream (reproducible
  // everywhere: element i depends only on the seed and i).
  static Tensor randn(const Shape& shape, uint64_t seed, DType dtype = DType::F32);
  static Tensor rand(const Shape& shape, uint64_t seed, double lo = 0, double hi = 1,
                     DType dtype = DType::F32);
  // A view of existing storage.
  static Tensor make_view(std::shared_ptr<Storage> storage, int64_t offset, Shape shape,
                          Shape strides, DType dtype);

  // ---- metadata -----------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl_->shape); }
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  bool is_contiguous() const;
  size_t nbytes() const { return numel() * dtype_size(dtype()); }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  std::string str() const;  // "float32[2, 3] cpu"
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // Raw pointer to element 0 of this view. A write through it must be followed by bump_version():
  // autograd's saved-tensor check and autocast's kept parameter copies rely on the version.
  void* data_ptr() const;
  template <class T> T* data() const;

  // ---- values ---------------------------------------------------------------
  // The single value of a one-element tensor, as double.
  double item() const;
  // All values in logical (row-major) order, converted to T.
  template <class T> std::vector<T> to_vector() const;

  // ---- views (differentiable; see ops/view.h) ------------------------------
  Tensor view(const Shape& shape) const;     // requires compatible strides
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // narrow + squeeze
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;

  // ---- conversion -----------------------------------------------------------
  Tensor to(DType dtype) const;    // differentiable between floating dtypes
  Tensor to(Device device) const;  // differentiable
  Tensor clone() const;            // differentiable copy into fresh contiguous memory
  Tensor detach() const;           // same storage, no autograd history
  // Makes this leaf tensor hold `src`'s data (storage, layout, dtype, device) in place, as
  // PyTorch's `param.data = src`: every handle to this tensor (a module's, an optimizer's, a
  // tied head's, a hook's) sees the new data. Drops the gradient. Used to move models.
  void set_data_(const Tensor& src);

  // ---- autograd ---------------------------------------------------------------
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& requires_grad_(bool value = true);
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  Tensor grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  void zero_grad() { impl_->grad.reset(); }
  // Backward from this tensor. Without `gradient` the tensor must hold one element (a loss).
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  // ---- in-place ------------------------------------------------------------
  // Writes `src` (broadcast to this shape, converted to this dtype) into this view. Bumps the
  // version counter. Not recorded by autograd: refused on tensors that require grad while grad
  // mode is on.
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  // Marks an in-place write done by a kernel (for the saved-tensor check).
  void bump_version() const { impl_->storage->bump_version(); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Normalises a possibly negative dimension index; throws naming `what` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* what);

}  // namespace hone
