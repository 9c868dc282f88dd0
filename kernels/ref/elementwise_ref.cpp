// Reference formulas, written as plainly as possible, in double.
#include <cmath>

#include "kernels/elementwise.h"

namespace hone::kernels::ref {

double unary(UnaryOp op, double x, double p) {
  const double pi = 3.14159265358979323846;
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return 1.0 / std::sqrt(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::Relu: return x > 0 ? x : 0.0;
    case UnaryOp::GeluErf: return x * 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::GeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
    case UnaryOp::Silu: return x * (1.0 / (1.0 + std::exp(-x)));
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Pow: return std::pow(x, p);
  }
  return 0;
}

double unary_grad(UnaryOp op, double x, double p) {
  // Central difference with a step chosen for double: accurate to ~1e-10 for these smooth
  // functions away from kinks (relu and abs are handled exactly).
  if (op == UnaryOp::Relu) return x > 0 ? 1.0 : 0.0;
  if (op == UnaryOp::Abs) return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0);
  const double h = 1e-6 * (1.0 + std::fabs(x));
  return (unary(op, x + h, p) - unary(op, x - h, p)) / (2 * h);
}

double binary(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Maximum: return a > b ? a : b;
    case BinaryOp::Minimum: return a < b ? a : b;
  }
  return 0;
}

}  // namespace hone::kernels::ref
