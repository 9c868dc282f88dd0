// conv2d through cuDNN's convolution API (cudnnConvolutionForward / BackwardData /
// BackwardFilter), used by conv.cu in builds with cuDNN (HONE_HAVE_CUDNN).
//
//  - The device's cuDNN handle and the workspaces come from cudnn_common.h (one handle per device,
//    bound to the caller's stream; workspaces from ConvContext::alloc, the engine's caching
//    allocator, or cudaMallocAsync; HONE_CUDNN=0 or a cudnnCreate failure sends every convolution
//    to the direct kernels).
//  - NCHW tensors, [C_out, C_in / groups, kH, kW] filters, cross-correlation, group count set on
//    the convolution descriptor. With HONE_CUDNN_NHWC=1 (opt-in), bf16/f16 convolutions whose channel
//    counts are multiples of 8 (and no groups) run in NHWC, the operands transposed into workspaces
//    around each call (Nhwc below): in NCHW cuDNN converts the tensors to float32 and takes float
//    kernels (on an H200 the bf16 ResNet-18 step spent 101 of 142 ms in NCHW data-gradient kernels),
//    but in NHWC its fastest data-gradient algorithm measured worse still (the same step: 531 ms, 474
//    of them in `dgrad2d_grouped_direct_kernel`, 30 ms a call, where NCHW's stride-1 ones ran Winograd
//    in 0.3 ms), so NCHW stays the default. float32 computes in float32, float64 in float64. float32 uses
//    CUDNN_FMA_MATH (no TF32, matching the CPU) unless set_tf32(true). bf16 and f16 (autocast's
//    convolutions) stay 16-bit in memory and compute in float on tensor cores (cuDNN's
//    "pseudo-half" configurations: 16-bit descriptors, a float convolution descriptor, float
//    alpha/beta).
//  - The algorithm of each (device, pass, dtype, math, geometry) is chosen once and cached with its
//    workspace size: measured on the first call's own operands (cudnnFind*AlgorithmEx, the fastest
//    that qualifies, as PyTorch's cudnn.benchmark), or, with HONE_CUDNN_BENCHMARK=0 or when that
//    finds nothing, from cuDNN's heuristics (cudnnGet*Algorithm_v7). The heuristics alone chose
//    badly on an H200: bf16 ResNet-18 spent 78% of its step in one data-gradient kernel. Only
//    algorithms that report CUDNN_DETERMINISTIC are taken (cuDNN's ALGO_0 variants of the gradient
//    passes accumulate with atomics). When nothing qualifies, or cuDNN rejects the descriptors, the
//    shape is marked and conv.cu runs its direct kernels. cudnn_conv_choices() lists the choices.
#if defined(HONE_HAVE_CUDNN)
#include <cudnn.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/cudnn_common.h"
#include "kernels/cuda_api.h"
#include "kernels/env_switch.h"

