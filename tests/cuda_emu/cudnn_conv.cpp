// The CUDA emulator's cuDNN (tests/cuda_emu): the legacy convolution API that
// kernels/cuda/conv_cudnn.cpp calls, as cuDNN documents it: NCHW tensors and KCRS filters,
// cross-correlation with pads, strides, dilations and groups, y = alpha conv(x, w) + beta y (and the
// same for the data and filter gradients), an algorithm list with workspace sizes. So an emulated
// build checks that conv_cudnn.cpp describes each convolution correctly (descriptor arguments, the
// output size check, the algorithm choice, alpha/beta) without a GPU. Sums run in double over inputs
// rounded as stored. The handle, the version and the error strings are in cudnn_backend.cpp, with
// the backend graph API that the fused attention goes through.
#include <cudnn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cuda_emu/device.h"
#include "cudnn_backend.h"

namespace {

struct TensorDesc {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int n = 0, c = 0, h = 0, w = 0;
  bool nhwc = false;  // CUDNN_TENSOR_NHWC (for a filter: KRSC)
  // The memory index of element (n, c, h, w) in this layout.
  int64_t at(int64_t in, int64_t ic, int64_t ih, int64_t iw) const {
    return nhwc ? ((in * h + ih) * w + iw) * c + ic : ((in * c + ic) * h + ih) * w + iw;
  }
};
struct ConvDesc {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, groups = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

TensorDesc* td(cudnnTensorDescriptor_t d) { return reinterpret_cast<TensorDesc*>(d); }
TensorDesc* fd(cudnnFilterDescriptor_t d) { return reinterpret_cast<TensorDesc*>(d); }
ConvDesc* cd(cudnnConvolutionDescriptor_t d) { return reinterpret_cast<ConvDesc*>(d); }

using hone::emu::cudnn::elem_of;
using hone::emu::cudnn::load;
using hone::emu::cudnn::store;
// alpha/beta: double for double data, float otherwise (cuDNN's rule).
double scalar(cudnnDataType_t t, const void* p) {
  return t == CUDNN_DATA_DOUBLE ? *static_cast<const double*>(p) : *static_cast<const float*>(p);
}
bool known(cudnnDataType_t t) { return elem_of(t) != hone::emu::Elem::None; }

int out_size(int in, int pad, int k, int dil, int stride) { return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1; }

// Everything a convolution of these descriptors needs to agree on.
cudnnStatus_t validate(const TensorDesc& x, const TensorDesc& w, const ConvDesc& c, const TensorDesc& y) {
  if (!known(x.type) || x.type != w.type || x.type != y.type) return CUDNN_STATUS_BAD_PARAM;
  if (x.nhwc != y.nhwc || x.nhwc != w.nhwc) return CUDNN_STATUS_NOT_SUPPORTED;  // one layout for all three
  if (c.mode != CUDNN_CROSS_CORRELATION) return CUDNN_STATUS_NOT_SUPPORTED;
  if (c.groups < 1 || x.c % c.groups != 0 || w.n % c.groups != 0 || w.c * c.groups != x.c) return CUDNN_STATUS_BAD_PARAM;
  if (y.n != x.n || y.c != w.n || y.h != out_size(x.h, c.pad_h, w.h, c.dil_h, c.stride_h) ||
      y.w != out_size(x.w, c.pad_w, w.w, c.dil_w, c.stride_w))
    return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

// Calls f(n, k, oh, ow, c, r, s, x_index, w_index, y_index) for every product of the convolution.
template <class F>
void for_each_product(const TensorDesc& x, const TensorDesc& w, const ConvDesc& c, const TensorDesc& y, F&& f) {
  const int kg = w.n / c.groups, cg = w.c;
  for (int n = 0; n < y.n; ++n)
    for (int k = 0; k < y.c; ++k)
      for (int oh = 0; oh < y.h; ++oh)
        for (int ow = 0; ow < y.w; ++ow) {
          const int64_t yi = y.at(n, k, oh, ow);
          const int g = k / kg;
          for (int cc = 0; cc < cg; ++cc)
            for (int r = 0; r < w.h; ++r) {
              const int ih = oh * c.stride_h - c.pad_h + r * c.dil_h;
              if (ih < 0 || ih >= x.h) continue;
              for (int s = 0; s < w.w; ++s) {
                const int iw = ow * c.stride_w - c.pad_w + s * c.dil_w;
                if (iw < 0 || iw >= x.w) continue;
                const int64_t xi = x.at(n, g * cg + cc, ih, iw);
                const int64_t wi = w.at(k, cc, r, s);
                f(xi, wi, yi);
              }
            }
        }
}

int64_t numel(const TensorDesc& t) { return int64_t(t.n) * t.c * t.h * t.w; }

// out = alpha acc + beta out (out not read when beta == 0).
void finish(cudnnDataType_t t, void* out, const std::vector<double>& acc, double alpha, double beta) {
  for (size_t i = 0; i < acc.size(); ++i)
    store(t, out, int64_t(i), alpha * acc[i] + (beta != 0 ? beta * load(t, out, int64_t(i)) : 0.0));
}

template <class Perf, class Algo>
void list_algorithms(int requested, int* returned, Perf* perf, cudnnMathType_t math, std::initializer_list<Algo> algos) {
  int k = 0;
  for (Algo a : algos) {
    if (k >= requested) break;
    std::memset(&perf[k], 0, sizeof perf[k]);
    perf[k].algo = a;
    perf[k].status = CUDNN_STATUS_SUCCESS;
    perf[k].time = 1.f + float(k);
    perf[k].memory = 0;
    perf[k].determinism = CUDNN_DETERMINISTIC;
    perf[k].mathType = math;
    ++k;
  }
  *returned = k;
}

}  // namespace

namespace {
template <class Impl, class Handle>
cudnnStatus_t create(Handle* out) {
  hone::emu::make_handle<Impl>(out);
  return CUDNN_STATUS_SUCCESS;
}
template <class Impl, class Handle>
cudnnStatus_t destroy(Handle h) {
  hone::emu::free_handle<Impl>(h);
  return CUDNN_STATUS_SUCCESS;
}
// A 4-d tensor (NCHW or NHWC) or filter (KCRS or KRSC). HONE_EMU_CUDNN_NO_NHWC=1 makes NHWC unsupported, as
// a cuDNN without such kernels answers, for tests of a caller's fallback.
cudnnStatus_t set_4d(TensorDesc* d, cudnnTensorFormat_t format, cudnnDataType_t type, int a, int b, int c, int e) {
  const char* no_nhwc = std::getenv("HONE_EMU_CUDNN_NO_NHWC");
  if (format == CUDNN_TENSOR_NHWC && no_nhwc && std::string(no_nhwc) == "1") return CUDNN_STATUS_NOT_SUPPORTED;
  if ((format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) || a < 1 || b < 1 || c < 1 || e < 1 || !known(type))
    return CUDNN_STATUS_BAD_PARAM;
  *d = {type, a, b, c, e, format == CUDNN_TENSOR_NHWC};
  return CUDNN_STATUS_SUCCESS;
}
}  // namespace

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) { return create<TensorDesc>(d); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return destroy<TensorDesc>(d); }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  return set_4d(td(d), format, type, n, c, h, w);
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) { return create<TensorDesc>(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return destroy<TensorDesc>(d); }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  return set_4d(fd(d), format, type, k, c, h, w);
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) { return create<ConvDesc>(d); }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return destroy<ConvDesc>(d); }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dil_h, int dil_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dil_h < 1 || dil_w < 1) return CUDNN_STATUS_BAD_PARAM;
  ConvDesc& c = *cd(d);
  c.pad_h = pad_h, c.pad_w = pad_w, c.stride_h = u, c.stride_w = v, c.dil_h = dil_h, c.dil_w = dil_w;
  c.mode = mode;
  c.compute = compute;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (groups < 1) return CUDNN_STATUS_BAD_PARAM;
  cd(d)->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  cd(d)->math = math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int* n, int* c, int* h, int* wo) {
  const ConvDesc& cv = *cd(conv);
  *n = td(x)->n;
  *c = fd(w)->n;
  *h = out_size(td(x)->h, cv.pad_h, fd(w)->h, cv.dil_h, cv.stride_h);
  *wo = out_size(td(x)->w, cv.pad_w, fd(w)->w, cv.dil_w, cv.stride_w);
  return *h >= 1 && *wo >= 1 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t y, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  if (const cudnnStatus_t st = validate(*td(x), *fd(w), *cd(conv), *td(y)); st != CUDNN_STATUS_SUCCESS) return st;
  list_algorithms(requested, returned, perf, cd(conv)->math,
                  {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM});
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dx, int requested,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  if (const cudnnStatus_t st = validate(*td(dx), *fd(w), *cd(conv), *td(dy)); st != CUDNN_STATUS_SUCCESS) return st;
  list_algorithms(requested, returned, perf, cd(conv)->math,
                  {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1});
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dw, int requested,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  if (const cudnnStatus_t st = validate(*td(x), *fd(dw), *cd(conv), *td(dy)); st != CUDNN_STATUS_SUCCESS) return st;
  list_algorithms(requested, returned, perf, cd(conv)->math,
                  {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0});
  return CUDNN_STATUS_SUCCESS;
}

