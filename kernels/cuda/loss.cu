// CUDA fused cross-entropy: logits [rows, classes] (rows args.row_stride apart, so that a GEMM's
// padded rows are read in place) -> per-row log-sum-exp and loss, then the mean over counted rows.
//
// One block per row, one pass over it (online softmax: running max and rescaled sum exp(x - max),
// with sum x for label smoothing), in 16-byte loads where the row is aligned. Row losses go to
// scratch and are summed by a single block in a fixed order (in double), and the mean is written
// on the device: no host synchronisation.
//
// The gradient, softmax - smoothed one-hot over the count, can be formed in the forward itself
// (`glogits`): the block reads its row a second time right after the first, from the cache, and
// the logits are read from memory once in all instead of again in the backward (llm.c's fused
// classifier). That gradient is for the upstream gradient the caller expects (1, or a gradient
// accumulation weight times a loss scale: ops::LossGradScaleGuard); cross_entropy_scale_grad applies
// the one that comes in the backward and does nothing when it is the expected one. The number of
// counted rows it divides by is counted first (ce_count_kernel).
#include <algorithm>

#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

constexpr int kBlock = 256;
// The forward that also writes the gradient: its block re-reads the row it has just read, so few rows
// should be in flight per SM for that re-read to hit the cache (GPT-2's 50257-class bf16 rows are
// 100 KB: two 1024-thread blocks per SM keep ~26 MB in flight on an H100, inside its 50 MB L2; eight
// 256-thread ones would keep 105 MB).
constexpr int kGradBlock = 1024;
constexpr int kTotalBlock = 1024;

CrossEntropyArgs with_row_stride(CrossEntropyArgs a) {
  if (a.row_stride == 0) a.row_stride = a.classes;
  return a;
}

// Threads per row block: enough warps for one 16-byte pack of the row per thread, at most `most`
// (a 2-class classifier's rows get one warp, not 1024 threads with nothing to do).
template <class T>
unsigned row_threads(int64_t classes, int most) {
  const int64_t packs = (classes + Pack16<T>::kSize - 1) / Pack16<T>::kSize;
  const int64_t warps = std::max<int64_t>(1, std::min<int64_t>(most / 32, (packs + 31) / 32));
  return unsigned(32 * warps);
}

// exp(x) for the softmax sums and probabilities. float: exp2 of x log2(e) by the GPU's ex2.approx,
// one special-function instruction (relative error about 2^-22; results under 2^-126 flush to 0,
// which no sum of probabilities can see) where expf spends about eight; the row loop was bound by
// those instructions rather than by memory. The host (the CUDA emulator) takes std::exp.
__device__ __forceinline__ float exp_fast(float x) {
#if defined(__CUDA_ARCH__)
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x * 1.4426950408889634f));
  return y;
#else
  return std::exp(x);
#endif
}
__device__ __forceinline__ double exp_fast(double x) { return exp(x); }

// Calls f(pack) for this thread's share of x[0, n): Vec<A, V> packs of one 16-byte load each where
// x is aligned, then single elements (Vec<A, 1>) for the rest; elements converted to A.
template <class A, class T, class F>
__device__ __forceinline__ void for_each_pack(const T* x, int64_t n, F&& f) {
  constexpr int V = Pack16<T>::kSize;
  int64_t done = 0;
  if (aligned16(x)) {
    const int64_t chunks = n / V;
    for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) {
      const Pack16<T> in = reinterpret_cast<const Pack16<T>*>(x)[c];
      Vec<A, V> v;
#pragma unroll
      for (int j = 0; j < V; ++j) v.v[j] = load(in.v[j]);
      f(v);
    }
    done = chunks * V;
  }
  for (int64_t i = done + threadIdx.x; i < n; i += blockDim.x) f(Vec<A, 1>{{A(load(x[i]))}});
}

template <class I>
__device__ __forceinline__ bool counted_target(const CrossEntropyArgs& a, I target) {
  const int64_t t = int64_t(target);
  return t != a.ignore_index && t >= 0 && t < a.classes;
}

// The number of counted rows (targets neither ignored nor out of range), for the forward that writes
// the gradient: it divides by it.
template <class I>
__global__ void __launch_bounds__(kTotalBlock) ce_count_kernel(CrossEntropyArgs a, const I* targets, int64_t* count) {
  __shared__ double scratch[32];
  double c = 0;
  for (int64_t r = threadIdx.x; r < a.rows; r += blockDim.x) c += counted_target(a, targets[r]) ? 1 : 0;
  c = block_sum(c, scratch);
  if (threadIdx.x == 0) *count = static_cast<int64_t>(c);
}

