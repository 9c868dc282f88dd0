// Device-side helpers shared by the kernel families: the storage-type mapping, loads and stores
// through the accumulation type, a strided N-d indexer, block reductions and launch geometry.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda_api.h"
#include "kernels/half.h"
#include "kernels/unary_formulas.h"

namespace hone::kernels::cuda {

// ---- storage types ------------------------------------------------------------------------------
// The API speaks hone::bf16 / hone::f16 (same bits); device code uses CUDA's own types, whose
// conversions are hardware instructions and round to nearest-even like kernels/half.h.
template <class T> struct dev { using type = T; };
template <> struct dev<bf16> { using type = __nv_bfloat16; };
template <> struct dev<f16> { using type = __half; };
template <class T> using dev_t = typename dev<T>::type;

template <class T> const dev_t<T>* dptr(const T* p) { return reinterpret_cast<const dev_t<T>*>(p); }
template <class T> dev_t<T>* dptr(T* p) { return reinterpret_cast<dev_t<T>*>(p); }

// Accumulation type of a device storage type: float for float and the 16-bit types, double for
// double, int64 for integers (exact copies and comparisons).
template <class T> struct dacc { using type = float; };
template <> struct dacc<double> { using type = double; };
template <> struct dacc<int32_t> { using type = int64_t; };
template <> struct dacc<int64_t> { using type = int64_t; };
template <> struct dacc<uint8_t> { using type = int64_t; };
template <class T> using dacc_t = typename dacc<T>::type;

template <class T> __device__ __forceinline__ dacc_t<T> load(T x) { return static_cast<dacc_t<T>>(x); }
template <> __device__ __forceinline__ float load(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float load(__half x) { return __half2float(x); }

// Stores go through float for the 16-bit types (a double is first rounded to float, as the CPU's
// bf16(float) constructor does, so that both round the same way).
template <class T, class A> __device__ __forceinline__ T store(A a) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(a));
  } else if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(static_cast<float>(a));
  } else {
    return static_cast<T>(a);
  }
}

// ---- strided N-d index spaces -------------------------------------------------------------------
// K operands over one index space; dims that are contiguous in every operand are merged and
// size-1 dims dropped on the host (as kernels/cpu/strided_loop.h does), so the device loop
// divides by as few sizes as possible.
template <int K>
struct Strided {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[K][kMaxDims];

  __device__ __forceinline__ void offsets(int64_t linear, int64_t* off) const {
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % shape[d];
      linear /= shape[d];
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += i * strides[k][d];
    }
  }
};

template <int K>
Strided<K> make_strided(int nd, const int64_t* sh, const int64_t* const* st) {
  Strided<K> s{};
  s.ndim = 0;
  for (int d = 0; d < nd; ++d) {
    if (sh[d] == 1) continue;
    if (s.ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < K; ++k)
        if (s.strides[k][s.ndim - 1] != st[k][d] * sh[d]) mergeable = false;
      if (mergeable) {
        s.shape[s.ndim - 1] *= sh[d];
        for (int k = 0; k < K; ++k) s.strides[k][s.ndim - 1] = st[k][d];
        continue;
      }
    }
    s.shape[s.ndim] = sh[d];
    for (int k = 0; k < K; ++k) s.strides[k][s.ndim] = st[k][d];
    ++s.ndim;
  }
  if (s.ndim == 0) {
    s.ndim = 1;
    s.shape[0] = 1;
    for (int k = 0; k < K; ++k) s.strides[k][0] = 0;
  }
  return s;
}

// Row-major strides of a contiguous output.
inline void contiguous_strides(int nd, const int64_t* shape, int64_t* out) {
  int64_t acc = 1;
  for (int d = nd - 1; d >= 0; --d) {
    out[d] = acc;
    acc *= shape[d];
  }
}

inline int64_t numel_of(int nd, const int64_t* shape) {
  int64_t n = 1;
  for (int d = 0; d < nd; ++d) n *= shape[d];
  return n;
}

// ---- launch geometry ----------------------------------------------------------------------------
constexpr int kThreads = 256;
// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// Blocks for a kernel with one block per row that walks the rows with a grid stride: a block a row, at
// most 65535 * 16 (and at least one).
inline unsigned row_blocks(int64_t rows) {
  return static_cast<unsigned>(rows < 1 ? 1 : (rows > 65535 * 16 ? 65535 * 16 : rows));
}

#define HONE_GRID_STRIDE(i, n)                                                                  \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                     \
       i += int64_t(blockDim.x) * gridDim.x)