// cudnnFind*AlgorithmEx: the same algorithms, "timed" without running them, sorted by time; the gradient
// passes' ALGO_0 (atomics on a GPU) comes first and NON_DETERMINISTIC, as a real measurement can rank it,
// so that a caller's determinism filter is exercised. Each wants the kilobyte of workspace below, and is
// left out when the caller offers less.
template <class Perf>
void mark_find_results(Perf* perf, int* returned, size_t workspace, bool first_is_atomic) {
  int kept = 0;
  for (int k = 0; k < *returned; ++k) {
    perf[k].memory = 1024;
    perf[k].time = 0.5f + float(k);
    if (k == 0 && first_is_atomic) perf[k].determinism = CUDNN_NON_DETERMINISTIC;
    if (perf[k].memory <= workspace) perf[kept++] = perf[k];
  }
  *returned = kept;
}
cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t x, const void*,
                                                     const cudnnFilterDescriptor_t w, const void*,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t y, void*, int requested,
                                                     int* returned, cudnnConvolutionFwdAlgoPerf_t* perf,
                                                     void* workspace, size_t workspace_bytes) {
  if (workspace_bytes > 0 && !workspace) return CUDNN_STATUS_BAD_PARAM;
  const cudnnStatus_t st = cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, conv, y, requested, returned, perf);
  if (st == CUDNN_STATUS_SUCCESS) mark_find_results(perf, returned, workspace_bytes, false);
  return st;
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t h, const cudnnFilterDescriptor_t w, const void*,
                                                          const cudnnTensorDescriptor_t dy, const void*,
                                                          const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dx, void*, int requested,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf,
                                                          void* workspace, size_t workspace_bytes) {
  if (workspace_bytes > 0 && !workspace) return CUDNN_STATUS_BAD_PARAM;
  const cudnnStatus_t st = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, dy, conv, dx, requested, returned, perf);
  if (st == CUDNN_STATUS_SUCCESS) mark_find_results(perf, returned, workspace_bytes, true);
  return st;
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                            const void*, const cudnnTensorDescriptor_t dy, const void*,
                                                            const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dw, void*, int requested,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf,
                                                            void* workspace, size_t workspace_bytes) {
  if (workspace_bytes > 0 && !workspace) return CUDNN_STATUS_BAD_PARAM;
  const cudnnStatus_t st = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, dy, conv, dw, requested, returned, perf);
  if (st == CUDNN_STATUS_SUCCESS) mark_find_results(perf, returned, workspace_bytes, false);
  return st;
}