namespace hone::kernels::cuda::conv_detail {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;  // 1 GiB: larger asks are skipped

enum Pass : int { kForward = 0, kData = 1, kFilter = 2 };

// Descriptors of one convolution, destroyed with the object.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Descs() = default;
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
  ~Descs() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

bool fits_int(int64_t v) { return v >= 1 && v <= INT_MAX; }

// Fills d for g; false when cuDNN cannot describe the shape (sizes beyond int, zero sizes,
// rejected parameters, or an output size that differs from ours).
bool make_descs(const Conv2dGeometry& g, cudnnDataType_t dt, cudnnDataType_t compute, cudnnMathType_t math, bool nhwc,
                Descs& d) {
  const int64_t Ho = g.out_h(), Wo = g.out_w();
  for (int64_t v : {g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.kernel_h, g.kernel_w, g.stride_h,
                    g.stride_w, g.dilation_h, g.dilation_w, g.groups, Ho, Wo, g.in_channels / g.groups})
    if (!fits_int(v)) return false;
  if (g.pad_h < 0 || g.pad_w < 0 || g.pad_h > INT_MAX || g.pad_w > INT_MAX) return false;
  // cuDNN indexes tensors with 32-bit offsets.
  if (g.batch * g.in_channels * g.in_h * g.in_w > INT_MAX || g.batch * g.out_channels * Ho * Wo > INT_MAX) return false;
  if (cudnnCreateTensorDescriptor(&d.x) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateTensorDescriptor(&d.y) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateFilterDescriptor(&d.w) != CUDNN_STATUS_SUCCESS ||
      cudnnCreateConvolutionDescriptor(&d.conv) != CUDNN_STATUS_SUCCESS)
    return false;
  auto i = [](int64_t v) { return static_cast<int>(v); };
  const cudnnTensorFormat_t format = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  if (cudnnSetTensor4dDescriptor(d.x, format, dt, i(g.batch), i(g.in_channels), i(g.in_h), i(g.in_w)) !=
      CUDNN_STATUS_SUCCESS)
    return false;
  if (cudnnSetTensor4dDescriptor(d.y, format, dt, i(g.batch), i(g.out_channels), i(Ho), i(Wo)) != CUDNN_STATUS_SUCCESS)
    return false;
  if (cudnnSetFilter4dDescriptor(d.w, dt, format, i(g.out_channels), i(g.in_channels / g.groups), i(g.kernel_h),
                                 i(g.kernel_w)) != CUDNN_STATUS_SUCCESS)
    return false;
  if (cudnnSetConvolution2dDescriptor(d.conv, i(g.pad_h), i(g.pad_w), i(g.stride_h), i(g.stride_w), i(g.dilation_h),
                                      i(g.dilation_w), CUDNN_CROSS_CORRELATION, compute) != CUDNN_STATUS_SUCCESS)
    return false;
  if (cudnnSetConvolutionGroupCount(d.conv, i(g.groups)) != CUDNN_STATUS_SUCCESS) return false;
  if (cudnnSetConvolutionMathType(d.conv, math) != CUDNN_STATUS_SUCCESS) return false;
  int n = 0, c = 0, h = 0, w = 0;
  if (cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &c, &h, &w) != CUDNN_STATUS_SUCCESS) return false;
  return n == g.batch && c == g.out_channels && h == Ho && w == Wo;
}

// ---- algorithm cache ----------------------------------------------------------------------------
using Key = std::array<int64_t, 20>;

struct Choice {
  bool usable = false;  // false: run the direct kernels
  int algo = 0;
  size_t workspace = 0;
  bool measured = false;  // by cudnnFind*AlgorithmEx (else cuDNN's heuristics)
  float ms = 0.f;         // the measured time
};

// The workspace cudnnFind*AlgorithmEx may hand the algorithms it times: the fastest ones often want
// some, and the caching allocator keeps the block for the calls that follow.
constexpr size_t kFindWorkspace = size_t(256) << 20;

bool benchmark_enabled() {
  static const bool on = !switched_off("HONE_CUDNN_BENCHMARK");
  return on;
}

std::mutex& cache_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<Key, Choice>& cache() {
  static auto* m = new std::map<Key, Choice>();  // never destroyed
  return *m;
}

Key make_key(int device, Pass pass, cudnnDataType_t dt, cudnnMathType_t math, const Conv2dGeometry& g, bool nhwc) {
  return {device,        pass,         dt,         math,           g.batch,
          g.in_channels, g.in_h,       g.in_w,     g.out_channels, g.kernel_h,
          g.kernel_w,    g.stride_h,   g.stride_w, g.pad_h,        g.pad_w,
          g.dilation_h,  g.dilation_w, g.groups,   nhwc,           deterministic_algorithms()};
}

// Deterministic algorithms only, unless HONE_DETERMINISTIC=0 (kernels/env_switch.h).
bool determinism_ok(cudnnDeterminism_t d) { return d == CUDNN_DETERMINISTIC || !deterministic_algorithms(); }

bool math_ok(cudnnMathType_t wanted, cudnnMathType_t got) {
  if (wanted != CUDNN_FMA_MATH) return true;
  return got == CUDNN_FMA_MATH || got == CUDNN_DEFAULT_MATH;
}

// Picks from cuDNN's heuristic list (best first): the first usable deterministic algorithm (any with
// HONE_DETERMINISTIC=0), `preferred` first when it is usable. ws(algo, &bytes) queries the workspace of one algorithm.
template <class Perf, class Ws>
Choice pick(const Perf* perf, int count, cudnnMathType_t math, int preferred, Ws&& ws) {
  auto usable = [&](const Perf& p, size_t& bytes) {
    if (p.status != CUDNN_STATUS_SUCCESS || !determinism_ok(p.determinism) || !math_ok(math, p.mathType)) return false;
    if (ws(p.algo, &bytes) != CUDNN_STATUS_SUCCESS) return false;
    return bytes <= kMaxWorkspace;
  };
  Choice c;
  size_t bytes = 0;
  if (preferred >= 0)
    for (int k = 0; k < count; ++k)
      if (static_cast<int>(perf[k].algo) == preferred && usable(perf[k], bytes)) return {true, preferred, bytes};
  for (int k = 0; k < count; ++k)
    if (usable(perf[k], bytes)) return {true, static_cast<int>(perf[k].algo), bytes};
  return c;
}

