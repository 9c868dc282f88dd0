// CUDA batch norm over dim 1 of a contiguous [N, C, S] array, with the semantics of
// kernels/batchnorm.h.
//
// Per-channel sums (statistics, and sum gy / sum gy xhat of the backward) are two-level and
// deterministic: the M = N * S values of a channel are cut into `parts` fixed slices (a function
// of M only); block (channel, slice) sums its slice in double (per-thread sums in a fixed stride
// order, then the butterfly block_sum) and writes one partial; a second kernel adds the
// partials of each channel in slice order. No atomics anywhere.
// Elementwise passes (normalisation, gx): one thread per element.
#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kSliceTarget = 16384;  // values per slice
constexpr int64_t kMaxParts = 64;

struct Slicing {
  int64_t parts, chunk;
  explicit Slicing(int64_t M) {
    parts = (M + kSliceTarget - 1) / kSliceTarget;
    parts = parts < 1 ? 1 : (parts > kMaxParts ? kMaxParts : parts);
    chunk = (M + parts - 1) / parts;
    if (chunk < 1) chunk = 1;
  }
};

enum SumMode : int { kSumX = 0, kSumSqDev = 1, kSumGrad = 2 };

// Partials of channel blockIdx.x over slice blockIdx.y:
//   kSumX:     p0 = sum x
//   kSumSqDev: p0 = sum (x - mean)^2        (difference and square in A, as on the CPU)
//   kSumGrad:  p0 = sum gy, p1 = sum gy (x - mean) invstd
template <int Mode, class T, class A>
__global__ void channel_partial_kernel(int64_t N, int64_t C, int64_t S, int64_t chunk, const T* x, const T* gy,
                                       const A* mean, const A* invstd, double* p0, double* p1) {
  __shared__ double scratch[32];
  const int64_t c = blockIdx.x, part = blockIdx.y, parts = gridDim.y;
  const int64_t M = N * S;
  const int64_t begin = part * chunk, end = min(M, begin + chunk);
  A mu = 0, is = 0;
  if (Mode != kSumX) mu = mean[c];
  if (Mode == kSumGrad) is = invstd[c];
  double s0 = 0, s1 = 0;
  for (int64_t m = begin + threadIdx.x; m < end; m += blockDim.x) {
    const int64_t n = m / S, i = (n * C + c) * S + (m - n * S);
    if (Mode == kSumX) {
      s0 += double(load(x[i]));
    } else if (Mode == kSumSqDev) {
      const A d = load(x[i]) - mu;
      s0 += double(d * d);
    } else {
      const A g = load(gy[i]);
      s0 += double(g);
      s1 += double(g * ((load(x[i]) - mu) * is));
    }
  }
  s0 = block_sum(s0, scratch);
  if (Mode == kSumGrad) s1 = block_sum(s1, scratch);
  if (threadIdx.x == 0) {
    p0[c * parts + part] = s0;
    if (Mode == kSumGrad) p1[c * parts + part] = s1;
  }
}

// out[c] = A(sum of the partials of c / divisor).
template <class A>
__global__ void channel_total_kernel(int64_t C, int64_t parts, const double* p, double divisor, A* out) {
  HONE_GRID_STRIDE(c, C) {
    double s = 0;
    for (int64_t k = 0; k < parts; ++k) s += p[c * parts + k];
    out[c] = A(s / divisor);
  }
}

// Backward totals: sum_g, sum_gx (kept for gx) and the parameter gradients.
template <class T, class A>
__global__ void grad_total_kernel(int64_t C, int64_t parts, const double* p0, const double* p1, A* sum_g, A* sum_gx,
                                  T* gweight, T* gbias) {
  HONE_GRID_STRIDE(c, C) {
    double s0 = 0, s1 = 0;
    for (int64_t k = 0; k < parts; ++k) {
      s0 += p0[c * parts + k];
      s1 += p1[c * parts + k];
    }
    const A g = A(s0), gxs = A(s1);
    sum_g[c] = g;
    sum_gx[c] = gxs;
    if (gbias) gbias[c] = store<T>(g);
    if (gweight) gweight[c] = store<T>(gxs);
  }
}

