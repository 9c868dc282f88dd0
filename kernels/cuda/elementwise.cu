// CUDA elementwise kernels: unary maps and their derivatives, broadcasting binary ops,
// comparisons, where, strided copies with dtype conversion, fill, axpy/scale.
//
// The unary formulas are kernels/unary_formulas.h's, shared with the CPU, with common.cuh's
// DeviceMath. One kernel per storage type with the op as a run-time argument: the switch is uniform
// across a warp, and it keeps the number of instantiations (and nvcc's time) small. Strided
// operands use the merged index space of common.cuh.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

template <class A> __device__ __forceinline__ A unary_value(UnaryOp op, A x, A p) {
  return formulas::unary_value<DeviceMath>(op, x, p);
}
template <class A> __device__ __forceinline__ A unary_derivative(UnaryOp op, A x, A y, A p) {
  return formulas::unary_derivative<DeviceMath>(op, x, y, p);
}

template <class T>
__global__ void unary_forward_kernel(UnaryOp op, int64_t n, const T* x, T* y, dacc_t<T> p) {
  HONE_GRID_STRIDE(i, n) y[i] = store<T>(unary_value(op, load(x[i]), p));
}

template <class T>
__global__ void unary_backward_kernel(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx,
                                      dacc_t<T> p) {
  using A = dacc_t<T>;
  HONE_GRID_STRIDE(i, n) {
    const A yi = y ? load(y[i]) : A(0);
    gx[i] = store<T>(load(gy[i]) * unary_derivative(op, load(x[i]), yi, p));
  }
}

template <class A> __device__ __forceinline__ A binary_value(BinaryOp op, A a, A b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Maximum: return a > b ? a : b;
    case BinaryOp::Minimum: return a < b ? a : b;
  }
  return a;
}

// Operand 0 is the (contiguous) output.
template <class T>
__global__ void binary_kernel(BinaryOp op, Strided<3> sp, int64_t n, const T* a, const T* b, T* out) {
  HONE_GRID_STRIDE(i, n) {
    int64_t off[3];
    sp.offsets(i, off);
    out[off[0]] = store<T>(binary_value(op, load(a[off[1]]), load(b[off[2]])));
  }
}

template <class T>
__global__ void compare_kernel(CompareOp op, Strided<3> sp, int64_t n, const T* a, const T* b, uint8_t* out) {
  HONE_GRID_STRIDE(i, n) {
    int64_t off[3];
    sp.offsets(i, off);
    const auto va = load(a[off[1]]), vb = load(b[off[2]]);
    out[off[0]] = op == CompareOp::Eq ? (va == vb) : (va > vb);
  }
}

template <class T>
__global__ void where_kernel(Strided<4> sp, int64_t n, const uint8_t* c, const T* a, const T* b, T* out) {
  HONE_GRID_STRIDE(i, n) {
    int64_t off[4];
    sp.offsets(i, off);
    out[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
  }
}

// D(S): through the source's accumulation type, and through float into the 16-bit types (the
// CPU's bf16/f16 constructors take a float).
template <class D, class S> __device__ __forceinline__ D convert(S s) {
  const auto a = load(s);
  if constexpr (std::is_same_v<D, __nv_bfloat16> || std::is_same_v<D, __half>) {
    return store<D>(static_cast<float>(a));
  } else {
    return static_cast<D>(a);
  }
}

template <class S, class D>
__global__ void copy_kernel(Strided<2> sp, int64_t n, const S* src, D* dst) {
  HONE_GRID_STRIDE(i, n) {
    int64_t off[2];
    sp.offsets(i, off);
    dst[off[0]] = convert<D>(src[off[1]]);
  }
}

// The copy of copy_strided when both sides are one dense run in the same order (a cast of a
// contiguous or same-layout tensor: autocast's weights, their gradients back): vector loads and
// stores in place of the strided kernel's element-wise index arithmetic. Needs both pointers
// aligned for Vec<., 8>; the tail past the last whole 8 goes element by element.
template <class S, class D>
__global__ void copy_flat_kernel(int64_t n, const S* src, D* dst) {
  const int64_t units = n / 8;
  HONE_GRID_STRIDE(u, units) {
    const Vec<S, 8> in = reinterpret_cast<const Vec<S, 8>*>(src)[u];
    Vec<D, 8> out;
#pragma unroll
    for (int j = 0; j < 8; ++j) out.v[j] = convert<D>(in.v[j]);
    reinterpret_cast<Vec<D, 8>*>(dst)[u] = out;
  }
  HONE_GRID_STRIDE(t, n - units * 8) dst[units * 8 + t] = convert<D>(src[units * 8 + t]);
}

template <class D>
__global__ void fill_kernel(Strided<1> sp, int64_t n, D value, D* dst) {
  HONE_GRID_STRIDE(i, n) {
    int64_t off[1];
    sp.offsets(i, off);
    dst[off[0]] = value;
  }
}

template <class T> __global__ void axpy_kernel(int64_t n, dacc_t<T> alpha, const T* b, T* a) {
  HONE_GRID_STRIDE(i, n) a[i] = store<T>(load(a[i]) + alpha * load(b[i]));
}
template <class T> __global__ void scale_kernel(int64_t n, dacc_t<T> s, T* a) {
  HONE_GRID_STRIDE(i, n) a[i] = store<T>(load(a[i]) * s);
}

// Calls f(T{}) with T the device type of an engine dtype code.
template <class F> void with_type(int code, F&& f) { with_type_code<__nv_bfloat16, __half>(code, "cuda copy_strided", f); }

void check_dims(int ndim, const char* what) {
  if (ndim > kMaxDims)
    throw std::invalid_argument(std::string(what) + ": at most " + std::to_string(kMaxDims) + " dims");
}

}  // namespace