// glogits (null: no gradient): the gradient for an upstream gradient of `upstream`, dividing by *count.
template <class T, class I, class A>
__global__ void __launch_bounds__(kGradBlock)
    ce_forward_kernel(CrossEntropyArgs a, const T* logits, const I* targets, A* lse, double* row_loss, uint8_t* counted,
                      IndexError* record, const int64_t* count, T* glogits, A upstream) {
  __shared__ A scratch[32];
  const int64_t C = a.classes;
  const A eps = A(a.label_smoothing);
  const bool smoothing = a.label_smoothing != 0.0;
  A grad_scale = 0;  // upstream / count: the backward's scale for that upstream gradient, to the bit
  if (glogits) {
    const int64_t n = *count;
    grad_scale = n ? upstream / A(n) : A(0);
  }
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const int64_t t = int64_t(targets[r]);
    if (!counted_target(a, targets[r])) {
      if (threadIdx.x == 0) {
        lse[r] = A(0);
        row_loss[r] = 0.0;
        counted[r] = 0;
        if (t != a.ignore_index && record && atomicCAS(&record->flag, 0, 1) == 0) {
          record->op = kOpCrossEntropy;
          record->position = r;
          record->value = t;
          record->limit = C;
        }
      }
      if (glogits)
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) glogits[r * a.row_stride + c] = store<T>(A(0));
      continue;
    }
    const T* x = logits + r * a.row_stride;
    // One pass (online softmax): each thread keeps its running max m and sum of exp(x - m); a pack's
    // max first, so that the sum is rescaled at most once per pack; then the block rescales every
    // thread's sum to the row's max. A NaN poisons the sum, as it should.
    A m = -INFINITY, se = 0, sx = 0;
    for_each_pack<A>(x, C, [&](const auto& p) {
      A pm = p.v[0];
#pragma unroll
      for (int j = 1; j < p.kSize; ++j) pm = p.v[j] > pm ? p.v[j] : pm;
      if (pm > m) {
        se *= exp_fast(m - pm);  // (0 while m is -inf)
        m = pm;
      }
      // While m is -inf every value so far is -inf (or NaN): exp(v - 0) gives their 0 (or NaN).
      const A base = m == -INFINITY ? A(0) : m;
#pragma unroll
      for (int j = 0; j < p.kSize; ++j) se += exp_fast(p.v[j] - base);
      if (smoothing) {
#pragma unroll
        for (int j = 0; j < p.kSize; ++j) sx += p.v[j];
      }
    });
    const A row_max = block_max(m, scratch);
    se = block_sum(m == -INFINITY ? A(0) : se * exp_fast(m - row_max), scratch);
    if (smoothing) sx = block_sum(sx, scratch);
    const A l = row_max + log_acc(se);
    if (threadIdx.x == 0) {
      lse[r] = l;
      A loss = (A(1) - eps) * (l - load(x[t]));
      if (smoothing) loss += eps * (l - sx / A(C));
      row_loss[r] = double(loss);
      counted[r] = 1;
    }
    if (glogits) {
      const A off = A(a.label_smoothing / double(C)), hit = A(1.0 - a.label_smoothing);
      map_vec(x, glogits + r * a.row_stride, C, threadIdx.x, blockDim.x, [&](int64_t c, T v) {
        A p = exp_fast(load(v) - l) - off;
        if (c == t) p -= hit;
        return store<T>(p * grad_scale);
      });
    }
  }
}

// 1024 threads: the bounds keep nvcc's register use launchable at that size.
template <class A>
__global__ void __launch_bounds__(kTotalBlock)
    ce_total_kernel(int64_t rows, const double* row_loss, const uint8_t* counted, A* loss, int64_t* count) {
  __shared__ double scratch[32];
  double s = 0, c = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    s += row_loss[r];
    c += counted[r];
  }
  s = block_sum(s, scratch);
  c = block_sum(c, scratch);
  if (threadIdx.x == 0) {
    const int64_t n = static_cast<int64_t>(c);
    *count = n;
    *loss = static_cast<A>(n ? s / double(n) : 0.0);
  }
}

template <class T, class I, class A>
__global__ void ce_backward_kernel(CrossEntropyArgs a, const T* logits, const I* targets, const A* lse,
                                   const A* grad_out, const int64_t* count, T* glogits) {
  const int64_t C = a.classes;
  const int64_t n = *count;
  const A scale = n ? *grad_out / A(n) : A(0);
  const A off = A(a.label_smoothing / double(C));
  const A hit = A(1.0 - a.label_smoothing);
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    T* g = glogits + r * a.row_stride;
    const int64_t t = int64_t(targets[r]);
    if (!counted_target(a, targets[r])) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) g[c] = store<T>(A(0));
      continue;
    }
    const T* x = logits + r * a.row_stride;
    const A l = lse[r];
    map_vec(x, g, C, threadIdx.x, blockDim.x, [&](int64_t c, T v) {
      A p = exp_fast(load(v) - l) - off;
      if (c == t) p -= hit;
      return store<T>(p * scale);
    });
  }
}

