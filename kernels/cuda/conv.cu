// CUDA conv2d: the entry points of kernels/cuda_api.h. With cuDNN (HONE_HAVE_CUDNN, see
// conv_cudnn.cpp) the forward, data and filter gradients go to cuDNN; without it, or for a shape
// cuDNN declines, the direct kernels below run instead. The bias add of the forward and the bias
// gradient are always ours.
//
// Direct kernels (simple, correct, deterministic, no atomics):
//   forward       one thread per output, summing its window over the group's input channels
//   data grad     one thread per input element, gathering over the outputs whose window holds it
//   filter grad   one block per weight element, a block-wide sum (in double) over the batch and
//                 the output pixels, in a fixed order
//   bias grad     one block per channel, likewise
#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

#if defined(HONE_HAVE_CUDNN)
namespace conv_detail {
// conv_cudnn.cpp: true when cuDNN did the work, false when it declines the shape (the caller
// then runs the direct kernel). Errors while running throw.
template <class T>
bool cudnn_forward(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* w, T* y, cudaStream_t stream);
template <class T>
bool cudnn_backward_data(const ConvContext& ctx, const Conv2dGeometry& g, const T* gy, const T* w, T* gx,
                         cudaStream_t stream);
template <class T>
bool cudnn_backward_filter(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* gy, T* gw,
                           cudaStream_t stream);
}  // namespace conv_detail
#endif

