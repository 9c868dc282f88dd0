// CUDA 2-d pooling on contiguous [planes, H, W] arrays, with the semantics of kernels/pool.h.
//
// Forwards: one thread per output, the window walked in row-major order as on the CPU (so
// max_pool2d picks the same first maximum, and a NaN wins the same way).
// Backwards: one thread per input element gathers the gradients of the outputs whose window
// holds it, in output (row-major) order, which is the order in which the CPU adds them into
// that element: deterministic, no atomics.
#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

// Outputs along one axis whose window [o s - p, o s - p + k) holds input i: [lo, hi).
__device__ __forceinline__ void window_range(int64_t i, int64_t k, int64_t s, int64_t p, int64_t out, int64_t& lo,
                                             int64_t& hi) {
  const int64_t a = i + p - k + 1;  // o s >= a
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = (i + p) / s + 1;  // o s <= i + p  (i + p >= 0)
  if (hi > out) hi = out;
  if (lo > hi) lo = hi;
}

__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <class T> __device__ __forceinline__ bool is_nan(T v) { return v != v; }

template <class T>
__global__ void max_pool_forward_kernel(Pool2dGeometry g, const T* x, T* y, int64_t* argmax) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * Ho * Wo;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, pl = idx / (Wo * Ho);
    const T* xp = x + pl * H * W;
    int64_t ih0 = oh * g.stride_h - g.pad_h;
    const int64_t ih1 = min(ih0 + g.kernel_h, H);
    ih0 = max(ih0, int64_t(0));
    int64_t iw0 = ow * g.stride_w - g.pad_w;
    const int64_t iw1 = min(iw0 + g.kernel_w, W);
    iw0 = max(iw0, int64_t(0));
    int64_t best = ih0 * W + iw0;
    A m = -INFINITY;
    for (int64_t ih = ih0; ih < ih1; ++ih)
      for (int64_t iw = iw0; iw < iw1; ++iw) {
        const A v = load(xp[ih * W + iw]);
        if (v > m || is_nan(v)) {
          m = v;
          best = ih * W + iw;
        }
      }
    y[idx] = store<T>(m);
    argmax[idx] = best;
  }
}

template <class T>
__global__ void max_pool_backward_kernel(Pool2dGeometry g, const T* gy, const int64_t* argmax, T* gx) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * H * W;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t iw = idx % W, ih = (idx / W) % H, pl = idx / (W * H);
    const int64_t self = ih * W + iw;
    int64_t oh0, oh1, ow0, ow1;
    window_range(ih, g.kernel_h, g.stride_h, g.pad_h, Ho, oh0, oh1);
    window_range(iw, g.kernel_w, g.stride_w, g.pad_w, Wo, ow0, ow1);
    const T* gyp = gy + pl * Ho * Wo;
    const int64_t* ap = argmax + pl * Ho * Wo;
    A s = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t q = oh * Wo + ow;
        if (ap[q] == self) s += load(gyp[q]);
      }
    gx[idx] = store<T>(s);
  }
}

template <class T>
__global__ void avg_pool_forward_kernel(Pool2dGeometry g, const T* x, T* y) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * Ho * Wo;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, pl = idx / (Wo * Ho);
    const T* xp = x + pl * H * W;
    int64_t ih0 = oh * g.stride_h - g.pad_h;
    int64_t ih1 = min(ih0 + g.kernel_h, H + g.pad_h);
    const int64_t rows = ih1 - ih0;
    ih0 = max(ih0, int64_t(0));
    ih1 = min(ih1, H);
    int64_t iw0 = ow * g.stride_w - g.pad_w;
    int64_t iw1 = min(iw0 + g.kernel_w, W + g.pad_w);
    const A div = A(rows * (iw1 - iw0));
    iw0 = max(iw0, int64_t(0));
    iw1 = min(iw1, W);
    A s = 0;
    for (int64_t ih = ih0; ih < ih1; ++ih)
      for (int64_t iw = iw0; iw < iw1; ++iw) s += load(xp[ih * W + iw]);
    y[idx] = store<T>(s / div);
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(Pool2dGeometry g, const T* gy, T* gx) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * H * W;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t iw = idx % W, ih = (idx / W) % H, pl = idx / (W * H);
    int64_t oh0, oh1, ow0, ow1;
    window_range(ih, g.kernel_h, g.stride_h, g.pad_h, Ho, oh0, oh1);
    window_range(iw, g.kernel_w, g.stride_w, g.pad_w, Wo, ow0, ow1);
    const T* gyp = gy + pl * Ho * Wo;
    A s = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t h0 = oh * g.stride_h - g.pad_h;
      const int64_t rows = min(h0 + g.kernel_h, H + g.pad_h) - h0;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const int64_t w0 = ow * g.stride_w - g.pad_w;
        const int64_t cols = min(w0 + g.kernel_w, W + g.pad_w) - w0;
        s += load(gyp[oh * Wo + ow]) / A(rows * cols);
      }
    }
    gx[idx] = store<T>(s);
  }
}

