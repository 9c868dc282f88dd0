// CUDA fused kernels (kernels/fused.h).
//
// bias_gelu forward: one thread per element (grid-stride), z = x + bias kept in the accumulation
// type. Backward: block (chunk of kRowChunk rows, tile of kColTile columns), each thread owns one
// column of its chunk: it writes gx and keeps its partial sum of the bias gradient (in double); a
// second kernel adds each column's partials in a fixed order. One read of x and gy, no atomics,
// deterministic.
// add_layernorm forward: one block per row. The first pass writes sum = x + residual (rounded to
// T) and adds it up for the mean; the variance and normalisation passes re-read the thread's own
// elements of sum (cache hits) instead of x and residual, so memory sees two reads and two writes;
// aligned rows of a multiple of 4 columns move in 16-byte units, and up to 1024 columns (GPT-2's,
// BERT's) stay in registers, two rows per block (add_layernorm_forward_vec_regs_kernel).
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/env_switch.h"
#include "kernels/fused.h"

namespace hone::kernels::cuda {

namespace {

// Backward of bias_gelu: rows per chunk of the bias gradient, columns per block.
constexpr int64_t kRowChunk = 16;
constexpr int kColTile = 256;

template <class T>
__global__ void bias_gelu_forward_kernel(bool tanh_form, int64_t n, int64_t cols, const T* x, const T* b, T* y) {
  HONE_GRID_STRIDE(i, n) y[i] = store<T>(gelu_of(tanh_form, load(x[i]) + load(b[i % cols])));
}

template <class T>
__global__ void bias_gelu_backward_kernel(bool tanh_form, int64_t rows, int64_t cols, const T* x, const T* b,
                                          const T* gy, T* gx, double* part) {
  using A = dacc_t<T>;
  const int64_t j = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  if (j >= cols) return;
  const A bj = load(b[j]);
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t r_end = min(rows, (chunk + 1) * kRowChunk);
    double s = 0;
    for (int64_t r = chunk * kRowChunk; r < r_end; ++r) {
      const int64_t k = r * cols + j;
      const A g = load(gy[k]) * gelu_slope(tanh_form, load(x[k]) + bj);
      if (gx) gx[k] = store<T>(g);
      s += g;
    }
    if (part) part[chunk * cols + j] = s;
  }
}

// The normed output of one element of an add_layernorm row (v: its sum, in A): rounded to T, and for the
// _lowp form (Y 16-bit) once more to Y, what a cast after the T kernel gives. Shared by the three
// add_layernorm kernels, whose results must agree.
template <class T, class Y, class A>
__device__ __forceinline__ Y add_layernorm_out(A v, A mu, A rs, A wi, A bi) {
  const T yt = store<T>((v - mu) * rs * wi + bi);
  if constexpr (std::is_same_v<Y, T>) {
    return yt;
  } else {
    return store<Y>(A(load(yt)));
  }
}

// X: x's type, Y: y's type (T for add_layernorm_forward, 16-bit for the _lowp form).
template <class T, class X, class Y, class A>
__global__ void add_layernorm_forward_kernel(int64_t rows, int64_t cols, const X* x, const T* res, const T* w,
                                             const T* b, A eps, T* sum, Y* y, A* mean_out, A* rstd_out) {
  __shared__ A scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T* sr = sum + r * cols;
    A acc = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const T v = store<T>(load(x[r * cols + i]) + load(res[r * cols + i]));
      sr[i] = v;
      acc += load(v);
    }
    const A mu = block_sum(acc, scratch) / A(cols);
    acc = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const A d = load(sr[i]) - mu;
      acc += d * d;
    }
    const A rs = A(1) / sqrt(block_sum(acc, scratch) / A(cols) + eps);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const A wi = w ? load(w[i]) : A(1), bi = b ? load(b[i]) : A(0);
      y[r * cols + i] = add_layernorm_out<T, Y>(A(load(sr[i])), mu, rs, wi, bi);
    }
    if (threadIdx.x == 0) {
      mean_out[r] = mu;
      rstd_out[r] = rs;
    }
  }
}

