// CUDA nearest and bilinear resizing of contiguous [planes, H, W] arrays, with the semantics of
// kernels/resample.h.
//
// The per-axis tables (source indices, bilinear weights) are computed on the host with exactly
// the CPU kernels' formulas (nearest_source_index; the bilinear source in acc_t<T>) and uploaded
// with the launch, so both devices read the same pixels with the same weights.
// Backwards gather: each axis also gets its inverse table (for input i, the (output, weight)
// entries that read it, in output order), and one thread per input element sums the gradients of
// the outputs that read it, output by output in row-major order and, within one output, in the
// CPU's order (row i0 then i1, column i0 then i1): deterministic, no atomics.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

// Host-side pack of several arrays, uploaded in one copy.
class Pack {
 public:
  template <class U>
  size_t add(const std::vector<U>& v) {
    const size_t off = (bytes_.size() + 15) / 16 * 16;
    bytes_.resize(off + v.size() * sizeof(U));
    if (!v.empty()) std::memcpy(bytes_.data() + off, v.data(), v.size() * sizeof(U));
    return off;
  }
  size_t size() const { return bytes_.size(); }
  const char* data() const { return bytes_.data(); }

 private:
  std::vector<char> bytes_;
};

template <class U> const U* at(const char* base, size_t off) { return reinterpret_cast<const U*>(base + off); }

// One axis of a bilinear resize (the CPU's LinearAxis) and its inverse.
template <class A>
struct LinearAxis {
  std::vector<int64_t> i0, i1;
  std::vector<A> l0, l1;
  std::vector<int64_t> start;   // [in + 1]: entries of input i are [start[i], start[i + 1])
  std::vector<int64_t> out_of;  // the output index of each entry
  std::vector<A> weight;        // its weight
  LinearAxis(int64_t in, int64_t out) : i0(out), i1(out), l0(out), l1(out) {
    const A scale = A(in) / A(out);
    for (int64_t o = 0; o < out; ++o) {
      A src = scale * (A(o) + A(0.5)) - A(0.5);
      if (src < A(0)) src = A(0);
      const int64_t idx = std::min<int64_t>(int64_t(src), in - 1);
      i0[o] = idx;
      i1[o] = idx + (idx < in - 1 ? 1 : 0);
      l1[o] = std::min(std::max(src - A(idx), A(0)), A(1));
      l0[o] = A(1) - l1[o];
    }
    start.assign(in + 1, 0);
    for (int64_t o = 0; o < out; ++o) {
      ++start[i0[o] + 1];
      ++start[i1[o] + 1];
    }
    for (int64_t i = 0; i < in; ++i) start[i + 1] += start[i];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    out_of.resize(2 * out);
    weight.resize(2 * out);
    for (int64_t o = 0; o < out; ++o) {  // ascending output, then i0 before i1: the CPU's order
      out_of[fill[i0[o]]] = o;
      weight[fill[i0[o]]++] = l0[o];
      out_of[fill[i1[o]]] = o;
      weight[fill[i1[o]]++] = l1[o];
    }
  }
};

// One axis of a nearest resize and its inverse.
struct NearestAxis {
  std::vector<int64_t> src, start, out_of;
  NearestAxis(int64_t in, int64_t out) : src(out), start(in + 1, 0), out_of(out) {
    for (int64_t o = 0; o < out; ++o) {
      src[o] = nearest_source_index(o, in, out);
      ++start[src[o] + 1];
    }
    for (int64_t i = 0; i < in; ++i) start[i + 1] += start[i];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t o = 0; o < out; ++o) out_of[fill[src[o]]++] = o;
  }
};

template <class T>
__global__ void nearest_forward_kernel(Resample2dGeometry g, const int64_t* sh, const int64_t* sw, const T* x, T* y) {
  const int64_t n = g.planes * g.out_h * g.out_w;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % g.out_w, oh = (idx / g.out_w) % g.out_h, pl = idx / (g.out_w * g.out_h);
    y[idx] = x[(pl * g.in_h + sh[oh]) * g.in_w + sw[ow]];
  }
}

