// CPU elementwise kernels. Loops are written so gcc vectorises them at -O3 (contiguous inner
// loops with unit stride get their own branch); arithmetic happens in acc_t<T>.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/elementwise.h"
#include "kernels/unary_formulas.h"

namespace hone::kernels {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Rsqrt: return "rsqrt";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::GeluErf: return "gelu";
    case UnaryOp::GeluTanh: return "gelu_tanh";
    case UnaryOp::Silu: return "silu";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Pow: return "pow";
  }
  return "?";
}

namespace {

using cpu::parallel_chunks;
constexpr int64_t kChunk = 1 << 14;

// exp, tanh and erf of the activations: the vectorisable versions in float (kernels/cpu/
// fast_math.h), libm in double (the gradient checks' reference precision).
template <class A> [[gnu::always_inline]] inline A act_exp(A x) {
  if constexpr (std::is_same_v<A, float>) return cpu::fast::exp_f(x);
  else return std::exp(x);
}
template <class A> [[gnu::always_inline]] inline A act_tanh(A x) {
  if constexpr (std::is_same_v<A, float>) return cpu::fast::tanh_f(x);
  else return std::tanh(x);
}
template <class A> [[gnu::always_inline]] inline A act_erf(A x) {
  if constexpr (std::is_same_v<A, float>) return cpu::fast::erf_f(x);
  else return std::erf(x);
}

// The functions of kernels/unary_formulas.h on the CPU.
struct CpuMath {
  template <class A> [[gnu::always_inline]] static A exp(A x) { return std::exp(x); }
  template <class A> [[gnu::always_inline]] static A act_exp(A x) { return hone::kernels::act_exp(x); }
  template <class A> [[gnu::always_inline]] static A tanh(A x) { return act_tanh(x); }
  template <class A> [[gnu::always_inline]] static A erf(A x) { return act_erf(x); }
  template <class A> [[gnu::always_inline]] static A log(A x) { return std::log(x); }
  template <class A> [[gnu::always_inline]] static A sqrt(A x) { return std::sqrt(x); }
  template <class A> [[gnu::always_inline]] static A abs(A x) { return std::fabs(x); }
  template <class A> [[gnu::always_inline]] static A pow(A x, A p) { return std::pow(x, p); }
};

template <class A> [[gnu::always_inline]] inline A unary_value(UnaryOp op, A x, A p) {
  return formulas::unary_value<CpuMath>(op, x, p);
}
template <class A> [[gnu::always_inline]] inline A unary_derivative(UnaryOp op, A x, A y, A p) {
  return formulas::unary_derivative<CpuMath>(op, x, y, p);
}

// The switch is hoisted out of the loop: one vectorisable loop per op.
template <class T, UnaryOp OP>
void unary_loop(int64_t b, int64_t e, const T* x, T* y, acc_t<T> p) {
  using A = acc_t<T>;
#pragma omp simd
  for (int64_t i = b; i < e; ++i) y[i] = T(unary_value<A>(OP, A(x[i]), p));
}

template <class T, UnaryOp OP>
void unary_grad_loop(int64_t b, int64_t e, const T* x, const T* y, const T* gy, T* gx, acc_t<T> p) {
  using A = acc_t<T>;
  // Two loops rather than a test per element: a conditional load keeps gcc from vectorising.
  if (y) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) gx[i] = T(A(gy[i]) * unary_derivative<A>(OP, A(x[i]), A(y[i]), p));
  } else {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) gx[i] = T(A(gy[i]) * unary_derivative<A>(OP, A(x[i]), A(0), p));
  }
}

template <class T, template <class, UnaryOp> class Loop, class... Args>
void dispatch_unary(UnaryOp op, Args&&... args) {
  switch (op) {
#define HONE_CASE(NAME) \
  case UnaryOp::NAME: return Loop<T, UnaryOp::NAME>::run(args...);
    HONE_CASE(Neg) HONE_CASE(Exp) HONE_CASE(Log) HONE_CASE(Sqrt) HONE_CASE(Rsqrt) HONE_CASE(Tanh)
    HONE_CASE(Sigmoid) HONE_CASE(Relu) HONE_CASE(GeluErf) HONE_CASE(GeluTanh) HONE_CASE(Silu)
    HONE_CASE(Abs) HONE_CASE(Pow)
#undef HONE_CASE
  }
}

