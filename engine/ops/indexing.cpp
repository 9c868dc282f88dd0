// Joining, splitting and indexing: concat, split, chunk, index_select, gather, where, masked_fill.
// Index tensors are made contiguous (row-major) before use, so that "position" always means the
// logical position; they are range-checked before any kernel runs.
#include <algorithm>

#include "engine/ops/common.h"
#include "engine/ops/indexing_util.h"
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"
#include "kernels/indexing.h"

namespace hone::ops {

namespace {

// Product of shape[begin, end).
int64_t span_numel(const Shape& shape, int64_t begin, int64_t end) {
  int64_t n = 1;
  for (int64_t d = begin; d < end; ++d) n *= shape[d];
  return n;
}

void check_concat_input(const Tensor& first, const Tensor& x, size_t i, int64_t d) {
  const std::string which = "concat: input " + std::to_string(i) + " (" + x.str() + ")";
  if (x.dtype() != first.dtype()) throw std::invalid_argument(which + " has a different dtype than input 0 (" + first.str() + ")");
  if (x.device() != first.device()) throw std::invalid_argument(which + " is on a different device than input 0");
  if (x.dim() != first.dim()) throw std::invalid_argument(which + " has a different number of dims than input 0 (" + first.str() + ")");
  for (int64_t k = 0; k < x.dim(); ++k)
    if (k != d && x.size(k) != first.size(k))
      throw std::invalid_argument(which + " differs from input 0 (" + first.str() + ") in dimension " +
                                  std::to_string(k) + ", which is not the concatenation dimension " +
                                  std::to_string(d));
}

// Runs kernels::where for the dtypes it is built for (floating types and int64).
void where_kernel(const Shape& shape, const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out) {
  const Shape sc = detail::broadcast_strides(cond.detach(), shape);
  const Shape sa = detail::broadcast_strides(a.detach(), shape);
  const Shape sb = detail::broadcast_strides(b.detach(), shape);
  const int nd = static_cast<int>(shape.size());
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const T* pa = static_cast<const T*>(a.data_ptr());
    const T* pb = static_cast<const T*>(b.data_ptr());
    T* po = static_cast<T*>(out.data_ptr());
    if (detail::on_cuda(out)) {
      HONE_CUDA_ONLY("where", kernels::cuda::where<T>(nd, shape.data(), cond.data<uint8_t>(), sc.data(), pa, sa.data(),
                                                      pb, sb.data(), po, cuda::stream(out.device())));
    } else {
      kernels::where<T>(nd, shape.data(), cond.data<uint8_t>(), sc.data(), pa, sa.data(), pb, sb.data(), po);
    }
  };
  if (a.dtype() == DType::I64) return run(int64_t{});
  HONE_DISPATCH_FLOATING(a.dtype(), "where", [&] { run(scalar_t{}); });
}

}  // namespace