template <class T>
__global__ void nearest_backward_kernel(Resample2dGeometry g, const int64_t* hs, const int64_t* ho, const int64_t* ws,
                                        const int64_t* wo, const T* gy, T* gx) {
  using A = dacc_t<T>;
  const int64_t n = g.planes * g.in_h * g.in_w;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t iw = idx % g.in_w, ih = (idx / g.in_w) % g.in_h, pl = idx / (g.in_w * g.in_h);
    const T* gp = gy + pl * g.out_h * g.out_w;
    A s = 0;
    for (int64_t a = hs[ih]; a < hs[ih + 1]; ++a) {
      const T* row = gp + ho[a] * g.out_w;
      for (int64_t b = ws[iw]; b < ws[iw + 1]; ++b) s += load(row[wo[b]]);
    }
    gx[idx] = store<T>(s);
  }
}

template <class T, class A>
__global__ void bilinear_forward_kernel(Resample2dGeometry g, const int64_t* hi0, const int64_t* hi1, const A* hl0,
                                        const A* hl1, const int64_t* wi0, const int64_t* wi1, const A* wl0,
                                        const A* wl1, const T* x, T* y) {
  const int64_t n = g.planes * g.out_h * g.out_w;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % g.out_w, oh = (idx / g.out_w) % g.out_h, pl = idx / (g.out_w * g.out_h);
    const T* xp = x + pl * g.in_h * g.in_w;
    const T* r0 = xp + hi0[oh] * g.in_w;
    const T* r1 = xp + hi1[oh] * g.in_w;
    const A h0 = hl0[oh], h1 = hl1[oh];
    const int64_t a = wi0[ow], b = wi1[ow];
    const A w0 = wl0[ow], w1 = wl1[ow];
    y[idx] = store<T>(h0 * (w0 * load(r0[a]) + w1 * load(r0[b])) + h1 * (w0 * load(r1[a]) + w1 * load(r1[b])));
  }
}

template <class T, class A>
__global__ void bilinear_backward_kernel(Resample2dGeometry g, const int64_t* hs, const int64_t* ho, const A* hw,
                                         const int64_t* ws, const int64_t* wo, const A* ww, const T* gy, T* gx) {
  const int64_t n = g.planes * g.in_h * g.in_w;
  HONE_GRID_STRIDE(idx, n) {
    const int64_t iw = idx % g.in_w, ih = (idx / g.in_w) % g.in_h, pl = idx / (g.in_w * g.in_h);
    const T* gp = gy + pl * g.out_h * g.out_w;
    A s = 0;
    const int64_t h_end = hs[ih + 1], w_end = ws[iw + 1];
    for (int64_t a0 = hs[ih]; a0 < h_end;) {  // one output row at a time (1 or 2 entries)
      const int64_t oh = ho[a0];
      int64_t a1 = a0 + 1;
      while (a1 < h_end && ho[a1] == oh) ++a1;
      for (int64_t b0 = ws[iw]; b0 < w_end;) {
        const int64_t ow = wo[b0];
        int64_t b1 = b0 + 1;
        while (b1 < w_end && wo[b1] == ow) ++b1;
        const A v = load(gp[oh * g.out_w + ow]);
        for (int64_t a = a0; a < a1; ++a)
          for (int64_t b = b0; b < b1; ++b) s += hw[a] * ww[b] * v;
        b0 = b1;
      }
      a0 = a1;
    }
    gx[idx] = store<T>(s);
  }
}

}  // namespace