// ---- reductions ----------------------------------------------------------------------------------
// Butterfly reductions: every lane ends with the result, and the order of additions depends only
// on the lane layout, so results are deterministic.
template <class A> __device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class A> __device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const A w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Block-wide sum/max (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 values of A in shared memory; the function synchronises before returning so
// the scratch can be reused by the next call.
template <class A> __device__ A block_sum(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  A r = lane < warps ? scratch[lane] : A(0);
  r = warp_sum(r);
  __syncthreads();
  return r;
}
// N block-wide sums for the barriers of one (`scratch` holds 32 * N values of A): a row kernel that
// needs several saves a block_sum's two barriers per extra sum. Each sum reduces as block_sum does.
template <int N, class A>
__device__ void block_sums(A (&v)[N], A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    v[j] = warp_sum(v[j]);
    if (lane == 0) scratch[32 * j + warp] = v[j];
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < N; ++j) v[j] = warp_sum(lane < warps ? scratch[32 * j + lane] : A(0));
  __syncthreads();
}
template <class A>
__device__ void block_sum2(A& a, A& b, A* scratch) {
  A v[2] = {a, b};
  block_sums(v, scratch);
  a = v[0];
  b = v[1];
}
template <class A> __device__ A block_max(A v, A* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  A r = lane < warps ? scratch[lane] : -INFINITY;
  r = warp_max(r);
  __syncthreads();
  return r;
}

// ---- 16-byte vector access ---------------------------------------------------------------------------
// Memory-bound row kernels move 16 bytes per load and store instruction where a row allows it (8 bf16 or
// 4 floats): a warp's 2-byte loads move 64 bytes each, too few bytes in flight to come near the HBM's
// bandwidth. A row must start 16-byte aligned for that (a GEMM output's padded rows do); otherwise, and for
// the tail past the last whole 16 bytes, elements go one at a time.
__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// N consecutive elements of T, loaded and stored as one unit (aligned to its size, at most 16 bytes:
// one or more 16-byte vector instructions). An aggregate of T (llm.c's Packed128), so reading T memory
// through it is well-defined C++ (a uint4 reinterpreted as T is not, and GCC drops such loads).
template <class T, int N>
struct Vec {
  static constexpr int kSize = N;
  alignas(N * sizeof(T) < 16 ? N * sizeof(T) : 16) T v[N];
};
// 16 bytes of T.
template <class T>
using Pack16 = Vec<T, 16 / int(sizeof(T))>;
// True when p may be read or written as V units (host or device code).
template <class V>
__host__ __device__ __forceinline__ bool aligned_for(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(V) == 0;
}

// f(i, x[i]) for the elements of x[0, n) that thread t of `threads` owns: 16-byte chunks t, t + threads, ...
// (then the tail) when x is aligned, else elements t, t + threads, ...
template <class T, class F>
__device__ __forceinline__ void for_each_vec(const T* x, int64_t n, int t, int threads, F&& f) {
  constexpr int V = Pack16<T>::kSize;
  int64_t done = 0;
  if (aligned16(x)) {
    const int64_t chunks = n / V;
    for (int64_t c = t; c < chunks; c += threads) {
      const Pack16<T> in = reinterpret_cast<const Pack16<T>*>(x)[c];
#pragma unroll
      for (int j = 0; j < V; ++j) f(c * V + j, in.v[j]);
    }
    done = chunks * V;
  }
  for (int64_t i = done + t; i < n; i += threads) f(i, x[i]);
}

// y[i] = f(i, x[i]) over [0, n), owned as in for_each_vec (16-byte chunks when x and y are both aligned).
template <class T, class F>
__device__ __forceinline__ void map_vec(const T* x, T* y, int64_t n, int t, int threads, F&& f) {
  constexpr int V = Pack16<T>::kSize;
  int64_t done = 0;
  if (aligned16(x) && aligned16(y)) {
    const int64_t chunks = n / V;
    for (int64_t c = t; c < chunks; c += threads) {
      const Pack16<T> in = reinterpret_cast<const Pack16<T>*>(x)[c];
      Pack16<T> out;
#pragma unroll
      for (int j = 0; j < V; ++j) out.v[j] = f(c * V + j, in.v[j]);
      reinterpret_cast<Pack16<T>*>(y)[c] = out;
    }
    done = chunks * V;
  }
  for (int64_t i = done + t; i < n; i += threads) y[i] = f(i, x[i]);
}