// add_layernorm_forward_kernel for rows of a multiple of 4 elements with every array aligned for
// 4-element units (Vec<., 4>): each thread moves 4 elements per load and store (the same arithmetic
// per element; the statistics' sums group the elements differently, so they may differ in the last
// bits).
template <class T, class X, class Y, class A>
__global__ void add_layernorm_forward_vec4_kernel(int64_t rows, int64_t cols, const X* x, const T* res, const T* w,
                                                  const T* b, A eps, T* sum, Y* y, A* mean_out, A* rstd_out) {
  __shared__ A scratch[32];
  const int64_t quads = cols / 4;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const auto* xr = reinterpret_cast<const Vec<X, 4>*>(x + r * cols);
    const auto* rr = reinterpret_cast<const Vec<T, 4>*>(res + r * cols);
    auto* sr = reinterpret_cast<Vec<T, 4>*>(sum + r * cols);
    auto* yr = reinterpret_cast<Vec<Y, 4>*>(y + r * cols);
    A acc = 0;
    for (int64_t q = threadIdx.x; q < quads; q += blockDim.x) {
      const Vec<X, 4> xv = xr[q];
      const Vec<T, 4> rv = rr[q];
      Vec<T, 4> s;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s.v[j] = store<T>(load(xv.v[j]) + load(rv.v[j]));
        acc += load(s.v[j]);
      }
      sr[q] = s;  // read back below by this same thread
    }
    const A mu = block_sum(acc, scratch) / A(cols);
    acc = 0;
    for (int64_t q = threadIdx.x; q < quads; q += blockDim.x) {
      const Vec<T, 4> s = sr[q];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const A d = load(s.v[j]) - mu;
        acc += d * d;
      }
    }
    const A rs = A(1) / sqrt(block_sum(acc, scratch) / A(cols) + eps);
    for (int64_t q = threadIdx.x; q < quads; q += blockDim.x) {
      const Vec<T, 4> s = sr[q];
      const Vec<T, 4> wv = w ? reinterpret_cast<const Vec<T, 4>*>(w)[q] : Vec<T, 4>{};
      const Vec<T, 4> bv = b ? reinterpret_cast<const Vec<T, 4>*>(b)[q] : Vec<T, 4>{};
      Vec<Y, 4> out;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const A wi = w ? load(wv.v[j]) : A(1), bi = b ? load(bv.v[j]) : A(0);
        out.v[j] = add_layernorm_out<T, Y>(A(load(s.v[j])), mu, rs, wi, bi);
      }
      yr[q] = out;
    }
    if (threadIdx.x == 0) {
      mean_out[r] = mu;
      rstd_out[r] = rs;
    }
  }
}

