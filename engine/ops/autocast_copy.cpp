#include "engine/ops/autocast_copy.h"

#include "engine/autograd/grad_mode.h"
#include "engine/ops/common.h"

namespace hone::ops {

namespace {

bool current(const Storage& s, DType dtype) {
  const AutocastCopy& c = s.autocast_copy();
  return c.data && c.dtype == dtype && c.version == s.version();
}

}  // namespace

bool casts_through_autocast_copy(const Tensor& t) {
  return t.defined() && t.dtype() == DType::F32 && t.storage()->is_parameter();
}

Tensor cast_through_autocast_copy(const Tensor& t, DType dtype) {
  Storage& s = *t.storage();
  if (!current(s, dtype)) {
    // The whole storage, element for element: every view of it then has its twin in the copy.
    NoGradGuard no_grad;
    const int64_t n = int64_t(s.nbytes() / sizeof(float));
    const Tensor whole = Tensor::make_view(t.storage(), 0, {n}, {1}, DType::F32);
    Tensor copy = Tensor::empty({n}, dtype, t.device());
    copy.copy_(whole);
    s.autocast_copy() = AutocastCopy{copy.storage(), dtype, s.version()};
  }
  // A fresh handle on the copy per use: its autograd node is this cast's.
  Tensor out = Tensor::make_view(s.autocast_copy().data, t.offset(), t.shape(), t.strides(), dtype);
  if (needs_grad({&t})) detail::record_cast_backward(out, t, /*keep_layout=*/true);
  return out;
}

void* current_autocast_copy(const Tensor& p, DType* dtype) {
  const Storage& s = *p.storage();
  if (p.dtype() != DType::F32 || !s.is_parameter()) return nullptr;
  const AutocastCopy& c = s.autocast_copy();
  if (!detail::is_16bit(c.dtype) || !current(s, c.dtype)) return nullptr;  // (F32: none made yet)
  *dtype = c.dtype;
  return static_cast<char*>(c.data->data()) + p.offset() * dtype_size(c.dtype);
}

void mark_autocast_copy_written(const Tensor& p) {
  Storage& s = *p.storage();
  AutocastCopy& c = s.autocast_copy();
  c.version = s.version();
  c.data->bump_version();
}

}  // namespace hone::ops
