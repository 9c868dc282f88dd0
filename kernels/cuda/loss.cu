// CUDA fused cross-entropy: logits [rows, classes] (rows args.row_stride apart, so that a GEMM's
// padded rows are read in place) -> per-row log-sum-exp and loss, then the mean over counted rows;
// the backward forms softmax - smoothed one-hot directly from the logits and the saved lse, so the
// probabilities are never materialised in the forward.
//
// One block per row, one pass over it (online softmax: running max and rescaled sum exp(x - max),
// with sum x for label smoothing), in 16-byte loads where the row is aligned. Row losses go to
// scratch and are summed by a single block in a fixed order (in double), and the mean is written
// on the device: no host synchronisation.
#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int kTotalBlock = 1024;

CrossEntropyArgs with_row_stride(CrossEntropyArgs a) {
  if (a.row_stride == 0) a.row_stride = a.classes;
  return a;
}

template <class T, class I, class A>
__global__ void ce_forward_kernel(CrossEntropyArgs a, const T* logits, const I* targets, A* lse, double* row_loss,
                                  uint8_t* counted, IndexError* record) {
  __shared__ A scratch[32];
  const int64_t C = a.classes;
  const A eps = A(a.label_smoothing);
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const int64_t t = int64_t(targets[r]);
    const bool ignored = t == a.ignore_index;
    const bool bad = !ignored && (t < 0 || t >= C);
    if (ignored || bad) {
      if (threadIdx.x == 0) {
        lse[r] = A(0);
        row_loss[r] = 0.0;
        counted[r] = 0;
        if (bad && record && atomicCAS(&record->flag, 0, 1) == 0) {
          record->op = kOpCrossEntropy;
          record->position = r;
          record->value = t;
          record->limit = C;
        }
      }
      continue;
    }
    const T* x = logits + r * a.row_stride;
    // One pass (online softmax): each thread keeps its running max m and sum of exp(x - m), rescaling
    // the sum when the max grows; the block then rescales every thread's sum to the row's max.
    A m = -INFINITY, se = 0, sx = 0;
    for_each_vec(x, C, threadIdx.x, blockDim.x, [&](int64_t, T raw) {
      const A v = load(raw);
      if (v > m) {
        se = se * exp_acc(m - v) + A(1);
        m = v;
      } else if (v != -INFINITY) {  // (a NaN lands here and poisons the sum, as it should)
        se += exp_acc(v - m);
      }
      sx += v;
    });
    const A row_max = block_max(m, scratch);
    se = block_sum(m == -INFINITY ? A(0) : se * exp_acc(m - row_max), scratch);
    m = row_max;
    if (a.label_smoothing != 0.0) sx = block_sum(sx, scratch);
    if (threadIdx.x == 0) {
      const A l = m + log_acc(se);
      lse[r] = l;
      A loss = (A(1) - eps) * (l - load(x[t]));
      if (a.label_smoothing != 0.0) loss += eps * (l - sx / A(C));
      row_loss[r] = double(loss);
      counted[r] = 1;
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
    if (t == a.ignore_index || t < 0 || t >= C) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) g[c] = store<T>(A(0));
      continue;
    }
    const T* x = logits + r * a.row_stride;
    const A l = lse[r];
    map_vec(x, g, C, threadIdx.x, blockDim.x, [&](int64_t c, T v) {
      A p = exp_acc(load(v) - l) - off;
      if (c == t) p -= hit;
      return store<T>(p * scale);
    });
  }
}

}  // namespace

template <class T, class I>
void cross_entropy_forward(const CrossEntropyArgs& args, const T* logits, const I* targets, acc_t<T>* lse,
                           acc_t<T>* loss, int64_t* count, IndexError* record, cudaStream_t stream) {
  const CrossEntropyArgs a = with_row_stride(args);
  Scratch row_loss(a.rows * sizeof(double), stream), counted(a.rows, stream);
  if (a.rows > 0) {
    ce_forward_kernel<<<row_blocks(a.rows), kBlock, 0, stream>>>(a, dptr(logits), targets, lse,
                                                                  row_loss.as<double>(), counted.as<uint8_t>(), record);
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
  ce_backward_kernel<<<row_blocks(a.rows), kBlock, 0, stream>>>(a, dptr(logits), targets, lse, grad_out, count,
                                                                 dptr(glogits));
  check_launch("cross_entropy_backward");
}

#define HONE_INSTANTIATE(T, I)                                                                              \
  template void cross_entropy_forward<T, I>(const CrossEntropyArgs&, const T*, const I*, acc_t<T>*,         \
                                            acc_t<T>*, int64_t*, IndexError*, cudaStream_t);                \
  template void cross_entropy_backward<T, I>(const CrossEntropyArgs&, const T*, const I*, const acc_t<T>*,  \
                                             const acc_t<T>*, const int64_t*, T*, cudaStream_t);
#define HONE_INSTANTIATE_T(T) HONE_INSTANTIATE(T, int32_t) HONE_INSTANTIATE(T, int64_t)
HONE_INSTANTIATE_T(float)
HONE_INSTANTIATE_T(double)
HONE_INSTANTIATE_T(bf16)
HONE_INSTANTIATE_T(f16)
#undef HONE_INSTANTIATE_T
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