template <class T>
__global__ void adaptive_avg_forward_kernel(Pool2dGeometry g, const T* x, T* y) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * Ho * Wo;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, pl = idx / (Wo * Ho);
    const T* xp = x + pl * H * W;
    const int64_t ih0 = adaptive_start(oh, H, Ho), ih1 = adaptive_end(oh, H, Ho);
    const int64_t iw0 = adaptive_start(ow, W, Wo), iw1 = adaptive_end(ow, W, Wo);
    A s = 0;
    for (int64_t ih = ih0; ih < ih1; ++ih)
      for (int64_t iw = iw0; iw < iw1; ++iw) s += load(xp[ih * W + iw]);
    y[idx] = store<T>(s / A((ih1 - ih0) * (iw1 - iw0)));
  }
}

// Adaptive windows holding input i along one axis: a contiguous run of outputs starting at or
// after floor(i out / in) - 1 (the windows are monotone in both ends).
__device__ __forceinline__ int64_t adaptive_first(int64_t i, int64_t in, int64_t out) {
  int64_t o = (i * out) / in - 1;
  if (o < 0) o = 0;
  while (o < out && adaptive_end(o, in, out) <= i) ++o;
  return o;
}

template <class T>
__global__ void adaptive_avg_backward_kernel(Pool2dGeometry g, const T* gy, T* gx) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * H * W;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t iw = idx % W, ih = (idx / W) % H, pl = idx / (W * H);
    const T* gyp = gy + pl * Ho * Wo;
    const int64_t oh_first = adaptive_first(ih, H, Ho), ow_first = adaptive_first(iw, W, Wo);
    A s = 0;
    for (int64_t oh = oh_first; oh < Ho && adaptive_start(oh, H, Ho) <= ih; ++oh) {
      const int64_t ih0 = adaptive_start(oh, H, Ho), ih1 = adaptive_end(oh, H, Ho);
      if (ih >= ih1) continue;
      for (int64_t ow = ow_first; ow < Wo && adaptive_start(ow, W, Wo) <= iw; ++ow) {
        const int64_t iw0 = adaptive_start(ow, W, Wo), iw1 = adaptive_end(ow, W, Wo);
        if (iw >= iw1) continue;
        s += load(gyp[oh * Wo + ow]) / A((ih1 - ih0) * (iw1 - iw0));
      }
    }
    gx[idx] = store<T>(s);
  }
}

int64_t out_count(const Pool2dGeometry& g) { return g.planes * g.out_h * g.out_w; }
int64_t in_count(const Pool2dGeometry& g) { return g.planes * g.in_h * g.in_w; }

}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax, cudaStream_t stream) {
  const int64_t n = out_count(g);
  if (n <= 0) return;
  max_pool_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, dptr(x), dptr(y), argmax);
  check_launch("max_pool2d_forward");
}

template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx, cudaStream_t stream) {
  const int64_t n = in_count(g);
  if (n <= 0) return;
  max_pool_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, dptr(gy), argmax, dptr(gx));
  check_launch("max_pool2d_backward");
}

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, cudaStream_t stream) {
  const int64_t n = out_count(g);
  if (n <= 0) return;
  avg_pool_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, dptr(x), dptr(y));
  check_launch("avg_pool2d_forward");
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t n = in_count(g);
  if (n <= 0) return;
  avg_pool_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, dptr(gy), dptr(gx));
  check_launch("avg_pool2d_backward");
}

template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, cudaStream_t stream) {
  const int64_t n = out_count(g);
  if (n <= 0) return;
  adaptive_avg_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, dptr(x), dptr(y));
  check_launch("adaptive_avg_pool2d_forward");
}

template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t n = in_count(g);
  if (n <= 0) return;
  adaptive_avg_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, dptr(gy), dptr(gx));
  check_launch("adaptive_avg_pool2d_backward");
}

#define HONE_INSTANTIATE(T)                                                                                    \
  template void max_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, int64_t*, cudaStream_t);           \
  template void max_pool2d_backward<T>(const Pool2dGeometry&, const T*, const int64_t*, T*, cudaStream_t);    \
  template void avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, cudaStream_t);                     \
  template void avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*, cudaStream_t);                    \
  template void adaptive_avg_pool2d_forward<T>(const Pool2dGeometry&, const T*, T*, cudaStream_t);            \
  template void adaptive_avg_pool2d_backward<T>(const Pool2dGeometry&, const T*, T*, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