// One kilobyte of workspace for every algorithm: the caller must allocate and pass it.
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                      const cudnnFilterDescriptor_t, const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t, cudnnConvolutionFwdAlgo_t,
                                                      size_t* bytes) {
  *bytes = 1024;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t,
                                                           const cudnnTensorDescriptor_t,
                                                           const cudnnConvolutionDescriptor_t,
                                                           const cudnnTensorDescriptor_t, cudnnConvolutionBwdDataAlgo_t,
                                                           size_t* bytes) {
  *bytes = 1024;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                             const cudnnTensorDescriptor_t,
                                                             const cudnnConvolutionDescriptor_t,
                                                             const cudnnFilterDescriptor_t,
                                                             cudnnConvolutionBwdFilterAlgo_t, size_t* bytes) {
  *bytes = 1024;
  return CUDNN_STATUS_SUCCESS;
}

namespace {

// One convolution pass: checks the descriptors and the workspace, then sums term(xi, wi, yi) (which
// says which element of `out` a product goes to, and its value) over every product of the
// convolution, and writes out = alpha sum + beta out.
template <class Term>
cudnnStatus_t run_pass(const TensorDesc& X, const TensorDesc& W, const ConvDesc& c, const TensorDesc& Y, void* ws,
                       size_t ws_bytes, const TensorDesc& out_desc, void* out, const void* alpha, const void* beta,
                       Term&& term) {
  if (const cudnnStatus_t st = validate(X, W, c, Y); st != CUDNN_STATUS_SUCCESS) return st;
  if (ws_bytes < 1024 || !ws || !hone::emu::is_device_pointer(ws)) return CUDNN_STATUS_BAD_PARAM;
  const hone::emu::DeviceAccess access;
  std::vector<double> acc(size_t(numel(out_desc)), 0.0);
  for_each_product(X, W, c, Y, [&](int64_t xi, int64_t wi, int64_t yi) {
    const auto [at, v] = term(xi, wi, yi);
    acc[size_t(at)] += v;
  });
  finish(out_desc.type, out, acc, scalar(out_desc.type, alpha), scalar(out_desc.type, beta));
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void* alpha, const cudnnTensorDescriptor_t xd,
                                      const void* x, const cudnnFilterDescriptor_t wdesc, const void* w,
                                      const cudnnConvolutionDescriptor_t conv, cudnnConvolutionFwdAlgo_t, void* ws,
                                      size_t ws_bytes, const void* beta, const cudnnTensorDescriptor_t yd, void* y) {
  const TensorDesc &X = *td(xd), &W = *fd(wdesc), &Y = *td(yd);
  return run_pass(X, W, *cd(conv), Y, ws, ws_bytes, Y, y, alpha, beta, [&](int64_t xi, int64_t wi, int64_t yi) {
    return std::pair{yi, load(X.type, x, xi) * load(W.type, w, wi)};
  });
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void* alpha, const cudnnFilterDescriptor_t wdesc,
                                           const void* w, const cudnnTensorDescriptor_t dyd, const void* dy,
                                           const cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdDataAlgo_t,
                                           void* ws, size_t ws_bytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxd, void* dx) {
  const TensorDesc &DX = *td(dxd), &W = *fd(wdesc), &DY = *td(dyd);
  return run_pass(DX, W, *cd(conv), DY, ws, ws_bytes, DX, dx, alpha, beta, [&](int64_t xi, int64_t wi, int64_t yi) {
    return std::pair{xi, load(DY.type, dy, yi) * load(W.type, w, wi)};
  });
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void* alpha, const cudnnTensorDescriptor_t xd,
                                             const void* x, const cudnnTensorDescriptor_t dyd, const void* dy,
                                             const cudnnConvolutionDescriptor_t conv, cudnnConvolutionBwdFilterAlgo_t,
                                             void* ws, size_t ws_bytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwd, void* dw) {
  const TensorDesc &X = *td(xd), &DW = *fd(dwd), &DY = *td(dyd);
  return run_pass(X, DW, *cd(conv), DY, ws, ws_bytes, DW, dw, alpha, beta, [&](int64_t xi, int64_t wi, int64_t yi) {
    return std::pair{wi, load(X.type, x, xi) * load(DY.type, dy, yi)};
  });
}