template <class T>
void unary_forward(UnaryOp op, int64_t n, const T* x, T* y, double param, cudaStream_t stream) {
  if (n == 0) return;
  unary_forward_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, n, dptr(x), dptr(y), dacc_t<dev_t<T>>(param));
  check_launch("unary_forward");
}

template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx, double param,
                    cudaStream_t stream) {
  if (n == 0) return;
  unary_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, n, dptr(x), dptr(y), dptr(gy), dptr(gx),
                                                              dacc_t<dev_t<T>>(param));
  check_launch("unary_backward");
}

template <class T>
void binary_forward(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* sa, const T* b,
                    const int64_t* sb, T* out, cudaStream_t stream) {
  check_dims(ndim, "binary_forward");
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  int64_t so[kMaxDims];
  contiguous_strides(ndim, shape, so);
  const int64_t* st[3] = {so, sa, sb};
  binary_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, make_strided<3>(ndim, shape, st), n, dptr(a), dptr(b),
                                                      dptr(out));
  check_launch("binary_forward");
}

template <class T>
void compare(CompareOp op, int ndim, const int64_t* shape, const T* a, const int64_t* sa, const T* b,
             const int64_t* sb, uint8_t* out, cudaStream_t stream) {
  check_dims(ndim, "compare");
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  int64_t so[kMaxDims];
  contiguous_strides(ndim, shape, so);
  const int64_t* st[3] = {so, sa, sb};
  compare_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, make_strided<3>(ndim, shape, st), n, dptr(a), dptr(b),
                                                       out);
  check_launch("compare");
}

template <class T>
void where(int ndim, const int64_t* shape, const uint8_t* cond, const int64_t* sc, const T* a, const int64_t* sa,
           const T* b, const int64_t* sb, T* out, cudaStream_t stream) {
  check_dims(ndim, "where");
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  int64_t so[kMaxDims];
  contiguous_strides(ndim, shape, so);
  const int64_t* st[4] = {so, sc, sa, sb};
  where_kernel<<<grid_for(n), kThreads, 0, stream>>>(make_strided<4>(ndim, shape, st), n, cond, dptr(a), dptr(b),
                                                     dptr(out));
  check_launch("where");
}

void copy_strided(int src_type, int dst_type, int ndim, const int64_t* shape, const void* src,
                  const int64_t* ss, void* dst, const int64_t* ds, cudaStream_t stream) {
  check_dims(ndim, "copy_strided");
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  // Walk the elements in the destination's memory order (dims by decreasing destination stride): the
  // writes coalesce, and a copy between two tensors of one layout (autocast's cast of a transposed
  // weight, say) merges into a single flat dim that reads coalesced as well.
  int order[kMaxDims];
  for (int d = 0; d < ndim; ++d) order[d] = d;
  std::stable_sort(order, order + ndim, [&](int a, int b) { return ds[a] > ds[b]; });
  int64_t shape_o[kMaxDims], ds_o[kMaxDims], ss_o[kMaxDims];
  for (int i = 0; i < ndim; ++i) shape_o[i] = shape[order[i]], ds_o[i] = ds[order[i]], ss_o[i] = ss[order[i]];
  const int64_t* st[2] = {ds_o, ss_o};
  const Strided<2> sp = make_strided<2>(ndim, shape_o, st);
  const bool flat = sp.ndim == 1 && sp.strides[0][0] == 1 && sp.strides[1][0] == 1;
  with_type(src_type, [&](auto s) {
    using S = decltype(s);
    with_type(dst_type, [&](auto d) {
      using D = decltype(d);
      const S* in = static_cast<const S*>(src);
      D* out = static_cast<D*>(dst);
      if (flat && aligned_for<Vec<S, 8>>(src) && aligned_for<Vec<D, 8>>(dst)) {
        copy_flat_kernel<S, D><<<grid_for(n / 8 + 1), kThreads, 0, stream>>>(n, in, out);
      } else {
        copy_kernel<S, D><<<grid_for(n), kThreads, 0, stream>>>(sp, n, in, out);
      }
    });
  });
  check_launch("copy_strided");
}

