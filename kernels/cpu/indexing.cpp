// CPU indexing kernels. Forward kernels only move values, so any split over threads is fine.
// Backward kernels sum colliding gradients; each output is owned by exactly one task and summed
// in a fixed order, which keeps them bit-identical for any thread count (kernels/indexing.h).
#include <algorithm>
#include <vector>

#include "kernels/cpu/strided_loop.h"
#include "kernels/indexing.h"

namespace hone::kernels {

namespace {

using cpu::parallel_chunks;

// Elements of work per parallel task: large enough to pay for waking a thread.
constexpr int64_t kWork = 1 << 14;

int64_t rows_per_task(int64_t row_len) { return std::max<int64_t>(1, kWork / std::max<int64_t>(1, row_len)); }

// The lines of an index space along `dim`: one line per combination of the other coordinates.
// Gives, for a line number, where it starts in the (contiguous) index array and in the
// (contiguous) x array; along the line the two advance by idx_step and x_step.
class Lines {
 public:
  Lines(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim)
      : dim_(dim), idx_shape_(idx_shape, idx_shape + ndim), idx_strides_(ndim), x_strides_(ndim) {
    int64_t si = 1, sx = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      idx_strides_[d] = si;
      x_strides_[d] = sx;
      si *= idx_shape[d];
      sx *= x_shape[d];
    }
    count_ = 1;
    for (int d = 0; d < ndim; ++d)
      if (d != dim) count_ *= idx_shape[d];
  }

  int64_t count() const { return count_; }
  int64_t length() const { return idx_shape_[dim_]; }
  int64_t idx_step() const { return idx_strides_[dim_]; }
  int64_t x_step() const { return x_strides_[dim_]; }

  void start(int64_t line, int64_t& idx_off, int64_t& x_off) const {
    idx_off = x_off = 0;
    for (int d = static_cast<int>(idx_shape_.size()) - 1; d >= 0; --d) {
      if (d == dim_) continue;
      const int64_t c = line % idx_shape_[d];
      line /= idx_shape_[d];
      idx_off += c * idx_strides_[d];
      x_off += c * x_strides_[d];
    }
  }

 private:
  int dim_;
  int64_t count_;
  std::vector<int64_t> idx_shape_, idx_strides_, x_strides_;
};

// Positions 0..n-1 grouped by their id, ascending within each group (a stable counting sort):
// positions with id v are order[starts[v] .. starts[v + 1]).
template <class I>
void bucket_by_id(int64_t n, const I* ids, int64_t N, std::vector<int64_t>& starts, std::vector<int64_t>& order) {
  starts.assign(N + 1, 0);
  order.resize(n);
  for (int64_t j = 0; j < n; ++j) ++starts[static_cast<int64_t>(ids[j]) + 1];
  for (int64_t v = 0; v < N; ++v) starts[v + 1] += starts[v];
  std::vector<int64_t> next(starts.begin(), starts.end() - 1);
  for (int64_t j = 0; j < n; ++j) order[next[static_cast<int64_t>(ids[j])]++] = j;
}

}  // namespace

template <class I> int64_t first_out_of_range(int64_t n, const I* ids, int64_t limit) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || static_cast<int64_t>(ids[i]) >= limit) return i;
  return -1;
}

template <class T, class I>
void index_select_forward(int64_t outer, int64_t N, int64_t inner, const T* x, int64_t n, const I* idx, T* out) {
  parallel_chunks(outer * n, rows_per_task(inner), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r / n, j = r % n;
      const T* src = x + (o * N + static_cast<int64_t>(idx[j])) * inner;
      std::copy(src, src + inner, out + r * inner);
    }
  });
}

template <class T, class I>
void index_add(int64_t outer, int64_t N, int64_t inner, int64_t n, const I* idx, const T* g, T* gx, bool accumulate) {
  using A = acc_t<T>;
  std::vector<int64_t> starts, order;
  bucket_by_id(n, idx, N, starts, order);
  // One task per block of output rows [o, v]: each row is summed by one thread, in ascending j.
  parallel_chunks(outer * N, rows_per_task(inner), [&](int64_t b, int64_t e) {
    std::vector<A> acc(inner);
    for (int64_t r = b; r < e; ++r) {
      const int64_t o = r / N, v = r % N;
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t k = starts[v]; k < starts[v + 1]; ++k) {
        const T* src = g + (o * n + order[k]) * inner;
        for (int64_t i = 0; i < inner; ++i) acc[i] += A(src[i]);
      }
      T* dst = gx + r * inner;
      if (!accumulate)
        for (int64_t i = 0; i < inner; ++i) dst[i] = T(acc[i]);
      else if (starts[v + 1] > starts[v])
        for (int64_t i = 0; i < inner; ++i) dst[i] = T(A(dst[i]) + A(T(acc[i])));
    }
  });
}

