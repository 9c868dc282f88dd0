// Small helpers shared by the op families.
#pragma once
#include <stdexcept>
#include <string>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/core/tensor.h"
#include "engine/ops/autocast_copy.h"
#include "engine/ops/ops.h"

#if defined(HONE_WITH_CUDA)
#include "engine/core/allocator.h"
#include "engine/core/cuda_runtime.h"
#include "kernels/cuda_api.h"
#endif

namespace hone::ops::detail {

// For an op that has no CUDA kernel: using it on a CUDA tensor says so instead of touching
// device memory from the CPU.
inline void require_cpu(const Tensor& t, const char* op) {
  if (!t.device().is_cpu())
    throw std::runtime_error(std::string(op) + ": no CUDA kernel for this op yet (tensor " + t.str() + ")");
}

// Every op dispatches on the device of its first tensor: CPU -> kernels/cpu, CUDA ->
// kernels/cuda (in builds with CUDA; without it no tensor can live on a device). The other
// tensors must be on the same device.
inline bool on_cuda(const Tensor& t) { return t.device().is_cuda(); }

// Thrown by the CUDA branch of an op in a build without CUDA (unreachable in practice: such a
// build cannot allocate device memory).
[[noreturn]] inline void no_cuda_build(const char* op) {
  throw std::runtime_error(std::string(op) + ": this hone build has no CUDA support");
}

// The CUDA branch of an op: HONE_CUDA_ONLY(op_name, kernels::cuda::f<T, I>(..., stream)) compiles the
// call in CUDA builds (kernels::cuda exists only there) and no_cuda_build(op_name) in the others.
// Variadic, so template arguments' commas need no extra parentheses.
#if defined(HONE_WITH_CUDA)
#define HONE_CUDA_ONLY(op, ...) __VA_ARGS__
#else
#define HONE_CUDA_ONLY(op, ...) ::hone::ops::detail::no_cuda_build(op)
#endif

#if defined(HONE_WITH_CUDA)
// The workspace source of the cuDNN paths (convolution, attention): the engine's caching allocator.
inline kernels::cuda::ConvContext cudnn_context(const Device& d) {
  kernels::cuda::ConvContext ctx;
  ctx.device = d.index;
  ctx.alloc = &hone::cuda_alloc;
  ctx.release = &hone::cuda_free;
  return ctx;
}
#endif

inline void require_floating(const Tensor& t, const char* op) {
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected a floating tensor, got " + t.str());
}

inline void require_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + ": dtypes differ (" + a.str() + " vs " + b.str() + ")");
}

inline void require_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": tensors on different devices (" + a.str() +
                                " vs " + b.str() + ")");
}

inline void require_index_dtype(const Tensor& t, const char* op) {
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32)
    throw std::invalid_argument(std::string(op) + ": indices must be int32 or int64, got " + t.str());
}

// ---- Row padding for the GPU's GEMMs ------------------------------------------------------------
// cuBLASLt's tensor-core kernels (TMA on Hopper) need a matrix's leading dimension to be a multiple
// of 16 bytes; other layouts run on kernels several times slower. A GEMM output whose rows are not
// (GPT-2's 50257 logits, BERT's 30522) is therefore written with padded rows: the tensor is a
// narrowed view of [..., padded] storage, so its gradient (laid out the same by the ops that make
// it, e.g. cross_entropy) also reaches the backward GEMMs aligned. llm.c pads the vocabulary for
// the same reason; here the parameters keep their real shapes and only the activations pad.
inline int64_t aligned_row_elems(int64_t n, DType dt) {
  const int64_t per = 16 / int64_t(dtype_size(dt));  // elements per 16 bytes (2 for float64)
  return (n + per - 1) / per * per;
}
// An uninitialised tensor for a CUDA GEMM to write: rows (the last dim) padded to 16 bytes when
// there is more than one row and they are not already; contiguous otherwise and on the CPU.
inline Tensor empty_gemm_output(const Shape& shape, DType dt, Device dev) {
  const int64_t n = shape.empty() ? 1 : shape.back();
  const int64_t rows = n > 0 ? shape_numel(shape) / n : 0;
  const int64_t padded = aligned_row_elems(n, dt);
  if (!dev.is_cuda() || rows <= 1 || padded == n) return Tensor::empty(shape, dt, dev);
  Shape storage_shape = shape;
  storage_shape.back() = padded;
  return Tensor::empty(storage_shape, dt, dev).narrow(-1, 0, n);
}

// ---- Autocast (engine/autograd/autocast_mode.h) -----------------------------------------------
inline bool is_16bit(DType t) { return t == DType::BF16 || t == DType::F16; }

// f.template operator()<T>() with T = bf16 or f16 for a 16-bit dtype (f16 for any other).
template <class F>
auto dispatch_16bit(DType dt, F&& f) {
  if (dt == DType::BF16) return f.template operator()<bf16>();
  return f.template operator()<f16>();
}

// True when autocast is on and one of `inputs` is floating but not yet in the autocast dtype
// (float64 is left alone, as in PyTorch): a lower-precision op then re-enters itself with
// autocast_lower() inputs.
inline bool autocast_to_lower(std::initializer_list<const Tensor*> inputs) {
  if (!autocast_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && (t->dtype() == DType::F32 || (is_16bit(t->dtype()) && t->dtype() != autocast_dtype())))
      return true;
  return false;
}
inline Tensor autocast_lower(const Tensor& t) {
  if (!t.defined() || t.dtype() == DType::F64 || !is_floating(t.dtype())) return t;
  // A parameter (or a view of one) reads its kept 16-bit copy (engine/ops/autocast_copy.h).
  if (ops::casts_through_autocast_copy(t)) return ops::cast_through_autocast_copy(t, autocast_dtype());
  return ops::cast_keep_layout(t, autocast_dtype());  // a transposed weight stays transposed
}

// Records x -> out (out: x cast to out's dtype, already written) as a cast for autograd: the
// gradient goes back to x's dtype, in out's layout when keep_layout (ops::cast_keep_layout).
void record_cast_backward(Tensor& out, const Tensor& x, bool keep_layout);

// True when autocast is on and one of `inputs` is 16-bit: a float32 op then re-enters itself
// with autocast_fp32() inputs.
inline bool autocast_to_fp32(std::initializer_list<const Tensor*> inputs) {
  if (!autocast_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && is_16bit(t->dtype())) return true;
  return false;
}
inline Tensor autocast_fp32(const Tensor& t) {
  return t.defined() && is_16bit(t.dtype()) ? t.to(DType::F32) : t;
}

// autocast_fp32 when autocast is on, else `t` unchanged (for float32-list ops of one input).
inline Tensor autocast_fp32_if_on(const Tensor& t) { return autocast_enabled() ? autocast_fp32(t) : t; }

// Type promotion of two floating dtypes (PyTorch's): the wider one; bf16 with f16 -> f32.
inline DType promote_floating(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::F64 || b == DType::F64) return DType::F64;
  return DType::F32;
}
// True when a binary op must first promote its operands (two different floating dtypes).
inline bool needs_promotion(const Tensor& a, const Tensor& b) {
  return a.dtype() != b.dtype() && is_floating(a.dtype()) && is_floating(b.dtype());
}

// Strides of `t` seen through broadcasting to `shape` (0 on broadcast dims).
inline Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  return t.expand(shape).strides();
}

// Normalised, sorted, de-duplicated reduction dims; empty input means all dims.
std::vector<int64_t> reduction_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace hone::ops::detail