template <class T, UnaryOp OP> struct ForwardLoop {
  static void run(int64_t b, int64_t e, const T* x, T* y, acc_t<T> p) { unary_loop<T, OP>(b, e, x, y, p); }
};
template <class T, UnaryOp OP> struct BackwardLoop {
  static void run(int64_t b, int64_t e, const T* x, const T* y, const T* gy, T* gx, acc_t<T> p) {
    unary_grad_loop<T, OP>(b, e, x, y, gy, gx, p);
  }
};

template <class A> inline A binary_value(BinaryOp op, A a, A b) {
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

template <class T, BinaryOp OP>
void binary_impl(int ndim, const int64_t* shape, const T* a, const int64_t* sa, const T* b,
                 const int64_t* sb, T* out) {
  using A = acc_t<T>;
  // The output is contiguous: its strides are the row-major ones.
  int64_t so[kMaxDims];
  int64_t acc = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    so[d] = acc;
    acc *= shape[d];
  }
  cpu::StridedSpace<3> sp(ndim, shape, {so, sa, sb});
  cpu::for_each_row(sp, [&](const int64_t* off, int64_t len, const int64_t* inner) {
    T* o = out + off[0];
    const T* pa = a + off[1];
    const T* pb = b + off[2];
    if (inner[1] == 1 && inner[2] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) o[i] = T(binary_value<A>(OP, A(pa[i]), A(pb[i])));
    } else if (inner[1] == 1 && inner[2] == 0) {
      const A vb = A(pb[0]);
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) o[i] = T(binary_value<A>(OP, A(pa[i]), vb));
    } else if (inner[1] == 0 && inner[2] == 1) {
      const A va = A(pa[0]);
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) o[i] = T(binary_value<A>(OP, va, A(pb[i])));
    } else {
      for (int64_t i = 0; i < len; ++i)
        o[i] = T(binary_value<A>(OP, A(pa[i * inner[1]]), A(pb[i * inner[2]])));
    }
  });
}

void contiguous_strides_of(int ndim, const int64_t* shape, int64_t* out) {
  int64_t acc = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    out[d] = acc;
    acc *= shape[d];
  }
}

template <class S, class D>
void copy_typed(int ndim, const int64_t* shape, const S* src, const int64_t* ss, D* dst,
                const int64_t* ds) {
  cpu::StridedSpace<2> sp(ndim, shape, {ds, ss});
  cpu::for_each_row(sp, [&](const int64_t* off, int64_t len, const int64_t* inner) {
    D* d = dst + off[0];
    const S* s = src + off[1];
    if constexpr (std::is_same_v<S, D>) {
      if (inner[0] == 1 && inner[1] == 1) {
        std::memcpy(d, s, len * sizeof(D));
        return;
      }
    }
    if (inner[0] == 1 && inner[1] == 1) {
      for (int64_t i = 0; i < len; ++i) d[i] = D(acc_t<S>(s[i]));
    } else {
      for (int64_t i = 0; i < len; ++i) d[i * inner[0]] = D(acc_t<S>(s[i * inner[1]]));
    }
  });
}

template <class F>
void with_type(int code, F&& f) {
  with_type_code<bf16, f16>(code, "copy_strided", f);
}

}  // namespace

// acc_t of integer types: the generic acc_type is float, which would lose int64 precision in
// copies; integers convert through double here.
template <class T>
void unary_forward(UnaryOp op, int64_t n, const T* x, T* y, double param) {
  parallel_chunks(n, kChunk, [&](int64_t b, int64_t e) {
    dispatch_unary<T, ForwardLoop>(op, b, e, x, y, acc_t<T>(param));
  });
}

template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx, double param) {
  parallel_chunks(n, kChunk, [&](int64_t b, int64_t e) {
    dispatch_unary<T, BackwardLoop>(op, b, e, x, y, gy, gx, acc_t<T>(param));
  });
}

template <class T>
void binary_forward(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* sa,
                    const T* b, const int64_t* sb, T* out) {
  switch (op) {
    case BinaryOp::Add: return binary_impl<T, BinaryOp::Add>(ndim, shape, a, sa, b, sb, out);
    case BinaryOp::Sub: return binary_impl<T, BinaryOp::Sub>(ndim, shape, a, sa, b, sb, out);
    case BinaryOp::Mul: return binary_impl<T, BinaryOp::Mul>(ndim, shape, a, sa, b, sb, out);
    case BinaryOp::Div: return binary_impl<T, BinaryOp::Div>(ndim, shape, a, sa, b, sb, out);
    case BinaryOp::Maximum: return binary_impl<T, BinaryOp::Maximum>(ndim, shape, a, sa, b, sb, out);
    case BinaryOp::Minimum: return binary_impl<T, BinaryOp::Minimum>(ndim, shape, a, sa, b, sb, out);
  }
}