// The fastest usable result of a cudnnFind*AlgorithmEx (its list is sorted by time): deterministic
// (unless HONE_DETERMINISTIC=0), in the wanted math, within the workspace it was given.
template <class Perf>
Choice pick_measured(const Perf* perf, int count, cudnnMathType_t math, size_t workspace) {
  for (int k = 0; k < count; ++k) {
    const Perf& p = perf[k];
    if (p.status == CUDNN_STATUS_SUCCESS && determinism_ok(p.determinism) && math_ok(math, p.mathType) &&
        p.memory <= workspace)
      return {true, static_cast<int>(p.algo), p.memory, true, p.time};
  }
  return {};
}

Choice choose(cudnnHandle_t h, Pass pass, cudnnMathType_t math, const Descs& d) {
  switch (pass) {
    case kForward: {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int count = 0;
      if (cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count,
                                                 perf) != CUDNN_STATUS_SUCCESS)
        return {};
      return pick(perf, count, math, -1, [&](cudnnConvolutionFwdAlgo_t a, size_t* b) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, a, b);
      });
    }
    case kData: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      int count = 0;
      if (cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                      &count, perf) != CUDNN_STATUS_SUCCESS)
        return {};
      return pick(perf, count, math, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, [&](cudnnConvolutionBwdDataAlgo_t a, size_t* b) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, a, b);
      });
    }
    case kFilter: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      int count = 0;
      if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w,
                                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count,
                                                        perf) != CUDNN_STATUS_SUCCESS)
        return {};
      return pick(perf, count, math, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                  [&](cudnnConvolutionBwdFilterAlgo_t a, size_t* b) {
                    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, a, b);
                  });
    }
  }
  return {};
}

void forget(const Key& key) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache()[key] = Choice{};
}

using cudnn::Workspace;

// Everything one call needs: descriptors, handle bound to the stream, cached choice.
struct Prepared {
  Descs d;
  cudnnHandle_t h = nullptr;
  Key key{};
  Choice choice;
};

// The tensors' cuDNN type, the convolution's compute type and the math mode of each T.
template <class T> constexpr cudnnDataType_t data_type() {
  if constexpr (std::is_same_v<T, double>) return CUDNN_DATA_DOUBLE;
  else if constexpr (std::is_same_v<T, bf16>) return CUDNN_DATA_BFLOAT16;
  else if constexpr (std::is_same_v<T, f16>) return CUDNN_DATA_HALF;
  else return CUDNN_DATA_FLOAT;
}
template <class T> constexpr cudnnDataType_t compute_type() {
  return std::is_same_v<T, double> ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;  // 16-bit: float accumulation
}

// Whether g runs in NHWC (see the top of this file): 16-bit, channel counts multiples of 8, no groups.
template <class T>
bool nhwc_layout(const Conv2dGeometry& g) {
  const bool allowed = switched_on("HONE_CUDNN_NHWC");  // (read per call: tests switch it)
  return allowed && (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)&&g.groups == 1 && g.in_channels % 8 == 0 &&
         g.out_channels % 8 == 0;
}

// The layouts to try for g, in order.
template <class T>
std::vector<bool> layouts_to_try(const Conv2dGeometry& g) {
  return nhwc_layout<T>(g) ? std::vector<bool>{true, false} : std::vector<bool>{false};
}

// A 4-d NCHW operand [n, c, h, w] as cuDNN reads or writes it: the tensor itself, or with `nhwc` a
// channels-last copy in a workspace (filled from the tensor for an input; for an output, written back
// by to_nchw() once cuDNN is done). The transposes are the engine's strided copy.
template <class T>
class Nhwc {
 public:
  Nhwc(const ConvContext& ctx, bool nhwc, const T* nchw, int64_t n, int64_t c, int64_t h, int64_t w, bool input,
       cudaStream_t stream)
      : nchw_(const_cast<T*>(nchw)),
        shape_{n, c, h, w},
        stream_(stream),
        buf_(ctx, nhwc ? size_t(n * c * h * w) * sizeof(T) : 0, stream) {
    if (nhwc && input) copy(nchw_, nchw_strides(), buf_.get(), nhwc_strides());
  }
  T* get() const { return buf_.get() ? buf_.as<T>() : nchw_; }
  void to_nchw() const {
    if (buf_.get()) copy(buf_.get(), nhwc_strides(), nchw_, nchw_strides());
  }

