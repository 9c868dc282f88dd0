// CUDA indexing kernels: index_select / embedding lookups, gather, and their deterministic
// scatter-add backwards, plus the device-side range check of indices.
//
// Backwards without atomics: the ids are sorted once with CUB's radix sort, which is stable, so
// the positions sharing an id come out in ascending order. Each output row [o, v, :] then belongs
// to one block, which finds its run of positions by binary search and sums them in that order:
// the same order as the CPU, and the same result on every run.
//
// Out-of-range ids never reach memory: forwards write zeros for them, backwards drop them (they
// are keyed past the last row), and check_indices records one for the engine to report.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

template <class I>
__global__ void check_indices_kernel(int64_t n, const I* ids, int64_t limit, int64_t allowed, int32_t op,
                                     IndexError* record) {
  HONE_GRID_STRIDE(i, n) {
    const int64_t v = int64_t(ids[i]);
    if (v != allowed && (v < 0 || v >= limit) && atomicCAS(&record->flag, 0, 1) == 0) {
      record->op = op;
      record->position = i;
      record->value = v;
      record->limit = limit;
    }
  }
}

template <class T, class I>
__global__ void index_select_kernel(int64_t outer, int64_t N, int64_t inner, const T* x, int64_t n, const I* idx,
                                    T* out) {
  HONE_GRID_STRIDE(e, outer * n * inner) {
    const int64_t i = e % inner, row = e / inner;
    const int64_t j = row % n, o = row / n;
    const int64_t v = int64_t(idx[j]);
    out[e] = (v >= 0 && v < N) ? x[(o * N + v) * inner + i] : store<T>(0.0f);
  }
}

// Sort keys: the id, or N for an id outside [0, N) (sorted past every real row, never summed).
template <class I>
__global__ void make_keys_kernel(int64_t n, const I* idx, int64_t N, uint32_t* keys, int32_t* pos) {
  HONE_GRID_STRIDE(j, n) {
    const int64_t v = int64_t(idx[j]);
    keys[j] = (v >= 0 && v < N) ? uint32_t(v) : uint32_t(N);
    pos[j] = int32_t(j);
  }
}

// One block per sorted index position (and outer slice); the block at the head of each run of equal
// keys sums the gradient rows of its run in sorted order (a fixed order: deterministic, no atomics) and
// adds them into its row of gx. Blocks of positions inside a run, and of out-of-range keys (N), do
// nothing. (One block per row of gx, each binary-searching its run, took 391 us for GPT-2's 50257 x 768
// table on an H200: 28 dependent loads a block, over 50257 blocks.)
template <class T>
__global__ void index_add_kernel(int64_t outer, int64_t N, int64_t inner, int64_t n, const uint32_t* keys,
                                 const int32_t* order, const T* g, T* gx) {
  using A = dacc_t<T>;
  for (int64_t b = blockIdx.x; b < outer * n; b += gridDim.x) {
    const int64_t o = b / n, k = b % n;
    const uint32_t key = keys[k];
    if (key >= uint64_t(N) || (k > 0 && keys[k - 1] == key)) continue;
    int64_t end = k + 1;
    while (end < n && keys[end] == key) ++end;
    T* row = gx + (o * N + int64_t(key)) * inner;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      A acc = 0;
      for (int64_t j = k; j < end; ++j) acc += load(g[(o * n + order[j]) * inner + i]);
      row[i] = store<T>(load(row[i]) + load(store<T>(acc)));
    }
  }
}

struct GatherShape {
  int ndim, dim;
  int64_t x_shape[kMaxDims], idx_shape[kMaxDims];
};

template <class T, class I>
__global__ void gather_forward_kernel(GatherShape s, int64_t n, const T* x, const I* idx, T* out) {
  HONE_GRID_STRIDE(p, n) {
    // Row-major coordinates of p in idx_shape, mapped to x with coordinate `dim` replaced.
    int64_t rest = p, x_off = 0, x_stride = 1;
    const int64_t v = int64_t(idx[p]);
    bool ok = v >= 0 && v < s.x_shape[s.dim];
    for (int d = s.ndim - 1; d >= 0; --d) {
      const int64_t c = rest % s.idx_shape[d];
      rest /= s.idx_shape[d];
      x_off += (d == s.dim ? v : c) * x_stride;
      x_stride *= s.x_shape[d];
    }
    out[p] = ok ? x[x_off] : store<T>(0.0f);
  }
}