// ---- concat / split / chunk -----------------------------------------------------------------

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) throw std::invalid_argument("concat: no tensors given");
  const Tensor& first = xs[0];
  if (first.dim() == 0) throw std::invalid_argument("concat: cannot concatenate zero-dimensional tensors");
  const int64_t d = wrap_dim(dim, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  std::vector<int64_t> starts, lengths;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_concat_input(first, xs[i], i, d);
    starts.push_back(out_shape[d]);
    lengths.push_back(xs[i].size(d));
    out_shape[d] += xs[i].size(d);
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  {
    NoGradGuard no_grad;  // the copies are plumbing; the op records one node below
    for (size_t i = 0; i < xs.size(); ++i) out.narrow(d, starts[i], lengths[i]).copy_(xs[i].detach());
  }
  if (needs_grad(xs)) {
    std::vector<bool> wants;
    for (const Tensor& x : xs) wants.push_back(x.requires_grad());
    record("ConcatBackward", out, xs, [=](const Tensor& g) -> std::vector<Tensor> {
      std::vector<Tensor> grads;
      for (size_t i = 0; i < wants.size(); ++i) grads.push_back(wants[i] ? g.narrow(d, starts[i], lengths[i]) : Tensor());
      return grads;
    });
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw std::invalid_argument("split: negative size in " + shape_str(sizes));
    total += s;
  }
  if (total != x.size(d))
    throw std::invalid_argument("split: sizes " + shape_str(sizes) + " sum to " + std::to_string(total) +
                                ", but dimension " + std::to_string(d) + " of " + x.str() + " has size " +
                                std::to_string(x.size(d)));
  // Views: each piece is differentiable through narrow.
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(d, start, s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  if (chunks <= 0) throw std::invalid_argument("chunk: the number of chunks must be positive, got " + std::to_string(chunks));
  const int64_t d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t size = x.size(d);
  if (size == 0) return {x.narrow(d, 0, 0)};
  // torch.chunk: pieces of ceil(size / chunks), the last one smaller; this can give fewer than
  // `chunks` pieces (size 5 in 4 chunks: 2, 2, 1).
  const int64_t step = (size + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < size; start += step) sizes.push_back(std::min(step, size - start));
  return split(x, sizes, d);
}

// ---- index_select / gather ----------------------------------------------------------------

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::require_same_device(x, index, "index_select");
  detail::require_index_dtype(index, "index_select");
  if (x.dim() == 0) throw std::invalid_argument("index_select: x must have at least one dimension, got " + x.str());
  if (index.dim() > 1) throw std::invalid_argument("index_select: index must be one-dimensional, got " + index.str());
  const int64_t d = wrap_dim(dim, x.dim(), "index_select");
  const Shape x_shape = x.shape();
  const int64_t N = x_shape[d];
  const Tensor idx = index.contiguous();
  detail::check_ids_in_range(idx, N, "index_select", "dimension " + std::to_string(d) + " of size " + std::to_string(N));

  // x as [outer, N, inner]; the result is [outer, n, inner].
  const int64_t outer = span_numel(x_shape, 0, d), inner = span_numel(x_shape, d + 1, x.dim());
  const int64_t n = idx.numel();
  Shape out_shape = x_shape;
  out_shape[d] = n;
  const Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  HONE_DISPATCH_ALL(x.dtype(), "index_select", [&] {
    detail::dispatch_index(idx, [&](auto tag) {
      using I = decltype(tag);
      const auto* px = static_cast<const scalar_t*>(xc.data_ptr());
      const I* pi = static_cast<const I*>(idx.data_ptr());
      auto* po = static_cast<scalar_t*>(out.data_ptr());
      if (detail::on_cuda(xc)) {
        HONE_CUDA_ONLY("index_select", kernels::cuda::index_select_forward<scalar_t, I>(outer, N, inner, px, n, pi, po,
                                                                                        cuda::stream(xc.device())));
      } else {
        kernels::index_select_forward<scalar_t, I>(outer, N, inner, px, n, pi, po);
      }
    });
  });

  if (needs_grad({&x})) {
    SavedTensor idx_saved(idx);
    record("IndexSelectBackward", out, {x}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor iv = idx_saved.unpack("IndexSelectBackward");
      const Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
      HONE_DISPATCH_FLOATING(g.dtype(), "index_select backward", [&] {
        detail::dispatch_index(iv, [&](auto tag) {
          using I = decltype(tag);
          const I* pi = static_cast<const I*>(iv.data_ptr());
          const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
          auto* pgx = static_cast<scalar_t*>(gx.data_ptr());
          if (detail::on_cuda(g)) {
            HONE_CUDA_ONLY("index_select", kernels::cuda::index_add<scalar_t, I>(outer, N, inner, n, pi, pg, pgx,
                                                                                 cuda::stream(g.device())));
          } else {
            kernels::index_add<scalar_t, I>(outer, N, inner, n, pi, pg, pgx);
          }
        });
      });
      return {gx};
    });
  }
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::require_same_device(x, index, "gather");
  detail::require_index_dtype(index, "gather");
  if (x.dim() == 0) throw std::invalid_argument("gather: x must have at least one dimension, got " + x.str());
  if (index.dim() != x.dim())
    throw std::invalid_argument("gather: index " + index.str() + " must have as many dimensions as x " + x.str());
  const int64_t d = wrap_dim(dim, x.dim(), "gather");
  for (int64_t k = 0; k < x.dim(); ++k)
    if (k != d && index.size(k) > x.size(k))
      throw std::invalid_argument("gather: index " + index.str() + " is larger than x " + x.str() + " in dimension " +
                                  std::to_string(k) + " (only the gather dimension " + std::to_string(d) +
                                  " may be larger)");
  const Shape x_shape = x.shape(), idx_shape = index.shape();
  const Tensor idx = index.contiguous();
  detail::check_ids_in_range(idx, x_shape[d], "gather",
                             "dimension " + std::to_string(d) + " of size " + std::to_string(x_shape[d]));

  const int nd = static_cast<int>(x.dim());
  const Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(idx_shape, x.dtype(), x.device());
  HONE_DISPATCH_ALL(x.dtype(), "gather", [&] {
    detail::dispatch_index(idx, [&](auto tag) {
      using I = decltype(tag);
      const auto* px = static_cast<const scalar_t*>(xc.data_ptr());
      const I* pi = static_cast<const I*>(idx.data_ptr());
      auto* po = static_cast<scalar_t*>(out.data_ptr());
      if (detail::on_cuda(xc)) {
        HONE_CUDA_ONLY("gather", kernels::cuda::gather_forward<scalar_t, I>(nd, x_shape.data(), idx_shape.data(),
                                                                            static_cast<int>(d), px, pi, po,
                                                                            cuda::stream(xc.device())));
      } else {
        kernels::gather_forward<scalar_t, I>(nd, x_shape.data(), idx_shape.data(), static_cast<int>(d), px, pi, po);
      }
    });
  });

  if (needs_grad({&x})) {
    SavedTensor idx_saved(idx);
    record("GatherBackward", out, {x}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor iv = idx_saved.unpack("GatherBackward");
      const Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
      HONE_DISPATCH_FLOATING(g.dtype(), "gather backward", [&] {
        detail::dispatch_index(iv, [&](auto tag) {
          using I = decltype(tag);
          const auto* pg = static_cast<const scalar_t*>(g.data_ptr());
          const I* pi = static_cast<const I*>(iv.data_ptr());
          auto* pgx = static_cast<scalar_t*>(gx.data_ptr());
          if (detail::on_cuda(g)) {
            HONE_CUDA_ONLY("gather", kernels::cuda::gather_backward<scalar_t, I>(nd, x_shape.data(), idx_shape.data(),
                                                                                 static_cast<int>(d), pg, pi, pgx,
                                                                                 cuda::stream(g.device())));
          } else {
            kernels::gather_backward<scalar_t, I>(nd, x_shape.data(), idx_shape.data(), static_cast<int>(d), pg, pi,
                                                  pgx);
          }
        });
      });
      return {gx};
    });
  }
  return out;
}

