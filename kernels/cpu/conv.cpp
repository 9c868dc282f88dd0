// CPU conv2d as GEMMs over im2col buffers.
//
// The batch is cut into chunks of `nb` images, nb chosen from the geometry alone so that a chunk
// has about kTargetCols = 256 output pixels (one image for 16x16 and larger outputs, several for
// the small late-stage feature maps, which would give the GEMM too narrow a product; 256 rather
// than 512 leaves batch-32 4x4 maps two chunks to run in parallel). Per chunk and group:
//   forward      y_g [C_out/g, cols]   = W_g [C_out/g, K] . col [K, cols]     (K = C_in/g kH kW)
//   data grad    dcol [K, cols]        = W_g^T . gy_g [C_out/g, cols], then col2im into gx
//   weight grad  gw_g [C_out/g, K]    += gy_g . col^T
// where cols = images in the chunk x H_out W_out. A 1x1 stride-1 unpadded convolution of a
// one-image chunk uses x (and writes gx) directly: a plain GEMM, no im2col.
//
// Threads: forward and data gradient run chunks in parallel (each thread with its own buffers,
// each image written by exactly one chunk); when there are fewer chunks than threads the chunks
// run one after another and the GEMM itself goes parallel. The weight gradient sums the chunks
// into a fixed number of partial slots (a function of the geometry only), each slot summing its
// chunks in order, then adds the slots in order. sgemm splits only M/N between threads, never K,
// so every result is bit-identical for any thread count.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/rowwise.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/gemm.h"

namespace hone::kernels {

namespace {

constexpr int64_t kTargetCols = 256;  // output pixels per chunk (GEMM N for the forward)
constexpr int64_t kMaxSlots = 4;      // partial weight gradients

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
  else
    dgemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
}

struct Plan {
  int64_t Ho, Wo, P;    // output size, P = Ho * Wo
  int64_t HW;           // input plane
  int64_t Cig, Cog, K;  // per group: input channels, output channels, GEMM depth
  int64_t nb, nchunks;  // images per chunk, chunks
  bool direct;          // 1x1, stride 1, no padding: the input plane is the im2col row

  explicit Plan(const Conv2dGeometry& g) {
    Ho = g.out_h();
    Wo = g.out_w();
    P = Ho * Wo;
    HW = g.in_h * g.in_w;
    Cig = g.in_channels / g.groups;
    Cog = g.out_channels / g.groups;
    K = Cig * g.kernel_h * g.kernel_w;
    nb = std::clamp<int64_t>((kTargetCols + P - 1) / P, 1, std::max<int64_t>(g.batch, 1));
    nchunks = (g.batch + nb - 1) / nb;
    direct = g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 &&
             g.pad_h == 0 && g.pad_w == 0;
  }
  int64_t images(int64_t chunk, int64_t batch) const { return std::min(nb, batch - chunk * nb); }
};

// The valid output-column range [lo, hi) of one kernel column: iw = ow * sw + off in [0, W).
inline void valid_range(int64_t off, int64_t stride, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = (in - 1 - off) < 0 ? 0 : (in - 1 - off) / stride + 1;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

// col rows (c, ki, kj) x P columns (row stride ld) from one image's group channels x [Cig, H, W].
template <class T>
void im2col(const Conv2dGeometry& g, const Plan& p, const T* x, T* col, int64_t ld) {
  const int64_t H = g.in_h, W = g.in_w, Wo = p.Wo, sw = g.stride_w;
  if (p.direct) {
    for (int64_t c = 0; c < p.Cig; ++c) std::memcpy(col + c * ld, x + c * p.HW, sizeof(T) * p.HW);
    return;
  }
  for (int64_t c = 0; c < p.Cig; ++c)
    for (int64_t ki = 0; ki < g.kernel_h; ++ki)
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * ld;
        const T* xc = x + c * p.HW;
        const int64_t oh_off = ki * g.dilation_h - g.pad_h, ow_off = kj * g.dilation_w - g.pad_w;
        int64_t lo, hi;
        valid_range(ow_off, sw, W, Wo, lo, hi);
        for (int64_t oh = 0; oh < p.Ho; ++oh) {
          T* r = row + oh * Wo;
          const int64_t ih = oh * g.stride_h + oh_off;
          if (ih < 0 || ih >= H) {
            std::fill(r, r + Wo, T(0));
            continue;
          }
          const T* xr = xc + ih * W + ow_off;
          std::fill(r, r + lo, T(0));
          if (sw == 1) {
            std::memcpy(r + lo, xr + lo, sizeof(T) * (hi - lo));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow * sw];
          }
          std::fill(r + hi, r + Wo, T(0));
        }
      }
}

