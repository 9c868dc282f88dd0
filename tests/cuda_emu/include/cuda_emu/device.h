// The CUDA emulator's device side: what a kernel file (kernels/cuda/*.cu, rewritten by
// tests/cuda_emu/rewrite_launches.py) needs to compile as plain C++ and run on the CPU.
//
// Why: the development machines and CI have no GPU, and a GPU is lent only now and then. Compiled
// against this header, every one of our own CUDA kernels runs on the CPU with CUDA's execution
// model: a grid of blocks, each block's threads as cooperative fibers (tests/cuda_emu/runtime.cpp)
// that meet at __syncthreads and at warp shuffles, shared memory per block, the launch limits of a
// real device checked at every launch. The CUDA test suites then check the kernels' indexing,
// synchronisation and formulas against the CPU references without a device. What it cannot show:
// speed, races between threads that the fiber order hides, and the behaviour of cuBLAS/cuDNN
// themselves (the emulated cuBLASLt, cuDNN convolution and cuDNN graph operations follow their
// documentation).
//
// The real CUDA headers provide every type and host API declaration (so signatures and enum values
// are the toolkit's own); this header then replaces the execution-space keywords and adds the
// built-in variables and device intrinsics.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// Shared memory: one instance per OS thread, and a block's fibers all run on the launching thread,
// one block at a time, so every block sees its own (uninitialised, as on a GPU) copy.
#define __shared__ static thread_local
#define __launch_bounds__(...)

// Built-in variables, set by the scheduler before it resumes a thread's fiber.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

namespace hone::emu {

// Suspends the calling thread until every live thread of its block (or of its warp) has arrived.
void block_barrier();
void warp_barrier();
// The OR of pred over the block's live threads (a block barrier).
int block_barrier_or(int pred);
// Lane `src` of the caller's warp's `mine` (size bytes), every live lane of the warp calling it.
void warp_exchange(const void* mine, void* out, size_t size, int src_lane);
int lane_id();
// The launch's dynamic shared memory (`extern __shared__ T name[]`), filled with 0xff bytes (NaN
// for floats) before each block, so that reading what was never written shows.
unsigned char* dynamic_shared();

struct LaunchConfig {
  dim3 grid, block;
  size_t shared_bytes = 0;
  cudaStream_t stream = nullptr;
  unsigned max_threads = 0;  // the kernel's __launch_bounds__ (0: none declared)
};
inline LaunchConfig config(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t stream = nullptr) {
  return {grid, block, shared_bytes, stream};
}
inline LaunchConfig bounded(LaunchConfig c, unsigned max_threads) {
  c.max_threads = max_threads;
  return c;
}
// Above this many threads per block a kernel must declare __launch_bounds__: nvcc gives a kernel
// without bounds up to 255 registers per thread, and a block of more than 256 such threads needs
// more than an SM's 64K registers (the launch fails on a GPU, by how many registers this build's
// code happens to use). With the bounds declared, nvcc keeps the registers within them.
constexpr unsigned kUnboundedMaxThreads = 256;

// Runs body once per thread of the grid (checking the launch against a device's limits first; a
// bad launch sets the error cudaGetLastError reports, as a real launch does). `kernel` names it in
// the emulator's messages.
void run_grid(const char* kernel, const LaunchConfig& cfg, void (*body)(void*), void* ctx);
// Device memory is inaccessible to the host (as on a GPU) except while one of these lives on the
// calling thread: kernels, the runtime's copies, and the emulated libraries hold one.
class DeviceAccess {
 public:
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};

// The element types of the emulated libraries' buffers (each library names them in its own enum),
// and element i of such a buffer read as a double / written from one (rounded once to the type).
enum class Elem { F32, F64, BF16, F16, None };
inline size_t elem_bytes(Elem t) { return t == Elem::F64 ? 8 : t == Elem::F32 ? 4 : t == Elem::None ? 0 : 2; }
double load_elem(Elem t, const void* base, int64_t i);
void store_elem(Elem t, void* base, int64_t i, double v);

// The emulated libraries' opaque handles are their own objects in disguise.
template <class Impl, class Handle, class... Args>
void make_handle(Handle* out, Args... args) {
  *out = reinterpret_cast<Handle>(new Impl{args...});
}
template <class Impl, class Handle>
void free_handle(Handle h) {
  delete reinterpret_cast<Impl*>(h);
}

// True when p lies in memory from cudaMalloc/cudaMallocAsync (null counts as device).
bool is_device_pointer(const void* p);
// True when the `bytes` bytes from p lie inside one device allocation.
bool is_device_range(const void* p, size_t bytes);
void report_host_pointer_argument(const char* kernel, int index);

template <class A>
void check_argument(const char* kernel, int index, const A& a) {
  if constexpr (std::is_pointer_v<A>) {
    if (!is_device_pointer(a)) report_host_pointer_argument(kernel, index);
  }
}

// kernel<<<cfg>>>(args...) becomes launch("kernel", config(cfg), [&](auto&&... a) { kernel(a...); }, args...):
// the arguments are evaluated once, as by a real launch, and each thread gets its own copy.
template <class F, class... Args>
void launch(const char* name, const LaunchConfig& cfg, F&& kernel, Args&&... args) {
  std::tuple<std::decay_t<Args>...> params(std::forward<Args>(args)...);
  int index = 0;
  std::apply([&](const auto&... a) { (check_argument(name, index++, a), ...); }, params);
  struct Ctx {
    F* kernel;
    std::tuple<std::decay_t<Args>...>* params;
  } ctx{&kernel, &params};
  run_grid(
      name, cfg,
      [](void* p) {
        Ctx* c = static_cast<Ctx*>(p);
        auto mine = *c->params;  // kernel parameters are the thread's own copies
        std::apply(*c->kernel, mine);
      },
      &ctx);
}

}  // namespace hone::emu

// ---- intrinsics ----------------------------------------------------------------------------------
inline void __syncthreads() { hone::emu::block_barrier(); }
inline int __syncthreads_or(int pred) { return hone::emu::block_barrier_or(pred); }
inline void __syncwarp(unsigned = 0xffffffffu) { hone::emu::warp_barrier(); }

template <class T>
T __shfl_sync(unsigned, T v, int src_lane, int width = 32) {
  const int lane = hone::emu::lane_id();
  const int src = (lane / width) * width + (src_lane % width);
  T out;
  hone::emu::warp_exchange(&v, &out, sizeof(T), src);
  return out;
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int width = 32) {
  const int lane = hone::emu::lane_id();
  const int src = (lane / width) * width + ((lane ^ lane_mask) % width);
  T out;
  hone::emu::warp_exchange(&v, &out, sizeof(T), src);
  return out;
}

// One OS thread runs a launch's threads one at a time, so read-modify-write is atomic.
template <class T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}
template <class T>
T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T>
T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}

// CUDA's device-side min/max take mixed integer widths.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}
using std::isinf;
using std::isnan;
using std::isfinite;