void fill_strided(int dst_type, int ndim, const int64_t* shape, void* dst, const int64_t* ds, double value,
                  cudaStream_t stream) {
  check_dims(ndim, "fill_strided");
  const int64_t n = numel_of(ndim, shape);
  if (n == 0) return;
  const int64_t* st[1] = {ds};
  const Strided<1> sp = make_strided<1>(ndim, shape, st);
  with_type(dst_type, [&](auto d) {
    using D = decltype(d);
    // The value is converted on the host exactly as the CPU fill does: D(acc_t<D>(value)).
    D v;
    if constexpr (std::is_same_v<D, __nv_bfloat16>) {
      const uint16_t bits = bf16(static_cast<float>(value)).bits;
      std::memcpy(&v, &bits, 2);
    } else if constexpr (std::is_same_v<D, __half>) {
      const uint16_t bits = f16(static_cast<float>(value)).bits;
      std::memcpy(&v, &bits, 2);
    } else if constexpr (std::is_integral_v<D>) {
      v = static_cast<D>(static_cast<int64_t>(value));
    } else {
      v = static_cast<D>(value);
    }
    fill_kernel<D><<<grid_for(n), kThreads, 0, stream>>>(sp, n, v, static_cast<D*>(dst));
  });
  check_launch("fill_strided");
}

template <class T> void axpy(int64_t n, double alpha, const T* b, T* a, cudaStream_t stream) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, dacc_t<dev_t<T>>(alpha), dptr(b), dptr(a));
  check_launch("axpy");
}

template <class T> void scale(int64_t n, double s, T* a, cudaStream_t stream) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, dacc_t<dev_t<T>>(s), dptr(a));
  check_launch("scale");
}

#define HONE_INSTANTIATE_FLOAT(T)                                                                          \
  template void unary_forward<T>(UnaryOp, int64_t, const T*, T*, double, cudaStream_t);                    \
  template void unary_backward<T>(UnaryOp, int64_t, const T*, const T*, const T*, T*, double, cudaStream_t); \
  template void binary_forward<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*, const T*,        \
                                  const int64_t*, T*, cudaStream_t);                                       \
  template void axpy<T>(int64_t, double, const T*, T*, cudaStream_t);                                      \
  template void scale<T>(int64_t, double, T*, cudaStream_t);
#define HONE_INSTANTIATE_COMPARE(T)                                                                        \
  template void compare<T>(CompareOp, int, const int64_t*, const T*, const int64_t*, const T*,             \
                           const int64_t*, uint8_t*, cudaStream_t);
#define HONE_INSTANTIATE_WHERE(T)                                                                          \
  template void where<T>(int, const int64_t*, const uint8_t*, const int64_t*, const T*, const int64_t*,    \
                         const T*, const int64_t*, T*, cudaStream_t);
HONE_INSTANTIATE_FLOAT(float)
HONE_INSTANTIATE_FLOAT(double)
HONE_INSTANTIATE_FLOAT(bf16)
HONE_INSTANTIATE_FLOAT(f16)
HONE_INSTANTIATE_COMPARE(float)
HONE_INSTANTIATE_COMPARE(double)
HONE_INSTANTIATE_COMPARE(bf16)
HONE_INSTANTIATE_COMPARE(f16)
HONE_INSTANTIATE_COMPARE(int32_t)
HONE_INSTANTIATE_COMPARE(int64_t)
HONE_INSTANTIATE_WHERE(float)
HONE_INSTANTIATE_WHERE(double)
HONE_INSTANTIATE_WHERE(bf16)
HONE_INSTANTIATE_WHERE(f16)
HONE_INSTANTIATE_WHERE(int64_t)
#undef HONE_INSTANTIATE_FLOAT
#undef HONE_INSTANTIATE_COMPARE
#undef HONE_INSTANTIATE_WHERE

}  // namespace hone::kernels::cuda