// add_layernorm_forward_vec4_kernel with the rows in registers, kRowsInFlight at a time: thread t owns the
// 4 columns [4t, 4t + 4) of rows of at most 4 * kThreads columns (blockDim.x: cols / 4 rounded up to a
// warp), loads x and the residual of all the block's rows before the first reduction, and keeps the sums
// for the variance and the output, where the one-row kernel pays a memory latency per row and re-reads
// its sums twice. (A scalar two-row register kernel measured slower than the vec4 kernel on an H200,
// 72.7 against 49.5 us for GPT-2's 16384 x 768: the 16-byte units mattered more.) The same per-element
// arithmetic, and each thread adds the same 4 elements: the vec4 kernel's results (up to how the compiler
// contracts multiply-adds).
// HONE_ADD_LAYERNORM_VEC_REGS=0 turns it off.
constexpr int kRowsInFlight = 2;
template <class T, class X, class Y, class A>
__global__ void __launch_bounds__(kThreads)
    add_layernorm_forward_vec_regs_kernel(int64_t rows, int64_t cols, const X* x, const T* res, const T* w, const T* b,
                                          A eps, T* sum, Y* y, A* mean_out, A* rstd_out) {
  __shared__ A scratch[32 * kRowsInFlight];
  const int64_t c0 = int64_t(threadIdx.x) * 4;
  const bool mine = c0 < cols;  // cols is a multiple of 4: all four columns or none
  Vec<T, 4> wv{}, bv{};
  if (mine && w) wv = *reinterpret_cast<const Vec<T, 4>*>(w + c0);
  if (mine && b) bv = *reinterpret_cast<const Vec<T, 4>*>(b + c0);
  for (int64_t r0 = int64_t(blockIdx.x) * kRowsInFlight; r0 < rows; r0 += int64_t(gridDim.x) * kRowsInFlight) {
    Vec<X, 4> xv[kRowsInFlight];
    Vec<T, 4> rv[kRowsInFlight];
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q) {
      xv[q] = Vec<X, 4>{};
      rv[q] = Vec<T, 4>{};
      if (mine && r0 + q < rows) {
        xv[q] = *reinterpret_cast<const Vec<X, 4>*>(x + (r0 + q) * cols + c0);
        rv[q] = *reinterpret_cast<const Vec<T, 4>*>(res + (r0 + q) * cols + c0);
      }
    }
    A v[kRowsInFlight][4], stat[kRowsInFlight];
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q) {
      const int64_t r = r0 + q;
      stat[q] = 0;
      Vec<T, 4> s;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s.v[j] = store<T>(load(xv[q].v[j]) + load(rv[q].v[j]));
        v[q][j] = mine && r < rows ? A(load(s.v[j])) : A(0);
        stat[q] += v[q][j];
      }
      if (mine && r < rows) *reinterpret_cast<Vec<T, 4>*>(sum + r * cols + c0) = s;
    }
    block_sums(stat, scratch);
    A mu[kRowsInFlight];
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q) {
      mu[q] = stat[q] / A(cols);
      stat[q] = 0;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const A d = mine ? v[q][j] - mu[q] : A(0);
        stat[q] += d * d;
      }
    }
    block_sums(stat, scratch);
#pragma unroll
    for (int q = 0; q < kRowsInFlight; ++q) {
      const int64_t r = r0 + q;
      if (r >= rows) break;
      const A rs = A(1) / sqrt(stat[q] / A(cols) + eps);
      if (mine) {
        Vec<Y, 4> out;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const A wi = w ? load(wv.v[j]) : A(1), bi = b ? load(bv.v[j]) : A(0);
          out.v[j] = add_layernorm_out<T, Y>(v[q][j], mu[q], rs, wi, bi);
        }
        *reinterpret_cast<Vec<Y, 4>*>(y + r * cols + c0) = out;
      }
      if (threadIdx.x == 0) {
        mean_out[r] = mu[q];
        rstd_out[r] = rs;
      }
    }
  }
}

}  // namespace

template <class T>
void bias_gelu_forward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, T* y,
                       cudaStream_t stream) {
  require_gelu_op(op, "cuda::bias_gelu_forward");
  const int64_t n = rows * cols;
  if (n == 0) return;
  bias_gelu_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(op == UnaryOp::GeluTanh, n, cols, dptr(x),
                                                                  dptr(bias), dptr(y));
  check_launch("bias_gelu_forward");
}

template <class T>
void bias_gelu_backward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, const T* gy, T* gx,
                        T* gbias, cudaStream_t stream) {
  require_gelu_op(op, "cuda::bias_gelu_backward");
  if (!gx && !gbias) return;
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  Scratch part(gbias ? chunks * cols * sizeof(double) : 0, stream);
  if (chunks > 0 && cols > 0) {
    const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile),
                    static_cast<unsigned>(chunks > 65535 ? 65535 : chunks));
    bias_gelu_backward_kernel<<<grid, kColTile, 0, stream>>>(op == UnaryOp::GeluTanh, rows, cols, dptr(x),
                                                             dptr(bias), dptr(gy), dptr(gx), part.as<double>());
    check_launch("bias_gelu_backward");
  }
  if (!gbias) return;
  chunk_total_kernel<<<chunk_total_blocks(cols), dim3(32, kChunkLanes), 0, stream>>>(chunks, cols, part.as<double>(),
                                                                                     dptr(gbias));
  check_launch("bias_gelu_backward (bias totals)");
}

