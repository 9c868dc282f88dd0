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

template <class T> __device__ __forceinline__ bool is_nan(T v) { return v != v; }

// Element idx of a contiguous [planes, rows, cols] array.
struct Pos {
  int64_t plane, r, c;
};
__device__ __forceinline__ Pos pos_of(int64_t idx, int64_t rows, int64_t cols) {
  return {idx / (rows * cols), (idx / cols) % rows, idx % cols};
}

// The outputs whose windows hold input (ih, iw): [oh0, oh1) x [ow0, ow1).
struct Holders {
  int64_t oh0, oh1, ow0, ow1;
};
__device__ __forceinline__ Holders holders_of(const Pool2dGeometry& g, int64_t ih, int64_t iw) {
  Holders o;
  window_range(ih, g.kernel_h, g.stride_h, g.pad_h, g.out_h, o.oh0, o.oh1);
  window_range(iw, g.kernel_w, g.stride_w, g.pad_w, g.out_w, o.ow0, o.ow1);
  return o;
}

template <class T>
__global__ void max_pool_forward_kernel(Pool2dGeometry g, const T* x, T* y, int64_t* argmax) {
  using A = dacc_t<T>;
  const int64_t W = g.in_w, n = g.planes * g.out_h * g.out_w;
  HONE_GRID_STRIDE(idx, n) {
    const Pos o = pos_of(idx, g.out_h, g.out_w);
    const T* xp = x + o.plane * g.in_h * W;
    const PoolWindow w = pool_window(g, o.r, o.c);
    int64_t best = w.h0 * W + w.w0;
    A m = -INFINITY;
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) {
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
  const int64_t Wo = g.out_w, n = g.planes * g.in_h * g.in_w;
  HONE_GRID_STRIDE(idx, n) {
    const Pos i = pos_of(idx, g.in_h, g.in_w);
    const int64_t self = i.r * g.in_w + i.c;
    const Holders h = holders_of(g, i.r, i.c);
    const T* gyp = gy + i.plane * g.out_h * Wo;
    const int64_t* ap = argmax + i.plane * g.out_h * Wo;
    A s = 0;
    for (int64_t oh = h.oh0; oh < h.oh1; ++oh)
      for (int64_t ow = h.ow0; ow < h.ow1; ++ow) {
        const int64_t q = oh * Wo + ow;
        if (ap[q] == self) s += load(gyp[q]);
      }
    gx[idx] = store<T>(s);
  }
}

template <class T>
__global__ void avg_pool_forward_kernel(Pool2dGeometry g, const T* x, T* y) {
  using A = dacc_t<T>;
  const int64_t W = g.in_w, n = g.planes * g.out_h * g.out_w;
  HONE_GRID_STRIDE(idx, n) {
    const Pos o = pos_of(idx, g.out_h, g.out_w);
    const T* xp = x + o.plane * g.in_h * W;
    const PoolWindow w = pool_window(g, o.r, o.c);
    A s = 0;
    for (int64_t ih = w.h0; ih < w.h1; ++ih)
      for (int64_t iw = w.w0; iw < w.w1; ++iw) s += load(xp[ih * W + iw]);
    y[idx] = store<T>(s / A(w.padded_count));
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(Pool2dGeometry g, const T* gy, T* gx) {
  using A = dacc_t<T>;
  const int64_t Wo = g.out_w, n = g.planes * g.in_h * g.in_w;
  HONE_GRID_STRIDE(idx, n) {
    const Pos i = pos_of(idx, g.in_h, g.in_w);
    const Holders h = holders_of(g, i.r, i.c);
    const T* gyp = gy + i.plane * g.out_h * Wo;
    A s = 0;
    for (int64_t oh = h.oh0; oh < h.oh1; ++oh)
      for (int64_t ow = h.ow0; ow < h.ow1; ++ow) s += load(gyp[oh * Wo + ow]) / A(pool_window(g, oh, ow).padded_count);
    gx[idx] = store<T>(s);
  }
}

template <class T>
__global__ void adaptive_avg_forward_kernel(Pool2dGeometry g, const T* x, T* y) {
  using A = dacc_t<T>;
  const int64_t H = g.in_h, W = g.in_w, Ho = g.out_h, Wo = g.out_w, n = g.planes * Ho * Wo;
  HONE_GRID_STRIDE(idx, n) {
    const Pos o = pos_of(idx, Ho, Wo);
    const T* xp = x + o.plane * H * W;
    const int64_t ih0 = adaptive_start(o.r, H, Ho), ih1 = adaptive_end(o.r, H, Ho);
    const int64_t iw0 = adaptive_start(o.c, W, Wo), iw1 = adaptive_end(o.c, W, Wo);
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
    const Pos in = pos_of(idx, H, W);
    const int64_t ih = in.r, iw = in.c;
    const T* gyp = gy + in.plane * Ho * Wo;
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

namespace {
// One grid-stride launch of `kernel` over n elements (outputs for the forwards, inputs for the
// backwards); nothing for an empty tensor.
template <class Kernel, class... Args>
void launch_over(int64_t n, cudaStream_t stream, const char* what, Kernel kernel, Args... args) {
  if (n <= 0) return;
  kernel<<<grid_for(n), kThreads, 0, stream>>>(args...);
  check_launch(what);
}
}  // namespace

template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax, cudaStream_t stream) {
  launch_over(out_count(g), stream, "max_pool2d_forward", max_pool_forward_kernel<dev_t<T>>, g, dptr(x), dptr(y),
              argmax);
}

template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx, cudaStream_t stream) {
  launch_over(in_count(g), stream, "max_pool2d_backward", max_pool_backward_kernel<dev_t<T>>, g, dptr(gy), argmax,
              dptr(gx));
}

template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, cudaStream_t stream) {
  launch_over(out_count(g), stream, "avg_pool2d_forward", avg_pool_forward_kernel<dev_t<T>>, g, dptr(x), dptr(y));
}

template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx, cudaStream_t stream) {
  launch_over(in_count(g), stream, "avg_pool2d_backward", avg_pool_backward_kernel<dev_t<T>>, g, dptr(gy), dptr(gx));
}

template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, cudaStream_t stream) {
  launch_over(out_count(g), stream, "adaptive_avg_pool2d_forward", adaptive_avg_forward_kernel<dev_t<T>>, g, dptr(x),
              dptr(y));
}

template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx, cudaStream_t stream) {
  launch_over(in_count(g), stream, "adaptive_avg_pool2d_backward", adaptive_avg_backward_kernel<dev_t<T>>, g,
              dptr(gy), dptr(gx));
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