 private:
  std::array<int64_t, 4> nchw_strides() const {
    return {shape_[1] * shape_[2] * shape_[3], shape_[2] * shape_[3], shape_[3], 1};
  }
  std::array<int64_t, 4> nhwc_strides() const {
    return {shape_[2] * shape_[3] * shape_[1], 1, shape_[3] * shape_[1], shape_[1]};
  }
  void copy(const void* src, const std::array<int64_t, 4>& src_strides, void* dst,
            const std::array<int64_t, 4>& dst_strides) const {
    const int type = std::is_same_v<T, bf16> ? 2 : 3;  // the engine's DType codes (kernels/elementwise.h)
    copy_strided(type, type, 4, shape_.data(), src, src_strides.data(), dst, dst_strides.data(), stream_);
  }
  T* nchw_;
  std::array<int64_t, 4> shape_;
  cudaStream_t stream_;
  Workspace buf_;
};

// float32: plain FMA unless TF32 is on; 16-bit: tensor cores (the default math allows them).
template <class T>
cudnnMathType_t math_of() {
  return std::is_same_v<T, float> && !tf32_enabled() ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

// True when cuDNN already turned this pass of g down in this layout: run_in_layouts checks it before it
// stages any operand, so that prepare only sees keys that are new or usable.
template <class T>
bool marked_unusable(const ConvContext& ctx, Pass pass, const Conv2dGeometry& g, bool nhwc) {
  const Key key = make_key(ctx.device, pass, data_type<T>(), math_of<T>(), g, nhwc);
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache().find(key);
  return it != cache().end() && !it->second.usable;
}

// measure(h, math, descs, workspace, bytes) runs cudnnFind*AlgorithmEx on the call's operands and
// picks from it (pick_measured); it runs once per key, on the first call.
template <class T, class Measure>
bool prepare(const ConvContext& ctx, Pass pass, const Conv2dGeometry& g, bool nhwc, cudaStream_t stream, Prepared& p,
             Measure&& measure) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, bf16> ||
                    std::is_same_v<T, f16>,
                "cuDNN convolutions take float, double, bf16 or f16");
  const cudnnDataType_t dt = data_type<T>();
  const cudnnMathType_t math = math_of<T>();
  p.key = make_key(ctx.device, pass, dt, math, g, nhwc);
  p.h = cudnn::handle(ctx.device);
  if (!p.h) return false;
  if (!make_descs(g, dt, compute_type<T>(), math, nhwc, p.d)) {
    forget(p.key);
    return false;
  }
  cudnn::check(cudnnSetStream(p.h, stream), "cudnnSetStream");
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache().find(p.key);
  if (it == cache().end()) {
    Choice c;
    if (benchmark_enabled()) {
      try {
        Workspace ws(ctx, kFindWorkspace, stream);
        c = measure(p.h, math, p.d, ws.get(), kFindWorkspace);
      } catch (const std::exception&) {
        c = Choice{};  // no room for the measuring workspace, or cuDNN refused: the heuristics decide
      }
    }
    if (!c.usable) c = choose(p.h, pass, math, p.d);
    it = cache().emplace(p.key, c).first;
  }
  p.choice = it->second;
  return p.choice.usable;
}

// Runs a cuDNN call; a NOT_SUPPORTED answer marks the shape for the direct kernels.
bool finish(cudnnStatus_t st, const Key& key, const char* what) {
  if (st == CUDNN_STATUS_NOT_SUPPORTED) {
    forget(key);
    return false;
  }
  cudnn::check(st, what);
  return true;
}

// alpha and beta: double for double, float otherwise (cuDNN reads float scalars for 16-bit data).
template <class T> struct Scalars {
  using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
  S one = S(1), zero = S(0);
};