template <class T>
void upsample_nearest2d_forward(const Resample2dGeometry& g, const T* x, T* y, cudaStream_t stream) {
  const int64_t n = g.planes * g.out_h * g.out_w;
  if (n <= 0) return;
  const NearestAxis h(g.in_h, g.out_h), w(g.in_w, g.out_w);
  Pack p;
  const size_t oh = p.add(h.src), ow = p.add(w.src);
  Scratch s(p.size(), stream);
  const char* d = upload(s, p.data(), p.size(), stream);
  nearest_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, at<int64_t>(d, oh), at<int64_t>(d, ow), dptr(x),
                                                               dptr(y));
  check_launch("upsample_nearest2d_forward");
}

template <class T>
void upsample_nearest2d_backward(const Resample2dGeometry& g, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t n = g.planes * g.in_h * g.in_w;
  if (n <= 0) return;
  const NearestAxis h(g.in_h, g.out_h), w(g.in_w, g.out_w);
  Pack p;
  const size_t hs = p.add(h.start), ho = p.add(h.out_of), ws = p.add(w.start), wo = p.add(w.out_of);
  Scratch s(p.size(), stream);
  const char* d = upload(s, p.data(), p.size(), stream);
  nearest_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, at<int64_t>(d, hs), at<int64_t>(d, ho),
                                                                at<int64_t>(d, ws), at<int64_t>(d, wo), dptr(gy),
                                                                dptr(gx));
  check_launch("upsample_nearest2d_backward");
}

template <class T>
void upsample_bilinear2d_forward(const Resample2dGeometry& g, const T* x, T* y, cudaStream_t stream) {
  using A = acc_t<T>;
  const int64_t n = g.planes * g.out_h * g.out_w;
  if (n <= 0) return;
  const LinearAxis<A> h(g.in_h, g.out_h), w(g.in_w, g.out_w);
  Pack p;
  const size_t hi0 = p.add(h.i0), hi1 = p.add(h.i1), hl0 = p.add(h.l0), hl1 = p.add(h.l1);
  const size_t wi0 = p.add(w.i0), wi1 = p.add(w.i1), wl0 = p.add(w.l0), wl1 = p.add(w.l1);
  Scratch s(p.size(), stream);
  const char* d = upload(s, p.data(), p.size(), stream);
  bilinear_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(
      g, at<int64_t>(d, hi0), at<int64_t>(d, hi1), at<A>(d, hl0), at<A>(d, hl1), at<int64_t>(d, wi0),
      at<int64_t>(d, wi1), at<A>(d, wl0), at<A>(d, wl1), dptr(x), dptr(y));
  check_launch("upsample_bilinear2d_forward");
}

template <class T>
void upsample_bilinear2d_backward(const Resample2dGeometry& g, const T* gy, T* gx, cudaStream_t stream) {
  using A = acc_t<T>;
  const int64_t n = g.planes * g.in_h * g.in_w;
  if (n <= 0) return;
  const LinearAxis<A> h(g.in_h, g.out_h), w(g.in_w, g.out_w);
  Pack p;
  const size_t hs = p.add(h.start), ho = p.add(h.out_of), hw = p.add(h.weight);
  const size_t ws = p.add(w.start), wo = p.add(w.out_of), ww = p.add(w.weight);
  Scratch s(p.size(), stream);
  const char* d = upload(s, p.data(), p.size(), stream);
  bilinear_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(g, at<int64_t>(d, hs), at<int64_t>(d, ho),
                                                                 at<A>(d, hw), at<int64_t>(d, ws), at<int64_t>(d, wo),
                                                                 at<A>(d, ww), dptr(gy), dptr(gx));
  check_launch("upsample_bilinear2d_backward");
}

#define HONE_INSTANTIATE(T)                                                                                \
  template void upsample_nearest2d_forward<T>(const Resample2dGeometry&, const T*, T*, cudaStream_t);     \
  template void upsample_nearest2d_backward<T>(const Resample2dGeometry&, const T*, T*, cudaStream_t);    \
  template void upsample_bilinear2d_forward<T>(const Resample2dGeometry&, const T*, T*, cudaStream_t);    \
  template void upsample_bilinear2d_backward<T>(const Resample2dGeometry&, const T*, T*, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