template <class T, class A>
__global__ void bn_forward_kernel(int64_t N, int64_t C, int64_t S, const T* x, const A* mean, const A* invstd,
                                  const T* weight, const T* bias, T* y) {
  const int64_t n = N * C * S;
  HONE_GRID_STRIDE(i, n) {
    const int64_t c = (i / S) % C;
    const A scale = invstd[c] * (weight ? load(weight[c]) : A(1));
    const A shift = bias ? load(bias[c]) : A(0);
    y[i] = store<T>((load(x[i]) - mean[c]) * scale + shift);
  }
}

template <class T, class A>
__global__ void bn_gx_kernel(int64_t N, int64_t C, int64_t S, const T* x, const T* gy, const A* mean,
                             const A* invstd, const T* weight, bool training, const A* sum_g, const A* sum_gx,
                             double M, T* gx) {
  const int64_t n = N * C * S;
  HONE_GRID_STRIDE(i, n) {
    const int64_t c = (i / S) % C;
    const A is = invstd[c], k = is * (weight ? load(weight[c]) : A(1));
    const A g = load(gy[i]);
    if (!training) {
      gx[i] = store<T>(g * k);
    } else {
      const A g_mean = A(double(sum_g[c]) / M), gx_mean = A(double(sum_gx[c]) / M);
      gx[i] = store<T>(k * (g - g_mean - (load(x[i]) - mean[c]) * is * gx_mean));
    }
  }
}

template <class A>
__global__ void train_epilogue_kernel(int64_t C, const A* mean, const A* var, double eps, double momentum,
                                      double unbias, const double* rm, double* rm_out, const double* rv,
                                      double* rv_out, A* invstd) {
  HONE_GRID_STRIDE(c, C) {
    const double mv = double(mean[c]), vv = double(var[c]);
    invstd[c] = A(1.0 / sqrt(vv + eps));
    if (rm) rm_out[c] = (1.0 - momentum) * rm[c] + momentum * mv;
    if (rv) rv_out[c] = (1.0 - momentum) * rv[c] + momentum * vv * unbias;
  }
}

template <class A>
__global__ void eval_stats_kernel(int64_t C, const double* rm, const double* rv, double eps, A* mean, A* invstd) {
  HONE_GRID_STRIDE(c, C) {
    mean[c] = A(rm[c]);
    invstd[c] = A(1.0 / sqrt(rv[c] + eps));
  }
}

}  // namespace

template <class T>
void batchnorm_stats(int64_t N, int64_t C, int64_t S, const T* x, acc_t<T>* mean, acc_t<T>* var,
                     cudaStream_t stream) {
  using A = acc_t<T>;
  if (C <= 0) return;
  const int64_t M = N * S;
  const Slicing sl(M);
  Scratch part(size_t(C * sl.parts) * sizeof(double), stream);
  const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(sl.parts));
  channel_partial_kernel<kSumX><<<grid, kBlock, 0, stream>>>(N, C, S, sl.chunk, dptr(x), dptr(x), (const A*)nullptr,
                                                             (const A*)nullptr, part.as<double>(), (double*)nullptr);
  check_launch("batchnorm_stats (sum partials)");
  channel_total_kernel<<<grid_for(C), kThreads, 0, stream>>>(C, sl.parts, part.as<double>(), double(M), mean);
  check_launch("batchnorm_stats (mean)");
  channel_partial_kernel<kSumSqDev><<<grid, kBlock, 0, stream>>>(N, C, S, sl.chunk, dptr(x), dptr(x),
                                                                 (const A*)mean, (const A*)nullptr,
                                                                 part.as<double>(), (double*)nullptr);
  check_launch("batchnorm_stats (squared-deviation partials)");
  channel_total_kernel<<<grid_for(C), kThreads, 0, stream>>>(C, sl.parts, part.as<double>(), double(M), var);
  check_launch("batchnorm_stats (variance)");
}

template <class A>
void batchnorm_train_epilogue(int64_t C, const A* mean, const A* var, double eps, double momentum, double M,
                              const double* running_mean, double* running_mean_out, const double* running_var,
                              double* running_var_out, A* invstd, cudaStream_t stream) {
  if (C <= 0) return;
  const double unbias = M / (M - 1.0);
  train_epilogue_kernel<<<grid_for(C), kThreads, 0, stream>>>(C, mean, var, eps, momentum, unbias, running_mean,
                                                               running_mean_out, running_var, running_var_out,
                                                               invstd);
  check_launch("batchnorm_train_epilogue");
}