// Math in the accumulation type (float or double).
__host__ __device__ __forceinline__ float exp_acc(float x) { return expf(x); }
__host__ __device__ __forceinline__ double exp_acc(double x) { return exp(x); }
__host__ __device__ __forceinline__ float log_acc(float x) { return logf(x); }
__host__ __device__ __forceinline__ double log_acc(double x) { return log(x); }
__host__ __device__ __forceinline__ float erf_acc(float v) { return erff(v); }
__host__ __device__ __forceinline__ double erf_acc(double v) { return erf(v); }
__host__ __device__ __forceinline__ float tanh_acc(float v) { return tanhf(v); }
__host__ __device__ __forceinline__ double tanh_acc(double v) { return tanh(v); }
__host__ __device__ __forceinline__ float sqrt_acc(float v) { return sqrtf(v); }
__host__ __device__ __forceinline__ double sqrt_acc(double v) { return sqrt(v); }
__host__ __device__ __forceinline__ float pow_acc(float v, float p) { return powf(v, p); }
__host__ __device__ __forceinline__ double pow_acc(double v, double p) { return pow(v, p); }
__host__ __device__ __forceinline__ float abs_acc(float v) { return fabsf(v); }
__host__ __device__ __forceinline__ double abs_acc(double v) { return fabs(v); }

// Those functions as kernels/unary_formulas.h asks for them (the device has one exp).
struct DeviceMath {
  template <class A> static __host__ __device__ __forceinline__ A exp(A x) { return exp_acc(x); }
  template <class A> static __host__ __device__ __forceinline__ A act_exp(A x) { return exp_acc(x); }
  template <class A> static __host__ __device__ __forceinline__ A log(A x) { return log_acc(x); }
  template <class A> static __host__ __device__ __forceinline__ A sqrt(A x) { return sqrt_acc(x); }
  template <class A> static __host__ __device__ __forceinline__ A tanh(A x) { return tanh_acc(x); }
  template <class A> static __host__ __device__ __forceinline__ A erf(A x) { return erf_acc(x); }
  template <class A> static __host__ __device__ __forceinline__ A pow(A x, A p) { return pow_acc(x, p); }
  template <class A> static __host__ __device__ __forceinline__ A abs(A x) { return abs_acc(x); }
};

// The second pass of the deterministic two-level sums (the bias gradients): out[i] = the sum over
// chunks of part[chunk * n + i], rounded to T once. Block: 32 outputs x kChunkLanes lanes (launch with
// chunk_total_blocks(n) blocks of dim3(32, kChunkLanes)); lane y adds chunks y, y + kChunkLanes, ... in
// order, then the lanes' sums are added in lane order: a fixed order, deterministic. (One thread per
// output chaining every chunk's load and add took ~80 us for 768 outputs of 128 chunks on an H200.)
constexpr int kChunkLanes = 8;
inline unsigned chunk_total_blocks(int64_t n) { return static_cast<unsigned>(n < 1 ? 1 : (n + 31) / 32); }
template <class T>
__global__ void __launch_bounds__(32 * kChunkLanes)
    chunk_total_kernel(int64_t chunks, int64_t n, const double* part, T* out) {
  __shared__ double lane_sums[kChunkLanes][32];
  const int64_t i = int64_t(blockIdx.x) * 32 + threadIdx.x;
  double s = 0;
  if (i < n) {
#pragma unroll 4
    for (int64_t c = threadIdx.y; c < chunks; c += kChunkLanes) s += part[c * n + i];
  }
  lane_sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || i >= n) return;
  double total = 0;
#pragma unroll
  for (int y = 0; y < kChunkLanes; ++y) total += lane_sums[y][threadIdx.x];
  out[i] = store<T>(dacc_t<T>(total));
}

// GELU in the accumulation type, the erf form or the tanh form (GPT-2's "gelu_new"), and its slope:
// the unary ops' formulas (kernels/unary_formulas.h), for the fused kernels and the GEMM epilogues.
template <class A> __device__ __forceinline__ A gelu_of(bool tanh_form, A z) {
  return formulas::unary_value<DeviceMath>(tanh_form ? UnaryOp::GeluTanh : UnaryOp::GeluErf, z, A(0));
}
template <class A> __device__ __forceinline__ A gelu_slope(bool tanh_form, A z) {
  return formulas::unary_derivative<DeviceMath>(tanh_form ? UnaryOp::GeluTanh : UnaryOp::GeluErf, z, A(0), A(0));
}

// Stream-ordered scratch memory, freed (stream-ordered) when the holder goes out of scope.
class Scratch {
 public:
  Scratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes) p_ = scratch_alloc(bytes, stream, "cudaMallocAsync (kernel scratch)");
  }
  ~Scratch() {
    if (p_) cudaFreeAsync(p_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  cudaStream_t stream_;
};

// Copies a small host array to stream-ordered device scratch through the page-locked upload ring
// (upload_async: the host does not wait, and the host array may go right after).
template <class T>
T* upload(Scratch& s, const T* host, size_t count, cudaStream_t stream) {
  upload_async(s.as<T>(), host, count * sizeof(T), stream);
  return s.as<T>();
}

}  // namespace hone::kernels::cuda