// One thread per element of gx: it walks the one line of idx that can point at it (the line
// through its coordinates along `dim`), in ascending order.
template <class T, class I>
__global__ void gather_backward_kernel(GatherShape s, int64_t x_numel, const T* g, const I* idx, T* gx) {
  using A = dacc_t<T>;
  HONE_GRID_STRIDE(q, x_numel) {
    int64_t rest = q, base = 0, istride = 1, step = 0, target = 0;
    bool inside = true;
    for (int d = s.ndim - 1; d >= 0; --d) {
      const int64_t c = rest % s.x_shape[d];
      rest /= s.x_shape[d];
      if (d == s.dim) {
        target = c;
        step = istride;
      } else {
        if (c >= s.idx_shape[d]) inside = false;
        base += c * istride;
      }
      istride *= s.idx_shape[d];
    }
    A acc = 0;
    if (inside)
      for (int64_t j = 0; j < s.idx_shape[s.dim]; ++j) {
        const int64_t p = base + j * step;
        if (int64_t(idx[p]) == target) acc += load(g[p]);
      }
    gx[q] = store<T>(acc);
  }
}

GatherShape gather_shape(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim) {
  if (ndim > kMaxDims) throw std::invalid_argument("cuda gather: at most 12 dims");
  GatherShape s{};
  s.ndim = ndim;
  s.dim = dim;
  for (int d = 0; d < ndim; ++d) s.x_shape[d] = x_shape[d], s.idx_shape[d] = idx_shape[d];
  return s;
}

}  // namespace

template <class I>
void check_indices(int64_t n, const I* ids, int64_t limit, int64_t allowed, int32_t op, IndexError* record,
                   cudaStream_t stream) {
  if (n == 0 || !record) return;
  check_indices_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, ids, limit, allowed, op, record);
  check_launch("check_indices");
}

template <class T, class I>
void index_select_forward(int64_t outer, int64_t N, int64_t inner, const T* x, int64_t n, const I* idx, T* out,
                          cudaStream_t stream) {
  const int64_t total = outer * n * inner;
  if (total == 0) return;
  index_select_kernel<<<grid_for(total), kThreads, 0, stream>>>(outer, N, inner, dptr(x), n, idx, dptr(out));
  check_launch("index_select_forward");
}

template <class T, class I>
void index_add(int64_t outer, int64_t N, int64_t inner, int64_t n, const I* idx, const T* g, T* gx, cudaStream_t stream,
               bool accumulate) {
  if (outer * N * inner == 0) return;
  if (n > INT32_MAX || N >= INT32_MAX) throw std::invalid_argument("cuda index_add: more than 2^31 indices or rows");
  Scratch keys_in(n * sizeof(uint32_t), stream), keys_out(n * sizeof(uint32_t), stream);
  Scratch pos_in(n * sizeof(int32_t), stream), pos_out(n * sizeof(int32_t), stream);
  if (n > 0) {
    make_keys_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, idx, N, keys_in.as<uint32_t>(), pos_in.as<int32_t>());
    check_launch("index_add (keys)");
    int end_bit = 1;
    while (end_bit < 32 && (uint64_t(1) << end_bit) <= uint64_t(N)) ++end_bit;  // keys are <= N
    size_t temp_bytes = 0;
    check(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in.as<uint32_t>(), keys_out.as<uint32_t>(),
                                          pos_in.as<int32_t>(), pos_out.as<int32_t>(), int(n), 0, end_bit, stream),
          "cub::DeviceRadixSort (size query)");
    Scratch temp(temp_bytes, stream);
    check(cub::DeviceRadixSort::SortPairs(temp.as<void>(), temp_bytes, keys_in.as<uint32_t>(),
                                          keys_out.as<uint32_t>(), pos_in.as<int32_t>(), pos_out.as<int32_t>(),
                                          int(n), 0, end_bit, stream),
          "cub::DeviceRadixSort");
  }
  // Rows no index points at are 0 unless accumulating; the kernel adds into the rows that are.
  if (!accumulate)
    check(cudaMemsetAsync(gx, 0, size_t(outer * N * inner) * sizeof(T), stream), "cudaMemsetAsync (index_add)");
  if (n == 0) return;
  const int threads = inner >= 256 ? 256 : (inner >= 64 ? 64 : 32);
  index_add_kernel<<<row_blocks(outer * n), threads, 0, stream>>>(outer, N, inner, n, keys_out.as<uint32_t>(),
                                                                  pos_out.as<int32_t>(), dptr(g), dptr(gx));
  check_launch("index_add");
}