template <class A>
void batchnorm_eval_stats(int64_t C, const double* running_mean, const double* running_var, double eps, A* mean,
                          A* invstd, cudaStream_t stream) {
  if (C <= 0) return;
  eval_stats_kernel<<<grid_for(C), kThreads, 0, stream>>>(C, running_mean, running_var, eps, mean, invstd);
  check_launch("batchnorm_eval_stats");
}

template <class T>
void batchnorm_forward(int64_t N, int64_t C, int64_t S, const T* x, const acc_t<T>* mean, const acc_t<T>* invstd,
                       const T* weight, const T* bias, T* y, cudaStream_t stream) {
  const int64_t n = N * C * S;
  if (n <= 0) return;
  bn_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(N, C, S, dptr(x), mean, invstd, dptr(weight), dptr(bias),
                                                           dptr(y));
  check_launch("batchnorm_forward");
}

template <class T>
void batchnorm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* gy, const acc_t<T>* mean,
                        const acc_t<T>* invstd, const T* weight, bool training, T* gx, T* gweight, T* gbias,
                        cudaStream_t stream) {
  using A = acc_t<T>;
  if (C <= 0) return;
  const int64_t M = N * S;
  const bool need_sums = gweight || gbias || (gx && training);
  Scratch sums(need_sums ? size_t(2 * C) * sizeof(A) : 0, stream);
  A* sum_g = sums.as<A>();
  A* sum_gx = need_sums ? sum_g + C : nullptr;
  if (need_sums) {
    const Slicing sl(M);
    Scratch part(size_t(2 * C * sl.parts) * sizeof(double), stream);
    double* p0 = part.as<double>();
    double* p1 = p0 + C * sl.parts;
    const dim3 grid(static_cast<unsigned>(C), static_cast<unsigned>(sl.parts));
    channel_partial_kernel<kSumGrad><<<grid, kBlock, 0, stream>>>(N, C, S, sl.chunk, dptr(x), dptr(gy), mean, invstd,
                                                                  p0, p1);
    check_launch("batchnorm_backward (partials)");
    grad_total_kernel<<<grid_for(C), kThreads, 0, stream>>>(C, sl.parts, (const double*)p0, (const double*)p1, sum_g,
                                                             sum_gx, dptr(gweight), dptr(gbias));
    check_launch("batchnorm_backward (totals)");
  }
  const int64_t n = N * C * S;
  if (!gx || n <= 0) return;
  bn_gx_kernel<<<grid_for(n), kThreads, 0, stream>>>(N, C, S, dptr(x), dptr(gy), mean, invstd, dptr(weight), training,
                                                      (const A*)sum_g, (const A*)sum_gx, double(M), dptr(gx));
  check_launch("batchnorm_backward (gx)");
}

#define HONE_INSTANTIATE(T)                                                                                       \
  template void batchnorm_stats<T>(int64_t, int64_t, int64_t, const T*, acc_t<T>*, acc_t<T>*, cudaStream_t);     \
  template void batchnorm_forward<T>(int64_t, int64_t, int64_t, const T*, const acc_t<T>*, const acc_t<T>*,       \
                                     const T*, const T*, T*, cudaStream_t);                                       \
  template void batchnorm_backward<T>(int64_t, int64_t, int64_t, const T*, const T*, const acc_t<T>*,             \
                                      const acc_t<T>*, const T*, bool, T*, T*, T*, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

#define HONE_INSTANTIATE_ACC(A)                                                                                   \
  template void batchnorm_train_epilogue<A>(int64_t, const A*, const A*, double, double, double, const double*,   \
                                            double*, const double*, double*, A*, cudaStream_t);                   \
  template void batchnorm_eval_stats<A>(int64_t, const double*, const double*, double, A*, A*, cudaStream_t);
HONE_INSTANTIATE_ACC(float)
HONE_INSTANTIATE_ACC(double)
#undef HONE_INSTANTIATE_ACC

}  // namespace hone::kernels::cuda