// out = grad * (*grad_out / formed_for) over the counted rows, grad having been formed for an upstream
// gradient of formed_for; the others' zeros are kept (written when out is not grad). In place (out ==
// grad) with the upstream gradient the forward expected there is nothing to do.
template <class T, class I, class A>
__global__ void ce_scale_grad_kernel(CrossEntropyArgs a, const I* targets, const A* grad_out, A formed_for,
                                     const T* grad, T* out) {
  if (*grad_out == formed_for && grad == out) return;
  const A g = *grad_out / formed_for;
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const T* in = grad + r * a.row_stride;
    T* o = out + r * a.row_stride;
    if (!counted_target(a, targets[r])) {
      if (grad != out)
        for (int64_t c = threadIdx.x; c < a.classes; c += blockDim.x) o[c] = store<T>(A(0));
      continue;
    }
    map_vec(in, o, a.classes, threadIdx.x, blockDim.x, [&](int64_t, T v) { return store<T>(load(v) * g); });
  }
}

}  // namespace

template <class T, class I>
void cross_entropy_forward(const CrossEntropyArgs& args, const T* logits, const I* targets, acc_t<T>* lse,
                           acc_t<T>* loss, int64_t* count, IndexError* record, cudaStream_t stream, T* glogits,
                           double glogits_upstream) {
  const CrossEntropyArgs a = with_row_stride(args);
  Scratch row_loss(a.rows * sizeof(double), stream), counted(a.rows, stream);
  if (a.rows > 0) {
    if (glogits) {
      ce_count_kernel<<<1, kTotalBlock, 0, stream>>>(a, targets, count);
      check_launch("cross_entropy_forward (count)");
    }
    ce_forward_kernel<<<row_blocks(a.rows), row_threads<T>(a.classes, glogits ? kGradBlock : kBlock), 0, stream>>>(
        a, dptr(logits), targets, lse, row_loss.as<double>(), counted.as<uint8_t>(), record, count, dptr(glogits),
        acc_t<T>(glogits_upstream));
    check_launch("cross_entropy_forward");
  }
  ce_total_kernel<<<1, kTotalBlock, 0, stream>>>(a.rows, row_loss.as<double>(), counted.as<uint8_t>(), loss, count);
  check_launch("cross_entropy_forward (totals)");
}

template <class T, class I>
void cross_entropy_backward(const CrossEntropyArgs& args, const T* logits, const I* targets, const acc_t<T>* lse,
                            const acc_t<T>* grad_out, const int64_t* count, T* glogits, cudaStream_t stream) {
  const CrossEntropyArgs a = with_row_stride(args);
  if (a.rows == 0) return;
  ce_backward_kernel<<<row_blocks(a.rows), row_threads<T>(a.classes, kBlock), 0, stream>>>(
      a, dptr(logits), targets, lse, grad_out, count, dptr(glogits));
  check_launch("cross_entropy_backward");
}

template <class T, class I>
void cross_entropy_scale_grad(const CrossEntropyArgs& args, const I* targets, const acc_t<T>* grad_out,
                              acc_t<T> formed_for, const T* grad, T* out, cudaStream_t stream) {
  const CrossEntropyArgs a = with_row_stride(args);
  if (a.rows == 0) return;
  // Blocks stride over the rows: for the expected upstream gradient in place, each block only reads it and
  // leaves, so fewer blocks than rows keep that launch short.
  const unsigned blocks = a.rows < 4096 ? unsigned(a.rows) : 4096u;
  ce_scale_grad_kernel<<<blocks, row_threads<T>(a.classes, kBlock), 0, stream>>>(a, targets, grad_out, formed_for,
                                                                                 dptr(grad), dptr(out));
  check_launch("cross_entropy_scale_grad");
}

#define HONE_INSTANTIATE(T, I)                                                                                         \
  template void cross_entropy_forward<T, I>(const CrossEntropyArgs&, const T*, const I*, acc_t<T>*, acc_t<T>*,         \
                                            int64_t*, IndexError*, cudaStream_t, T*, double);                          \
  template void cross_entropy_backward<T, I>(const CrossEntropyArgs&, const T*, const I*, const acc_t<T>*,             \
                                             const acc_t<T>*, const int64_t*, T*, cudaStream_t);                       \
  template void cross_entropy_scale_grad<T, I>(const CrossEntropyArgs&, const I*, const acc_t<T>*, acc_t<T>, const T*, \
                                               T*, cudaStream_t);
#define HONE_INSTANTIATE_T(T) HONE_INSTANTIATE(T, int32_t) HONE_INSTANTIATE(T, int64_t)
HONE_INSTANTIATE_T(float)
HONE_INSTANTIATE_T(double)
HONE_INSTANTIATE_T(bf16)
HONE_INSTANTIATE_T(f16)
#undef HONE_INSTANTIATE_T
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