template <class T>
void compare(CompareOp op, int ndim, const int64_t* shape, const T* a, const int64_t* sa,
             const T* b, const int64_t* sb, uint8_t* out) {
  int64_t so[kMaxDims];
  contiguous_strides_of(ndim, shape, so);
  cpu::StridedSpace<3> sp(ndim, shape, {so, sa, sb});
  cpu::for_each_row(sp, [&](const int64_t* off, int64_t len, const int64_t* inner) {
    for (int64_t i = 0; i < len; ++i) {
      const auto va = acc_t<T>(a[off[1] + i * inner[1]]);
      const auto vb = acc_t<T>(b[off[2] + i * inner[2]]);
      out[off[0] + i] = op == CompareOp::Eq ? (va == vb) : (va > vb);
    }
  });
}

template <class T>
void where(int ndim, const int64_t* shape, const uint8_t* cond, const int64_t* sc, const T* a,
           const int64_t* sa, const T* b, const int64_t* sb, T* out) {
  int64_t so[kMaxDims];
  contiguous_strides_of(ndim, shape, so);
  cpu::StridedSpace<4> sp(ndim, shape, {so, sc, sa, sb});
  cpu::for_each_row(sp, [&](const int64_t* off, int64_t len, const int64_t* inner) {
    for (int64_t i = 0; i < len; ++i)
      out[off[0] + i] = cond[off[1] + i * inner[1]] ? a[off[2] + i * inner[2]] : b[off[3] + i * inner[3]];
  });
}

void copy_strided(int src_type, int dst_type, int ndim, const int64_t* shape, const void* src,
                  const int64_t* ss, void* dst, const int64_t* ds) {
  with_type(src_type, [&](auto s) {
    using S = decltype(s);
    with_type(dst_type, [&](auto d) {
      using D = decltype(d);
      copy_typed<S, D>(ndim, shape, static_cast<const S*>(src), ss, static_cast<D*>(dst), ds);
    });
  });
}

void fill_strided(int dst_type, int ndim, const int64_t* shape, void* dst, const int64_t* ds,
                  double value) {
  with_type(dst_type, [&](auto d) {
    using D = decltype(d);
    const D v = D(static_cast<acc_t<D>>(value));
    cpu::StridedSpace<1> sp(ndim, shape, {ds});
    cpu::for_each_row(sp, [&](const int64_t* off, int64_t len, const int64_t* inner) {
      D* p = static_cast<D*>(dst) + off[0];
      for (int64_t i = 0; i < len; ++i) p[i * inner[0]] = v;
    });
  });
}

template <class T> void axpy(int64_t n, double alpha, const T* b, T* a) {
  using A = acc_t<T>;
  const A al = A(alpha);
  parallel_chunks(n, kChunk, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; ++i) a[i] = T(A(a[i]) + al * A(b[i]));
  });
}

template <class T> void scale(int64_t n, double s, T* a) {
  using A = acc_t<T>;
  const A sc = A(s);
  parallel_chunks(n, kChunk, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) a[i] = T(A(a[i]) * sc);
  });
}

#define HONE_INSTANTIATE(T)                                                                      \
  template void unary_forward<T>(UnaryOp, int64_t, const T*, T*, double);                        \
  template void unary_backward<T>(UnaryOp, int64_t, const T*, const T*, const T*, T*, double);   \
  template void binary_forward<T>(BinaryOp, int, const int64_t*, const T*, const int64_t*,       \
                                  const T*, const int64_t*, T*);                                 \
  template void compare<T>(CompareOp, int, const int64_t*, const T*, const int64_t*, const T*,   \
                           const int64_t*, uint8_t*);                                            \
  template void where<T>(int, const int64_t*, const uint8_t*, const int64_t*, const T*,          \
                         const int64_t*, const T*, const int64_t*, T*);                          \
  template void axpy<T>(int64_t, double, const T*, T*);                                          \
  template void scale<T>(int64_t, double, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

template void compare<int32_t>(CompareOp, int, const int64_t*, const int32_t*, const int64_t*,
                               const int32_t*, const int64_t*, uint8_t*);
template void compare<int64_t>(CompareOp, int, const int64_t*, const int64_t*, const int64_t*,
                               const int64_t*, const int64_t*, uint8_t*);
template void where<int64_t>(int, const int64_t*, const uint8_t*, const int64_t*, const int64_t*,
                             const int64_t*, const int64_t*, const int64_t*, int64_t*);

}  // namespace hone::kernels