// Prepares `pass` of g and runs call(p, workspace, &one, &zero), a cuDNN convolution call; false
// when cuDNN does not take the shape (the caller then runs the direct kernels).
template <class T, class Measure, class Call>
bool run(const ConvContext& ctx, Pass pass, const Conv2dGeometry& g, bool nhwc, cudaStream_t stream, const char* what,
         Measure&& measure, Call&& call) {
  Prepared p;
  if (!prepare<T>(ctx, pass, g, nhwc, stream, p, measure)) return false;
  Workspace ws(ctx, p.choice.workspace, stream);
  const Scalars<T> s;
  return finish(call(p, ws.get(), &s.one, &s.zero), p.key, what);
}

// The operands of one pass as cuDNN gets them: x [N, C_in, H, W], w [C_out, C_in, kH, kW] and y [N, C_out,
// H_out, W_out] (gradients in the backward passes), each itself or an NHWC copy (Nhwc).
template <class T>
struct Operands {
  T *x, *w, *y;
};

// Runs one pass of g in each layout of layouts_to_try until cuDNN takes it: the operands staged for the
// layout (the one that `pass` writes, `out`, only written and then transposed back), then measure(h,
// math, descs, operands, workspace, bytes) on a new key and call(prepared, operands, workspace, one,
// zero). False when no layout ran (the caller then runs the direct kernels).
enum class Written { X, W, Y };
template <class T, class Measure, class Call>
bool run_in_layouts(const ConvContext& ctx, Pass pass, const Conv2dGeometry& g, cudaStream_t stream, const char* what,
                    Operands<T> in, Written out, Measure&& measure, Call&& call) {
  for (const bool nhwc : layouts_to_try<T>(g)) {
    if (marked_unusable<T>(ctx, pass, g, nhwc)) continue;
    const Nhwc<T> xs(ctx, nhwc, in.x, g.batch, g.in_channels, g.in_h, g.in_w, out != Written::X, stream);
    const Nhwc<T> ws(ctx, nhwc, in.w, g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w,
                     out != Written::W, stream);
    const Nhwc<T> ys(ctx, nhwc, in.y, g.batch, g.out_channels, g.out_h(), g.out_w(), out != Written::Y, stream);
    const Operands<T> ops{xs.get(), ws.get(), ys.get()};
    const bool ran = run<T>(
        ctx, pass, g, nhwc, stream, what,
        [&](cudnnHandle_t h, cudnnMathType_t math, const Descs& d, void* work, size_t bytes) {
          return measure(h, math, d, ops, work, bytes);
        },
        [&](const Prepared& p, void* work, const void* one, const void* zero) {
          return call(p, ops, work, one, zero);
        });
    if (ran) {
      (out == Written::X ? xs : out == Written::W ? ws : ys).to_nchw();
      return true;
    }
  }
  return false;
}

}  // namespace

template <class T>
bool cudnn_forward(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* w, T* y, cudaStream_t stream) {
  return run_in_layouts<T>(
      ctx, kForward, g, stream, "cudnnConvolutionForward", {const_cast<T*>(x), const_cast<T*>(w), y}, Written::Y,
      [](cudnnHandle_t h, cudnnMathType_t math, const Descs& d, const Operands<T>& o, void* work, size_t bytes) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int count = 0;
        if (cudnnFindConvolutionForwardAlgorithmEx(h, d.x, o.x, d.w, o.w, d.conv, d.y, o.y,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, work,
                                                   bytes) != CUDNN_STATUS_SUCCESS)
          return Choice{};
        return pick_measured(perf, count, math, bytes);
      },
      [](const Prepared& p, const Operands<T>& o, void* work, const void* one, const void* zero) {
        return cudnnConvolutionForward(p.h, one, p.d.x, o.x, p.d.w, o.w, p.d.conv,
                                       static_cast<cudnnConvolutionFwdAlgo_t>(p.choice.algo), work, p.choice.workspace,
                                       zero, p.d.y, o.y);
      });
}

template <class T>
bool cudnn_backward_data(const ConvContext& ctx, const Conv2dGeometry& g, const T* gy, const T* w, T* gx,
                         cudaStream_t stream) {
  return run_in_layouts<T>(
      ctx, kData, g, stream, "cudnnConvolutionBackwardData", {gx, const_cast<T*>(w), const_cast<T*>(gy)}, Written::X,
      [](cudnnHandle_t h, cudnnMathType_t math, const Descs& d, const Operands<T>& o, void* work, size_t bytes) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int count = 0;
        if (cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, o.w, d.y, o.y, d.conv, d.x, o.x,
                                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf, work,
                                                        bytes) != CUDNN_STATUS_SUCCESS)
          return Choice{};
        return pick_measured(perf, count, math, bytes);
      },
      [](const Prepared& p, const Operands<T>& o, void* work, const void* one, const void* zero) {
        return cudnnConvolutionBackwardData(p.h, one, p.d.w, o.w, p.d.y, o.y, p.d.conv,
                                            static_cast<cudnnConvolutionBwdDataAlgo_t>(p.choice.algo), work,
                                            p.choice.workspace, zero, p.d.x, o.x);
      });
}