namespace {

constexpr int kReduceBlock = 256;

// The geometry as plain values for the kernels.
struct Geo {
  int64_t N, Ci, H, W, Co, kh, kw, sh, sw, ph, pw, dh, dw, G, Ho, Wo, Cig, Cog;
};

Geo make_geo(const Conv2dGeometry& g) {
  Geo e;
  e.N = g.batch;
  e.Ci = g.in_channels;
  e.H = g.in_h;
  e.W = g.in_w;
  e.Co = g.out_channels;
  e.kh = g.kernel_h;
  e.kw = g.kernel_w;
  e.sh = g.stride_h;
  e.sw = g.stride_w;
  e.ph = g.pad_h;
  e.pw = g.pad_w;
  e.dh = g.dilation_h;
  e.dw = g.dilation_w;
  e.G = g.groups;
  e.Ho = g.out_h();
  e.Wo = g.out_w();
  e.Cig = g.in_channels / g.groups;
  e.Cog = g.out_channels / g.groups;
  return e;
}

unsigned blocks_for(int64_t items) { return static_cast<unsigned>(items > 65535 * 16 ? 65535 * 16 : items); }

template <class T>
__global__ void conv_forward_kernel(Geo e, const T* x, const T* w, const T* b, T* y) {
  using A = dacc_t<T>;
  const int64_t n_out = e.N * e.Co * e.Ho * e.Wo;
  HONE_GRID_STRIDE(idx, n_out) {
    const int64_t ow = idx % e.Wo, oh = (idx / e.Wo) % e.Ho, co = (idx / (e.Wo * e.Ho)) % e.Co;
    const int64_t n = idx / (e.Wo * e.Ho * e.Co);
    const int64_t ci0 = co / e.Cog * e.Cig;
    A acc = 0;
    for (int64_t c = 0; c < e.Cig; ++c) {
      const T* xc = x + ((n * e.Ci + ci0 + c) * e.H) * e.W;
      const T* wc = w + (co * e.Cig + c) * e.kh * e.kw;
      for (int64_t ki = 0; ki < e.kh; ++ki) {
        const int64_t ih = oh * e.sh - e.ph + ki * e.dh;
        if (ih < 0 || ih >= e.H) continue;
        for (int64_t kj = 0; kj < e.kw; ++kj) {
          const int64_t iw = ow * e.sw - e.pw + kj * e.dw;
          if (iw < 0 || iw >= e.W) continue;
          acc += load(xc[ih * e.W + iw]) * load(wc[ki * e.kw + kj]);
        }
      }
    }
    // As on the CPU: the convolution is rounded to T, then the bias added.
    if (b) acc = load(store<T>(acc)) + load(b[co]);
    y[idx] = store<T>(acc);
  }
}

template <class T>
__global__ void bias_add_kernel(int64_t n, int64_t C, int64_t P, const T* b, T* y) {
  HONE_GRID_STRIDE(i, n) {
    const int64_t c = (i / P) % C;
    y[i] = store<T>(load(y[i]) + load(b[c]));
  }
}

template <class T>
__global__ void conv_backward_data_kernel(Geo e, const T* gy, const T* w, T* gx) {
  using A = dacc_t<T>;
  const int64_t n_in = e.N * e.Ci * e.H * e.W;
  HONE_GRID_STRIDE(idx, n_in) {
    const int64_t iw = idx % e.W, ih = (idx / e.W) % e.H, ci = (idx / (e.W * e.H)) % e.Ci;
    const int64_t n = idx / (e.W * e.H * e.Ci);
    const int64_t grp = ci / e.Cig, c = ci - grp * e.Cig;
    A acc = 0;
    for (int64_t co = grp * e.Cog; co < (grp + 1) * e.Cog; ++co) {
      const T* gyc = gy + ((n * e.Co + co) * e.Ho) * e.Wo;
      const T* wc = w + (co * e.Cig + c) * e.kh * e.kw;
      for (int64_t ki = 0; ki < e.kh; ++ki) {
        const int64_t th = ih + e.ph - ki * e.dh;
        if (th < 0 || th % e.sh != 0) continue;
        const int64_t oh = th / e.sh;
        if (oh >= e.Ho) continue;
        for (int64_t kj = 0; kj < e.kw; ++kj) {
          const int64_t tw = iw + e.pw - kj * e.dw;
          if (tw < 0 || tw % e.sw != 0) continue;
          const int64_t ow = tw / e.sw;
          if (ow >= e.Wo) continue;
          acc += load(gyc[oh * e.Wo + ow]) * load(wc[ki * e.kw + kj]);
        }
      }
    }
    gx[idx] = store<T>(acc);
  }
}

// Block e_idx: weight element (co, c, ki, kj); the sum over (n, oh, ow).
template <class T>
__global__ void conv_backward_weight_kernel(Geo e, const T* x, const T* gy, T* gw) {
  __shared__ double scratch[32];
  const int64_t n_w = e.Co * e.Cig * e.kh * e.kw, P = e.Ho * e.Wo, total = e.N * P;
  for (int64_t widx = blockIdx.x; widx < n_w; widx += gridDim.x) {
    const int64_t kj = widx % e.kw, ki = (widx / e.kw) % e.kh, c = (widx / (e.kw * e.kh)) % e.Cig;
    const int64_t co = widx / (e.kw * e.kh * e.Cig);
    const int64_t ci = co / e.Cog * e.Cig + c;
    double acc = 0;
    for (int64_t t = threadIdx.x; t < total; t += blockDim.x) {
      const int64_t n = t / P, q = t - n * P, oh = q / e.Wo, ow = q - oh * e.Wo;
      const int64_t ih = oh * e.sh - e.ph + ki * e.dh, iw = ow * e.sw - e.pw + kj * e.dw;
      if (ih < 0 || ih >= e.H || iw < 0 || iw >= e.W) continue;
      acc += double(load(gy[(n * e.Co + co) * P + q])) * double(load(x[((n * e.Ci + ci) * e.H + ih) * e.W + iw]));
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) gw[widx] = store<T>(acc);
  }
}

template <class T>
__global__ void conv_backward_bias_kernel(int64_t N, int64_t C, int64_t P, const T* gy, T* gb) {
  __shared__ double scratch[32];
  const int64_t total = N * P;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double acc = 0;
    for (int64_t t = threadIdx.x; t < total; t += blockDim.x) {
      const int64_t n = t / P, q = t - n * P;
      acc += double(load(gy[(n * C + c) * P + q]));
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) gb[c] = store<T>(acc);
  }
}

}  // namespace

bool conv2d_uses_cudnn() {
#if defined(HONE_HAVE_CUDNN)
  return true;
#else
  return false;
#endif
}

