// The unary ops' formulas and derivatives, written once for the CPU kernels
// (kernels/cpu/elementwise.cpp) and the CUDA kernels (kernels/cuda/elementwise.cu). `M` supplies
// the functions in the accumulation type A: exp (the Exp op), act_exp / tanh / erf (inside the
// activations: on the CPU the vectorisable float versions of kernels/cpu/fast_math.h), log, sqrt,
// abs, pow. kernels/ref/elementwise_ref.cpp keeps its own double formulas on purpose: it is what
// these are tested against.
#pragma once
#include "kernels/elementwise.h"
#include "kernels/host_device.h"

namespace hone::kernels::formulas {

// sqrt(2/pi) (x + 0.044715 x^3): the argument of tanh in GPT-2's "gelu_new".
template <class A> HONE_HD_HOT A gelu_tanh_inner(A x) {
  return A(0.7978845608028654) * (x + A(0.044715) * x * x * x);
}

template <class M, class A> HONE_HD_HOT A unary_value(UnaryOp op, A x, A p) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return M::exp(x);
    case UnaryOp::Log: return M::log(x);
    case UnaryOp::Sqrt: return M::sqrt(x);
    case UnaryOp::Rsqrt: return A(1) / M::sqrt(x);
    case UnaryOp::Tanh: return M::tanh(x);
    case UnaryOp::Sigmoid: return A(1) / (A(1) + M::act_exp(-x));
    case UnaryOp::Relu: return x > A(0) ? x : A(0);
    case UnaryOp::GeluErf: return A(0.5) * x * (A(1) + M::erf(x * A(0.7071067811865476)));
    case UnaryOp::GeluTanh: return A(0.5) * x * (A(1) + M::tanh(gelu_tanh_inner(x)));
    case UnaryOp::Silu: return x / (A(1) + M::act_exp(-x));
    case UnaryOp::Abs: return M::abs(x);
    case UnaryOp::Pow: return M::pow(x, p);
  }
  return x;
}

// d f / d x, given x and y = f(x) (y is only read by the ops whose derivative uses it).
template <class M, class A> HONE_HD_HOT A unary_derivative(UnaryOp op, A x, A y, A p) {
  switch (op) {
    case UnaryOp::Neg: return A(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return A(1) / x;
    case UnaryOp::Sqrt: return A(0.5) / y;
    case UnaryOp::Rsqrt: return A(-0.5) * y * y * y;
    case UnaryOp::Tanh: return A(1) - y * y;
    case UnaryOp::Sigmoid: return y * (A(1) - y);
    case UnaryOp::Relu: return x > A(0) ? A(1) : A(0);
    case UnaryOp::GeluErf: {  // Phi(x) + x phi(x)
      const A cdf = A(0.5) * (A(1) + M::erf(x * A(0.7071067811865476)));
      const A pdf = M::act_exp(A(-0.5) * x * x) * A(0.3989422804014327);
      return cdf + x * pdf;
    }
    case UnaryOp::GeluTanh: {  // with t = tanh(u(x)): (1 + t) / 2 + x (1 - t^2) u'(x) / 2
      const A t = M::tanh(gelu_tanh_inner(x));
      const A dinner = A(0.7978845608028654) * (A(1) + A(3 * 0.044715) * x * x);
      return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * dinner;
    }
    case UnaryOp::Silu: {
      const A s = A(1) / (A(1) + M::act_exp(-x));
      return s * (A(1) + x * (A(1) - s));
    }
    case UnaryOp::Abs: return x > A(0) ? A(1) : (x < A(0) ? A(-1) : A(0));
    case UnaryOp::Pow: return p == A(0) ? A(0) : p * M::pow(x, p - A(1));
  }
  return A(0);
}

}  // namespace hone::kernels::formulas