// ---- where / masked_fill ------------------------------------------------------------------

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::require_same_device(cond, a, "where");
  detail::require_same_device(a, b, "where");
  detail::require_mask_dtype(cond, "where");
  detail::require_same_dtype(a, b, "where");
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape()), b.shape());
  if (shape.size() > static_cast<size_t>(kernels::kMaxDims))
    throw std::invalid_argument("where: at most " + std::to_string(kernels::kMaxDims) + " dims are supported");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  where_kernel(shape, cond, a, b, out);

  if (needs_grad({&a, &b})) {
    SavedTensor cond_saved(cond);
    const Shape sa = a.shape(), sb = b.shape();
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("WhereBackward", out, {a, b}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor c = cond_saved.unpack("WhereBackward");
      const Tensor zero = Tensor::scalar(0.0, g.dtype(), g.device());
      // Each output element came from a or from b: its gradient goes to that one only.
      return {ga ? sum_to_shape(where(c, g, zero), sa) : Tensor(), gb ? sum_to_shape(where(c, zero, g), sb) : Tensor()};
    });
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  detail::require_same_device(x, mask, "masked_fill");
  detail::require_mask_dtype(mask, "masked_fill");
  if (broadcast_shapes(x.shape(), mask.shape()) != x.shape())
    throw std::invalid_argument("masked_fill: mask " + mask.str() + " does not broadcast to the shape of x " + x.str());
  Tensor out;
  {
    NoGradGuard no_grad;  // recorded below as one node with x as its only input
    out = where(mask, Tensor::scalar(value, x.dtype(), x.device()), x);
  }
  if (needs_grad({&x})) {
    SavedTensor mask_saved(mask);
    record("MaskedFillBackward", out, {x}, [=](const Tensor& g) -> std::vector<Tensor> {
      const Tensor m = mask_saved.unpack("MaskedFillBackward");
      return {where(m, Tensor::scalar(0.0, g.dtype(), g.device()), g)};
    });
  }
  return out;
}

}  // namespace hone::ops