template <class T, class I>
void gather_forward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* x,
                    const I* idx, T* out) {
  const Lines lines(ndim, x_shape, idx_shape, dim);
  const int64_t len = lines.length(), is = lines.idx_step(), xs = lines.x_step();
  parallel_chunks(lines.count(), rows_per_task(len), [&](int64_t b, int64_t e) {
    for (int64_t l = b; l < e; ++l) {
      int64_t io, xo;
      lines.start(l, io, xo);
      for (int64_t j = 0; j < len; ++j)
        out[io + j * is] = x[xo + static_cast<int64_t>(idx[io + j * is]) * xs];
    }
  });
}

template <class T, class I>
void gather_backward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* g,
                     const I* idx, T* gx) {
  using A = acc_t<T>;
  int64_t x_numel = 1;
  for (int d = 0; d < ndim; ++d) x_numel *= x_shape[d];
  parallel_chunks(x_numel, kWork, [&](int64_t b, int64_t e) { std::fill(gx + b, gx + e, T(0.0f)); });
  // Positions that collide differ only in their coordinate along `dim`, so they lie on the same
  // line: one task per block of lines, each line summed in ascending order along it.
  const Lines lines(ndim, x_shape, idx_shape, dim);
  const int64_t len = lines.length(), is = lines.idx_step(), xs = lines.x_step();
  const int64_t x_len = x_shape[dim];
  parallel_chunks(lines.count(), rows_per_task(len + x_len), [&](int64_t b, int64_t e) {
    std::vector<A> acc(x_len);
    for (int64_t l = b; l < e; ++l) {
      int64_t io, xo;
      lines.start(l, io, xo);
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t j = 0; j < len; ++j) acc[static_cast<int64_t>(idx[io + j * is])] += A(g[io + j * is]);
      for (int64_t k = 0; k < x_len; ++k) gx[xo + k * xs] = T(acc[k]);
    }
  });
}

template int64_t first_out_of_range<int32_t>(int64_t, const int32_t*, int64_t);
template int64_t first_out_of_range<int64_t>(int64_t, const int64_t*, int64_t);

#define HONE_INSTANTIATE_FORWARD(T, I)                                                                 \
  template void index_select_forward<T, I>(int64_t, int64_t, int64_t, const T*, int64_t, const I*, T*); \
  template void gather_forward<T, I>(int, const int64_t*, const int64_t*, int, const T*, const I*, T*);
#define HONE_INSTANTIATE_BACKWARD(T, I)                                                            \
  template void index_add<T, I>(int64_t, int64_t, int64_t, int64_t, const I*, const T*, T*, bool); \
  template void gather_backward<T, I>(int, const int64_t*, const int64_t*, int, const T*, const I*, T*);
#define HONE_INSTANTIATE_ALL(I)                                                                        \
  HONE_INSTANTIATE_FORWARD(float, I) HONE_INSTANTIATE_FORWARD(double, I)                               \
  HONE_INSTANTIATE_FORWARD(bf16, I) HONE_INSTANTIATE_FORWARD(f16, I)                                   \
  HONE_INSTANTIATE_FORWARD(int32_t, I) HONE_INSTANTIATE_FORWARD(int64_t, I)                            \
  HONE_INSTANTIATE_FORWARD(uint8_t, I)                                                                 \
  HONE_INSTANTIATE_BACKWARD(float, I) HONE_INSTANTIATE_BACKWARD(double, I)                             \
  HONE_INSTANTIATE_BACKWARD(bf16, I) HONE_INSTANTIATE_BACKWARD(f16, I)
HONE_INSTANTIATE_ALL(int32_t)
HONE_INSTANTIATE_ALL(int64_t)
#undef HONE_INSTANTIATE_ALL
#undef HONE_INSTANTIATE_BACKWARD
#undef HONE_INSTANTIATE_FORWARD

}  // namespace hone::kernels
