// CPU fused kernels. Rows are walked in pieces of about 16K elements (cpu::rows_per_task), small
// enough to stay in L2 between the two steps of the fusion, and each piece runs the plain kernels'
// own math: unary_forward / unary_backward for the gelu, layernorm_forward for the layer norm.
// So each input is read from memory once and the results equal the composed kernels' bit for bit,
// except that bias_gelu keeps x + bias in float for 16-bit T and sums its bias gradient (in double,
// as the composed reduction does) in another order. Called inside the parallel loop over pieces,
// the plain kernels get one piece (one chunk) and run on the calling thread.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/rowwise.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/fused.h"
#include "kernels/layernorm.h"

namespace hone::kernels {

namespace {

// The bias gradient sums over chunks of at least this many rows (a whole number of pieces).
constexpr int64_t kMinChunkRows = 32;

// z[r, j] = x[r, j] + bias[j] for `n_rows` rows, in the accumulation type.
template <class T, class A>
void add_bias_rows(int64_t n_rows, int64_t cols, const T* x, const T* bias, A* z) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const T* xr = x + r * cols;
    A* zr = z + r * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) zr[j] = A(xr[j]) + A(bias[j]);
  }
}

}  // namespace

template <class T>
void bias_gelu_forward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, T* y) {
  using A = acc_t<T>;
  require_gelu_op(op, "bias_gelu_forward");
  cpu::parallel_chunks(rows, cpu::rows_per_task(cols), [&](int64_t b, int64_t e) {
    const int64_t o = b * cols, n = (e - b) * cols;
    // float and double: z lives in y itself; 16-bit: in a float buffer, rounded into y at the end.
    std::vector<A> buf;
    A* z;
    if constexpr (std::is_same_v<T, A>) {
      z = y + o;
    } else {
      buf.resize(n);
      z = buf.data();
    }
    add_bias_rows(e - b, cols, x + o, bias, z);
    unary_forward<A>(op, n, z, z, 0.0);
    if constexpr (!std::is_same_v<T, A>)
      for (int64_t i = 0; i < n; ++i) y[o + i] = T(z[i]);
  });
}

template <class T>
void bias_gelu_backward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, const T* gy,
                        T* gx, T* gbias) {
  using A = acc_t<T>;
  require_gelu_op(op, "bias_gelu_backward");
  if (!gx && !gbias) return;
  const int64_t piece = cpu::rows_per_task(cols);
  const int64_t chunk = piece * ((kMinChunkRows + piece - 1) / piece);
  const int64_t nchunks = (rows + chunk - 1) / chunk;
  // Per-chunk partial sums of the bias gradient, in double (as the composed path's reduction sums).
  std::vector<double> part(gbias ? nchunks * cols : 0);
  cpu::parallel_chunks(nchunks, 1, [&](int64_t c, int64_t) {
    double* pb = gbias ? part.data() + c * cols : nullptr;
    std::vector<A> zbuf, gbuf;
    const int64_t r_end = std::min(rows, (c + 1) * chunk);
    for (int64_t b = c * chunk; b < r_end; b += piece) {
      const int64_t e = std::min(r_end, b + piece), o = b * cols, n = (e - b) * cols;
      // z = x + bias, then (in place) z = gy * gelu'(z): in gx itself when T is the accumulation
      // type, else in float buffers.
      A* z;
      const A* g;
      if constexpr (std::is_same_v<T, A>) {
        if (!gx) zbuf.resize(n);
        z = gx ? gx + o : zbuf.data();
        g = gy + o;
      } else {
        zbuf.resize(n);
        gbuf.resize(n);
        for (int64_t i = 0; i < n; ++i) gbuf[i] = A(gy[o + i]);
        z = zbuf.data();
        g = gbuf.data();
      }
      add_bias_rows(e - b, cols, x + o, bias, z);
      unary_backward<A>(op, n, z, nullptr, g, z, 0.0);
      if constexpr (!std::is_same_v<T, A>) {
        if (gx)
          for (int64_t i = 0; i < n; ++i) gx[o + i] = T(z[i]);
      }
      if (pb)
        for (int64_t r = 0; r < e - b; ++r)
#pragma omp simd
          for (int64_t j = 0; j < cols; ++j) pb[j] += double(z[r * cols + j]);
    }
  });
  if (!gbias) return;
  // Each column adds its chunk partials in chunk order, in double.
  cpu::parallel_chunks(cols, 256, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      double s = 0;
      for (int64_t c = 0; c < nchunks; ++c) s += part[c * cols + j];
      gbias[j] = T(A(s));
    }
  });
}

template <class T>
void add_layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* residual, const T* weight,
                           const T* bias, double eps, T* sum, T* y, acc_t<T>* mean, acc_t<T>* rstd) {
  using A = acc_t<T>;
  // One piece is exactly one task of layernorm_forward, which then runs on this thread.
  cpu::parallel_chunks(rows, cpu::rows_per_task(cols), [&](int64_t b, int64_t e) {
    const int64_t o = b * cols, n = (e - b) * cols;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) sum[o + i] = T(A(x[o + i]) + A(residual[o + i]));
    layernorm_forward<T>(e - b, cols, sum + o, weight, bias, eps, y + o, mean + b, rstd + b);
  });
}

template <class T, class H>
void add_layernorm_forward_lowp(int64_t rows, int64_t cols, const H* x, const T* residual, const T* weight,
                                const T* bias, double eps, T* sum, H* y, acc_t<T>* mean, acc_t<T>* rstd) {
  using A = acc_t<T>;
  cpu::parallel_chunks(rows, cpu::rows_per_task(cols), [&](int64_t b, int64_t e) {
    const int64_t o = b * cols, n = (e - b) * cols;
    for (int64_t i = 0; i < n; ++i) sum[o + i] = T(A(T(x[o + i])) + A(residual[o + i]));
    // y in T, then rounded to H: on the CPU the value is what matters, not the saved pass.
    std::vector<T> y_t(static_cast<size_t>(n));
    layernorm_forward<T>(e - b, cols, sum + o, weight, bias, eps, y_t.data(), mean + b, rstd + b);
    for (int64_t i = 0; i < n; ++i) y[o + i] = H(y_t[static_cast<size_t>(i)]);
  });
}

HONE_FUSED_FOR_EACH_TYPE(HONE_FUSED_INSTANTIATE)
template void add_layernorm_forward_lowp<float, bf16>(int64_t, int64_t, const bf16*, const float*, const float*,
                                                      const float*, double, float*, bf16*, float*, float*);
template void add_layernorm_forward_lowp<float, f16>(int64_t, int64_t, const f16*, const float*, const float*,
                                                     const float*, double, float*, f16*, float*, float*);

}  // namespace hone::kernels