namespace {
// One block per row (up to the grid limit; blocks then stride over rows).
template <class T, class X, class Y>
void launch_add_layernorm(int64_t rows, int64_t cols, const X* x, const T* residual, const T* weight, const T* bias,
                          double eps, T* sum, Y* y, acc_t<T>* mean, acc_t<T>* rstd, cudaStream_t stream,
                          const char* name) {
  if (rows == 0) return;
  using A = acc_t<T>;
  const unsigned blocks = static_cast<unsigned>(rows < 65535 * 16 ? rows : 65535 * 16);
  const auto ok = [](const auto* p) {
    return aligned_for<Vec<std::remove_cv_t<std::remove_pointer_t<decltype(p)>>, 4>>(p);
  };
  const auto xd = dptr(x);
  const auto rd = dptr(residual), wd = dptr(weight), bd = dptr(bias);
  const auto sd = dptr(sum);
  const auto yd = dptr(y);
  const bool vec4 = cols % 4 == 0 && ok(xd) && ok(rd) && ok(sd) && ok(yd) && (!wd || ok(wd)) && (!bd || ok(bd));
  if (vec4 && cols <= 4 * kThreads && !switched_off("HONE_ADD_LAYERNORM_VEC_REGS")) {
    const int threads = int((cols / 4 + 31) / 32 * 32);
    add_layernorm_forward_vec_regs_kernel<<<row_blocks((rows + kRowsInFlight - 1) / kRowsInFlight), threads, 0,
                                            stream>>>(rows, cols, xd, rd, wd, bd, A(eps), sd, yd, mean, rstd);
  } else if (vec4) {
    add_layernorm_forward_vec4_kernel<<<blocks, kThreads, 0, stream>>>(rows, cols, xd, rd, wd, bd, A(eps), sd, yd, mean,
                                                                       rstd);
  } else {
    add_layernorm_forward_kernel<<<blocks, kThreads, 0, stream>>>(rows, cols, xd, rd, wd, bd, A(eps), sd, yd, mean,
                                                                  rstd);
  }
  check_launch(name);
}
}  // namespace

template <class T>
void add_layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* residual, const T* weight, const T* bias,
                           double eps, T* sum, T* y, acc_t<T>* mean, acc_t<T>* rstd, cudaStream_t stream) {
  launch_add_layernorm(rows, cols, x, residual, weight, bias, eps, sum, y, mean, rstd, stream, "add_layernorm_forward");
}

template <class T, class H>
void add_layernorm_forward_lowp(int64_t rows, int64_t cols, const H* x, const T* residual, const T* weight,
                                const T* bias, double eps, T* sum, H* y, acc_t<T>* mean, acc_t<T>* rstd,
                                cudaStream_t stream) {
  launch_add_layernorm(rows, cols, x, residual, weight, bias, eps, sum, y, mean, rstd, stream,
                       "add_layernorm_forward_lowp");
}

#define HONE_INSTANTIATE(T)                                                                                   \
  template void bias_gelu_forward<T>(UnaryOp, int64_t, int64_t, const T*, const T*, T*, cudaStream_t);       \
  template void bias_gelu_backward<T>(UnaryOp, int64_t, int64_t, const T*, const T*, const T*, T*, T*,        \
                                      cudaStream_t);                                                         \
  template void add_layernorm_forward<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, double, T*, \
                                         T*, acc_t<T>*, acc_t<T>*, cudaStream_t);
HONE_FUSED_FOR_EACH_TYPE(HONE_INSTANTIATE)
#undef HONE_INSTANTIATE
template void add_layernorm_forward_lowp<float, bf16>(int64_t, int64_t, const bf16*, const float*, const float*,
                                                      const float*, double, float*, bf16*, float*, float*,
                                                      cudaStream_t);
template void add_layernorm_forward_lowp<float, f16>(int64_t, int64_t, const f16*, const float*, const float*,
                                                     const float*, double, float*, f16*, float*, float*, cudaStream_t);

}  // namespace hone::kernels::cuda
