// Helpers shared by the ops that take index or mask tensors (embedding.cpp, indexing.cpp).
#pragma once
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/core/tensor.h"
#include "kernels/indexing.h"

#if defined(HONE_WITH_CUDA)
#include "engine/core/cuda_runtime.h"
#include "kernels/cuda_api.h"
#endif

namespace hone::ops::detail {

// Calls f(I{}) with I the C++ type of an int32 or int64 index tensor.
template <class F>
void dispatch_index(const Tensor& idx, F&& f) {
  if (idx.dtype() == DType::I32)
    f(int32_t{});
  else
    f(int64_t{});
}

inline void require_mask_dtype(const Tensor& t, const char* op) {
  if (t.dtype() != DType::U8)
    throw std::invalid_argument(std::string(op) + ": masks must be uint8, got " + t.str());
}

// "[1, 3]": the coordinates of row-major position `flat` in `shape`.
inline std::string position_str(int64_t flat, const Shape& shape) {
  Shape coord(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    coord[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(coord);
}

// Throws std::invalid_argument naming the first id of the contiguous int tensor `idx` outside
// [0, limit), its position in idx, and `range_what` (which says what the limit is).
inline void check_ids_in_range(const Tensor& idx, int64_t limit, const char* op, const std::string& range_what) {
  if (idx.device().is_cuda()) {
#if defined(HONE_WITH_CUDA)
    // On the device the check cannot throw without synchronising: a kernel records the first bad
    // id it sees and the engine reports it at the next synchronisation (kernels/cuda_api.h).
    const std::string name(op);
    const int32_t code = name == "embedding" ? kernels::cuda::kOpEmbedding
                         : name == "gather"  ? kernels::cuda::kOpGather
                                             : kernels::cuda::kOpIndexSelect;
    dispatch_index(idx, [&](auto tag) {
      using I = decltype(tag);
      kernels::cuda::check_indices<I>(idx.numel(), static_cast<const I*>(idx.data_ptr()), limit,
                                      std::numeric_limits<int64_t>::min(), code,
                                      cuda::index_error_record(idx.device().index), cuda::stream(idx.device()));
    });
    return;
#else
    throw std::runtime_error(std::string(op) + ": this hone build has no CUDA support");
#endif
  }
  int64_t bad = -1, value = 0;
  dispatch_index(idx, [&](auto tag) {
    using I = decltype(tag);
    const I* p = static_cast<const I*>(idx.data_ptr());
    bad = kernels::first_out_of_range<I>(idx.numel(), p, limit);
    if (bad >= 0) value = static_cast<int64_t>(p[bad]);
  });
  if (bad >= 0)
    throw std::invalid_argument(std::string(op) + ": index " + std::to_string(value) + " at position " +
                                position_str(bad, idx.shape()) + " is out of range for " + range_what +
                                " (valid: 0 to " + std::to_string(limit - 1) + ")");
}

}  // namespace hone::ops::detail