template <class T>
bool cudnn_backward_filter(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* gy, T* gw,
                           cudaStream_t stream) {
  return run_in_layouts<T>(
      ctx, kFilter, g, stream, "cudnnConvolutionBackwardFilter", {const_cast<T*>(x), gw, const_cast<T*>(gy)},
      Written::W,
      [](cudnnHandle_t h, cudnnMathType_t math, const Descs& d, const Operands<T>& o, void* work, size_t bytes) {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int count = 0;
        if (cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, o.x, d.y, o.y, d.conv, d.w, o.w,
                                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf, work,
                                                          bytes) != CUDNN_STATUS_SUCCESS)
          return Choice{};
        return pick_measured(perf, count, math, bytes);
      },
      [](const Prepared& p, const Operands<T>& o, void* work, const void* one, const void* zero) {
        return cudnnConvolutionBackwardFilter(p.h, one, p.d.x, o.x, p.d.y, o.y, p.d.conv,
                                              static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.choice.algo), work,
                                              p.choice.workspace, zero, p.d.w, o.w);
      });
}

#define HONE_INSTANTIATE(T)                                                                                   \
  template bool cudnn_forward<T>(const ConvContext&, const Conv2dGeometry&, const T*, const T*, T*,          \
                                 cudaStream_t);                                                               \
  template bool cudnn_backward_data<T>(const ConvContext&, const Conv2dGeometry&, const T*, const T*, T*,    \
                                       cudaStream_t);                                                         \
  template bool cudnn_backward_filter<T>(const ConvContext&, const Conv2dGeometry&, const T*, const T*, T*,  \
                                         cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda::conv_detail

namespace hone::kernels::cuda {

std::vector<std::string> cudnn_conv_choices() {
  using namespace conv_detail;
  static const char* const kPassNames[] = {"forward", "data gradient", "filter gradient"};
  auto type_name = [](int64_t dt) {
    switch (dt) {
      case CUDNN_DATA_FLOAT:
        return "f32";
      case CUDNN_DATA_DOUBLE:
        return "f64";
      case CUDNN_DATA_BFLOAT16:
        return "bf16";
      case CUDNN_DATA_HALF:
        return "f16";
      default:
        return "?";
    }
  };
  std::vector<std::string> lines;
  std::lock_guard<std::mutex> lock(cache_mutex());
  for (const auto& [k, c] : cache()) {
    // Key: device, pass, dtype, math, batch, C_in, H, W, C_out, kH, kW, stride h/w, pad h/w, dilation h/w, groups,
    // NHWC, deterministic only.
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s %s x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lldx%lld] stride %lld pad %lld groups %lld: ",
                  kPassNames[k[1]], type_name(k[2]), (long long)k[4], (long long)k[5], (long long)k[6], (long long)k[7],
                  (long long)k[8], (long long)(k[5] / k[17]), (long long)k[9], (long long)k[10], (long long)k[11],
                  (long long)k[13], (long long)k[17]);
    std::string line = buf;
    line.insert(line.size() - 2, std::string(k[18] ? " NHWC" : "") + (k[19] ? "" : " (HONE_DETERMINISTIC=0)"));
    if (!c.usable) {
      line += "hone's direct kernels";
    } else {
      std::snprintf(buf, sizeof buf, "algo %d, %s, workspace %.1f MiB", c.algo,
                    c.measured ? ("measured " + std::to_string(c.ms) + " ms").c_str() : "from the heuristics",
                    double(c.workspace) / (1 << 20));
      line += buf;
    }
    lines.push_back(line);
  }
  return lines;
}

}  // namespace hone::kernels::cuda

#else  // no cuDNN

#include <string>
#include <vector>

#include "kernels/cuda_api.h"

namespace hone::kernels::cuda {
std::vector<std::string> cudnn_conv_choices() { return {}; }
}  // namespace hone::kernels::cuda

#endif  // HONE_HAVE_CUDNN