template <class T>
void conv2d_forward(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* weight, const T* bias, T* y,
                    cudaStream_t stream) {
  const Geo e = make_geo(g);
  const int64_t n_out = e.N * e.Co * e.Ho * e.Wo;
  if (e.N <= 0 || e.Co <= 0 || e.Ho * e.Wo <= 0) return;
  bool done = false;
#if defined(HONE_HAVE_CUDNN)
  done = conv_detail::cudnn_forward<T>(ctx, g, x, weight, y, stream);
#else
  (void)ctx;
#endif
  if (done) {
    if (bias) {
      bias_add_kernel<<<grid_for(n_out), kThreads, 0, stream>>>(n_out, e.Co, e.Ho * e.Wo, dptr(bias), dptr(y));
      check_launch("conv2d_forward (bias)");
    }
    return;
  }
  conv_forward_kernel<<<grid_for(n_out), kThreads, 0, stream>>>(e, dptr(x), dptr(weight), dptr(bias), dptr(y));
  check_launch("conv2d_forward (direct)");
}

template <class T>
void conv2d_backward_data(const ConvContext& ctx, const Conv2dGeometry& g, const T* gy, const T* weight, T* gx,
                          cudaStream_t stream) {
  const Geo e = make_geo(g);
  const int64_t n_in = e.N * e.Ci * e.H * e.W;
  if (e.N <= 0 || e.Ci <= 0 || n_in <= 0) return;
  if (e.Co <= 0 || e.Ho * e.Wo <= 0) {
    check(cudaMemsetAsync(gx, 0, size_t(n_in) * sizeof(T), stream), "cudaMemsetAsync (conv2d_backward_data)");
    return;
  }
  bool done = false;
#if defined(HONE_HAVE_CUDNN)
  done = conv_detail::cudnn_backward_data<T>(ctx, g, gy, weight, gx, stream);
#else
  (void)ctx;
#endif
  if (done) return;
  conv_backward_data_kernel<<<grid_for(n_in), kThreads, 0, stream>>>(e, dptr(gy), dptr(weight), dptr(gx));
  check_launch("conv2d_backward_data (direct)");
}

template <class T>
void conv2d_backward_weight(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* gy, T* gw,
                            cudaStream_t stream) {
  const Geo e = make_geo(g);
  const int64_t n_w = e.Co * e.Cig * e.kh * e.kw;
  if (n_w <= 0) return;
  if (e.N <= 0 || e.Ho * e.Wo <= 0) {
    check(cudaMemsetAsync(gw, 0, size_t(n_w) * sizeof(T), stream), "cudaMemsetAsync (conv2d_backward_weight)");
    return;
  }
  bool done = false;
#if defined(HONE_HAVE_CUDNN)
  done = conv_detail::cudnn_backward_filter<T>(ctx, g, x, gy, gw, stream);
#else
  (void)ctx;
#endif
  if (done) return;
  conv_backward_weight_kernel<<<blocks_for(n_w), kReduceBlock, 0, stream>>>(e, dptr(x), dptr(gy), dptr(gw));
  check_launch("conv2d_backward_weight (direct)");
}

template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* gb, cudaStream_t stream) {
  const int64_t C = g.out_channels;
  if (C <= 0) return;
  const int64_t P = g.out_h() * g.out_w();
  conv_backward_bias_kernel<<<blocks_for(C), kReduceBlock, 0, stream>>>(g.batch, C, P, dptr(gy), dptr(gb));
  check_launch("conv2d_backward_bias");
}

#define HONE_INSTANTIATE(T)                                                                                        \
  template void conv2d_forward<T>(const ConvContext&, const Conv2dGeometry&, const T*, const T*, const T*, T*,     \
                                  cudaStream_t);                                                                   \
  template void conv2d_backward_data<T>(const ConvContext&, const Conv2dGeometry&, const T*, const T*, T*,         \
                                        cudaStream_t);                                                             \
  template void conv2d_backward_weight<T>(const ConvContext&, const Conv2dGeometry&, const T*, const T*, T*,       \
                                          cudaStream_t);                                                           \
  template void conv2d_backward_bias<T>(const Conv2dGeometry&, const T*, T*, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