// gx [Cig, H, W] += the columns of dcol (the adjoint of im2col). gx must be initialised.
template <class T>
void col2im(const Conv2dGeometry& g, const Plan& p, const T* col, int64_t ld, T* gx) {
  const int64_t H = g.in_h, W = g.in_w, Wo = p.Wo, sw = g.stride_w;
  if (p.direct) {
    for (int64_t c = 0; c < p.Cig; ++c) {
      T* d = gx + c * p.HW;
      const T* s = col + c * ld;
      for (int64_t i = 0; i < p.HW; ++i) d[i] += s[i];
    }
    return;
  }
  for (int64_t c = 0; c < p.Cig; ++c)
    for (int64_t ki = 0; ki < g.kernel_h; ++ki)
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        const T* row = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * ld;
        T* gc = gx + c * p.HW;
        const int64_t oh_off = ki * g.dilation_h - g.pad_h, ow_off = kj * g.dilation_w - g.pad_w;
        int64_t lo, hi;
        valid_range(ow_off, sw, W, Wo, lo, hi);
        for (int64_t oh = 0; oh < p.Ho; ++oh) {
          const int64_t ih = oh * g.stride_h + oh_off;
          if (ih < 0 || ih >= H) continue;
          const T* r = row + oh * Wo;
          T* gr = gc + ih * W + ow_off;
          if (sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) gr[ow] += r[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) gr[ow * sw] += r[ow];
          }
        }
      }
}

// Runs body(chunk, buffers) for every chunk: in parallel with per-thread buffers when there are
// at least as many chunks as threads, else one after another (the GEMMs then use the threads).
template <class T, class Body>
void for_each_chunk(int64_t nchunks, size_t buf0, size_t buf1, Body&& body) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (nt > 1 && nchunks >= nt) {
#pragma omp parallel num_threads(nt)
    {
      std::vector<T> b0(buf0), b1(buf1);
#pragma omp for schedule(dynamic, 1)
      for (int64_t ch = 0; ch < nchunks; ++ch) body(ch, b0.data(), b1.data());
    }
  } else {
    std::vector<T> b0(buf0), b1(buf1);
    for (int64_t ch = 0; ch < nchunks; ++ch) body(ch, b0.data(), b1.data());
  }
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  const Plan p(g);
  const int64_t Ci = g.in_channels, Co = g.out_channels, G = g.groups;
  if (g.batch <= 0 || Co <= 0 || p.P <= 0) return;
  // Buffers: im2col [K, nb P] and (several images) the GEMM result [Cog, nb P].
  const bool need_col = !(p.direct && p.nb == 1);
  const size_t col_size = need_col ? size_t(p.K * p.nb * p.P) : 0;
  const size_t tmp_size = p.nb > 1 ? size_t(p.Cog * p.nb * p.P) : 0;
  for_each_chunk<T>(p.nchunks, col_size, tmp_size, [&](int64_t ch, T* col, T* tmp) {
    const int64_t n0 = ch * p.nb, nbc = p.images(ch, g.batch), cols = nbc * p.P;
    for (int64_t gi = 0; gi < G; ++gi) {
      const T* B = nullptr;
      int64_t ldb = cols;
      if (!need_col) {
        B = x + (n0 * Ci + gi * p.Cig) * p.HW;
      } else {
        for (int64_t i = 0; i < nbc; ++i)
          im2col(g, p, x + ((n0 + i) * Ci + gi * p.Cig) * p.HW, col + i * p.P, cols);
        B = col;
      }
      const T* A = w + gi * p.Cog * p.K;
      if (nbc == 1) {  // straight into y
        gemm<T>(false, false, p.Cog, p.P, p.K, A, p.K, B, ldb, T(0), y + (n0 * Co + gi * p.Cog) * p.P, p.P);
        continue;
      }
      gemm<T>(false, false, p.Cog, cols, p.K, A, p.K, B, ldb, T(0), tmp, cols);
      for (int64_t i = 0; i < nbc; ++i)
        for (int64_t r = 0; r < p.Cog; ++r)
          std::memcpy(y + ((n0 + i) * Co + gi * p.Cog + r) * p.P, tmp + r * cols + i * p.P, sizeof(T) * p.P);
    }
    if (bias)
      for (int64_t i = 0; i < nbc; ++i)
        for (int64_t c = 0; c < Co; ++c) {
          T* yr = y + ((n0 + i) * Co + c) * p.P;
          const T b = bias[c];
          for (int64_t q = 0; q < p.P; ++q) yr[q] += b;
        }
  });
}

// Group gi's output gradients for the chunk's images [n0, n0 + nbc) as one [Cog, nbc * P] matrix:
// gy itself for a single image, else gathered into tmp. The matrix and its leading dimension.
template <class T>
std::pair<const T*, int64_t> group_gradients(const Plan& p, const T* gy, int64_t Co, int64_t n0, int64_t nbc,
                                             int64_t gi, T* tmp) {
  if (nbc == 1) return {gy + (n0 * Co + gi * p.Cog) * p.P, p.P};
  const int64_t cols = nbc * p.P;
  for (int64_t i = 0; i < nbc; ++i)
    for (int64_t r = 0; r < p.Cog; ++r)
      std::memcpy(tmp + r * cols + i * p.P, gy + ((n0 + i) * Co + gi * p.Cog + r) * p.P, sizeof(T) * p.P);
  return {tmp, cols};
}