template <class T, class I>
void gather_forward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* x, const I* idx,
                    T* out, cudaStream_t stream) {
  const int64_t n = numel_of(ndim, idx_shape);
  if (n == 0) return;
  gather_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(gather_shape(ndim, x_shape, idx_shape, dim), n,
                                                              dptr(x), idx, dptr(out));
  check_launch("gather_forward");
}

template <class T, class I>
void gather_backward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* g, const I* idx,
                     T* gx, cudaStream_t stream) {
  const int64_t n = numel_of(ndim, x_shape);
  if (n == 0) return;
  gather_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(gather_shape(ndim, x_shape, idx_shape, dim), n,
                                                               dptr(g), idx, dptr(gx));
  check_launch("gather_backward");
}

template <class T, class I>
void embedding_forward(int64_t n, int64_t V, int64_t C, const I* ids, const T* weight, T* out, cudaStream_t stream) {
  index_select_forward<T, I>(1, V, C, weight, n, ids, out, stream);
}

template <class T, class I>
void embedding_backward(int64_t n, int64_t V, int64_t C, const I* ids, const T* gout, T* gweight, cudaStream_t stream,
                        bool accumulate) {
  index_add<T, I>(1, V, C, n, ids, gout, gweight, stream, accumulate);
}

template void check_indices<int32_t>(int64_t, const int32_t*, int64_t, int64_t, int32_t, IndexError*, cudaStream_t);
template void check_indices<int64_t>(int64_t, const int64_t*, int64_t, int64_t, int32_t, IndexError*, cudaStream_t);

#define HONE_INSTANTIATE_FORWARD(T, I)                                                                       \
  template void index_select_forward<T, I>(int64_t, int64_t, int64_t, const T*, int64_t, const I*, T*,       \
                                           cudaStream_t);                                                    \
  template void gather_forward<T, I>(int, const int64_t*, const int64_t*, int, const T*, const I*, T*, cudaStream_t);
#define HONE_INSTANTIATE_BACKWARD(T, I)                                                                                \
  template void index_add<T, I>(int64_t, int64_t, int64_t, int64_t, const I*, const T*, T*, cudaStream_t, bool);       \
  template void gather_backward<T, I>(int, const int64_t*, const int64_t*, int, const T*, const I*, T*, cudaStream_t); \
  template void embedding_forward<T, I>(int64_t, int64_t, int64_t, const I*, const T*, T*, cudaStream_t);              \
  template void embedding_backward<T, I>(int64_t, int64_t, int64_t, const I*, const T*, T*, cudaStream_t, bool);
#define HONE_INSTANTIATE_ALL(I)                                                                              \
  HONE_INSTANTIATE_FORWARD(float, I) HONE_INSTANTIATE_FORWARD(double, I)                                     \
  HONE_INSTANTIATE_FORWARD(bf16, I) HONE_INSTANTIATE_FORWARD(f16, I)                                         \
  HONE_INSTANTIATE_FORWARD(int32_t, I) HONE_INSTANTIATE_FORWARD(int64_t, I)                                  \
  HONE_INSTANTIATE_FORWARD(uint8_t, I)                                                                       \
  HONE_INSTANTIATE_BACKWARD(float, I) HONE_INSTANTIATE_BACKWARD(double, I)                                   \
  HONE_INSTANTIATE_BACKWARD(bf16, I) HONE_INSTANTIATE_BACKWARD(f16, I)
HONE_INSTANTIATE_ALL(int32_t)
HONE_INSTANTIATE_ALL(int64_t)
#undef HONE_INSTANTIATE_ALL
#undef HONE_INSTANTIATE_BACKWARD
#undef HONE_INSTANTIATE_FORWARD

}  // namespace hone::kernels::cuda