template <class T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* gy, const T* w, T* gx) {
  const Plan p(g);
  const int64_t Ci = g.in_channels, Co = g.out_channels, G = g.groups;
  if (g.batch <= 0 || Ci <= 0) return;
  if (Co <= 0 || p.P <= 0) {
    std::fill(gx, gx + g.batch * Ci * p.HW, T(0));
    return;
  }
  const bool direct_out = p.direct && p.nb == 1;  // the GEMM writes gx itself
  const size_t col_size = direct_out ? 0 : size_t(p.K * p.nb * p.P);
  const size_t tmp_size = p.nb > 1 ? size_t(p.Cog * p.nb * p.P) : 0;
  for_each_chunk<T>(p.nchunks, col_size, tmp_size, [&](int64_t ch, T* dcol, T* tmp) {
    const int64_t n0 = ch * p.nb, nbc = p.images(ch, g.batch), cols = nbc * p.P;
    if (!direct_out) std::fill(gx + n0 * Ci * p.HW, gx + (n0 + nbc) * Ci * p.HW, T(0));
    for (int64_t gi = 0; gi < G; ++gi) {
      const auto [B, ldb] = group_gradients(p, gy, Co, n0, nbc, gi, tmp);
      const T* A = w + gi * p.Cog * p.K;  // [Cog, K]: transposed below
      if (direct_out) {
        gemm<T>(true, false, p.K, p.P, p.Cog, A, p.K, B, ldb, T(0), gx + (n0 * Ci + gi * p.Cig) * p.HW, p.P);
        continue;
      }
      gemm<T>(true, false, p.K, cols, p.Cog, A, p.K, B, ldb, T(0), dcol, cols);
      for (int64_t i = 0; i < nbc; ++i)
        col2im(g, p, dcol + i * p.P, cols, gx + ((n0 + i) * Ci + gi * p.Cig) * p.HW);
    }
  });
}

template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* x, const T* gy, T* gw) {
  const Plan p(g);
  const int64_t Ci = g.in_channels, Co = g.out_channels, G = g.groups;
  const int64_t wsize = Co * p.K;
  if (wsize <= 0) return;
  if (g.batch <= 0 || p.P <= 0) {
    std::fill(gw, gw + wsize, T(0));
    return;
  }
  const int64_t nslots = std::min(p.nchunks, kMaxSlots);
  // Slot 0 is gw itself; the others are partial sums added at the end.
  std::vector<T> partial(size_t((nslots - 1) * wsize));
  const bool need_col = !(p.direct && p.nb == 1);
  const size_t col_size = need_col ? size_t(p.K * p.nb * p.P) : 0;
  const size_t tmp_size = p.nb > 1 ? size_t(p.Cog * p.nb * p.P) : 0;
  for_each_chunk<T>(nslots, col_size, tmp_size, [&](int64_t s, T* col, T* tmp) {
    T* acc = s == 0 ? gw : partial.data() + (s - 1) * wsize;
    const int64_t c_begin = p.nchunks * s / nslots, c_end = p.nchunks * (s + 1) / nslots;
    for (int64_t ch = c_begin; ch < c_end; ++ch) {
      const int64_t n0 = ch * p.nb, nbc = p.images(ch, g.batch), cols = nbc * p.P;
      const T beta = ch == c_begin ? T(0) : T(1);
      for (int64_t gi = 0; gi < G; ++gi) {
        const auto [A, lda] = group_gradients(p, gy, Co, n0, nbc, gi, tmp);
        const T* B;
        if (!need_col) {
          B = x + (n0 * Ci + gi * p.Cig) * p.HW;
        } else {
          for (int64_t i = 0; i < nbc; ++i)
            im2col(g, p, x + ((n0 + i) * Ci + gi * p.Cig) * p.HW, col + i * p.P, cols);
          B = col;
        }
        gemm<T>(false, true, p.Cog, p.K, cols, A, lda, B, cols, beta, acc + gi * p.Cog * p.K, p.K);
      }
    }
  });
  if (nslots > 1)
    cpu::parallel_chunks(wsize, 4096, [&](int64_t b, int64_t e) {
      for (int64_t s = 1; s < nslots; ++s) {
        const T* part = partial.data() + (s - 1) * wsize;
        for (int64_t i = b; i < e; ++i) gw[i] += part[i];
      }
    });
}

template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* gb) {
  const Plan p(g);
  const int64_t Co = g.out_channels;
  cpu::parallel_chunks(Co, 8, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double s = 0;
      for (int64_t n = 0; n < g.batch; ++n) {
        const T* r = gy + (n * Co + c) * p.P;
        s += double(cpu::lane_sum<T>(p.P, [&](int64_t q) { return r[q]; }));
      }
      gb[c] = T(s);
    }
  });
}

#define HONE_INSTANTIATE(T)                                                                       \
  template void conv2d_forward<T>(const Conv2dGeometry&, const T*, const T*, const T*, T*);      \
  template void conv2d_backward_data<T>(const Conv2dGeometry&, const T*, const T*, T*);          \
  template void conv2d_backward_weight<T>(const Conv2dGeometry&, const T*, const T*, T*);        \
  template void conv2d_backward_bias<T>(const Conv2dGeometry&, const T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels
