// Harness entries: unary maps and broadcasting binary ops.
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"
#include "op_harness.h"

namespace hone::test {

namespace {

using kernels::UnaryOp;

OpFn unary_ref(UnaryOp op, double param = 0) {
  return [=](const std::vector<Tensor>& in) {
    std::vector<double> v = values(in[0]);
    for (double& x : v) x = kernels::ref::unary(op, x, param);
    return from_values(v, in[0].shape());
  };
}

// Broadcasting reference: index arithmetic written out by hand.
OpFn binary_ref(kernels::BinaryOp op) {
  return [=](const std::vector<Tensor>& in) {
    const Shape out_shape = ops::broadcast_shapes(in[0].shape(), in[1].shape());
    const int64_t n = shape_numel(out_shape);
    const std::vector<double> a = values(in[0]), b = values(in[1]);
    std::vector<double> out(n);
    auto source_index = [&](const Shape& s, int64_t flat) {
      int64_t idx = 0, mult = 1;
      for (int64_t d = int64_t(out_shape.size()) - 1; d >= 0; --d) {
        const int64_t coord = flat % out_shape[d];
        flat /= out_shape[d];
        const int64_t sd = d - (int64_t(out_shape.size()) - int64_t(s.size()));
        if (sd < 0) continue;
        idx += (s[sd] == 1 ? 0 : coord) * mult;
        mult *= s[sd];
      }
      return idx;
    };
    for (int64_t i = 0; i < n; ++i)
      out[i] = kernels::ref::binary(op, a[source_index(in[0].shape(), i)], b[source_index(in[1].shape(), i)]);
    return from_values(out, out_shape);
  };
}

}  // namespace

void add_elementwise_cases(std::vector<OpCase>& cases) {
  struct U {
    const char* name;
    UnaryOp op;
    Tensor (*fn)(const Tensor&);
    double lo, hi;
  };
  const U unaries[] = {
      {"neg", UnaryOp::Neg, ops::neg, -2, 2},
      {"exp", UnaryOp::Exp, ops::exp, -2, 2},
      {"log", UnaryOp::Log, ops::log, 0.2, 3},
      {"sqrt", UnaryOp::Sqrt, ops::sqrt, 0.2, 3},
      {"rsqrt", UnaryOp::Rsqrt, ops::rsqrt, 0.2, 3},
      {"tanh", UnaryOp::Tanh, ops::tanh, -3, 3},
      {"sigmoid", UnaryOp::Sigmoid, ops::sigmoid, -4, 4},
      {"relu", UnaryOp::Relu, ops::relu, -2, 2},
      {"silu", UnaryOp::Silu, ops::silu, -4, 4},
      {"abs", UnaryOp::Abs, ops::abs, -2, 2},
  };
  const Shape shapes[] = {{1}, {7}, {3, 5}, {2, 13, 17}};
  for (const U& u : unaries) {
    for (const Shape& s : shapes) {
      OpCase c;
      c.name = std::string("unary/") + u.name + "/" + shape_str(s);
      c.inputs = {InputSpec::floats(s, u.lo, u.hi)};
      auto fn = u.fn;
      c.forward = [fn](const std::vector<Tensor>& in) { return fn(in[0]); };
      c.reference = unary_ref(u.op);
      cases.push_back(c);
    }
  }
  for (const Shape& s : {Shape{5}, Shape{4, 33}}) {
    for (auto [name, approx, op] : {std::tuple{"gelu_erf", ops::GeluApprox::None, UnaryOp::GeluErf},
                                    std::tuple{"gelu_tanh", ops::GeluApprox::Tanh, UnaryOp::GeluTanh}}) {
      OpCase c;
      c.name = std::string("unary/") + name + "/" + shape_str(s);
      c.inputs = {InputSpec::floats(s, -4, 4)};
      c.forward = [approx](const std::vector<Tensor>& in) { return ops::gelu(in[0], approx); };
      c.reference = unary_ref(op);
      cases.push_back(c);
    }
    for (double p : {2.0, 0.5, -1.5, 3.0}) {
      OpCase c;
      c.name = "unary/pow" + std::to_string(p) + "/" + shape_str(s);
      c.inputs = {InputSpec::floats(s, 0.3, 2.5)};
      c.forward = [p](const std::vector<Tensor>& in) { return ops::pow(in[0], p); };
      c.reference = unary_ref(UnaryOp::Pow, p);
      cases.push_back(c);
    }
  }

  struct B {
    const char* name;
    kernels::BinaryOp op;
    Tensor (*fn)(const Tensor&, const Tensor&);
    double lo_b, hi_b;
  };
  const B binaries[] = {
      {"add", kernels::BinaryOp::Add, ops::add, -2, 2},
      {"sub", kernels::BinaryOp::Sub, ops::sub, -2, 2},
      {"mul", kernels::BinaryOp::Mul, ops::mul, -2, 2},
      {"div", kernels::BinaryOp::Div, ops::div, 0.5, 2.5},
      {"maximum", kernels::BinaryOp::Maximum, ops::maximum, -2, 2},
  };
  const std::pair<Shape, Shape> pairs[] = {
      {{7}, {7}},           {{3, 5}, {3, 5}},        {{3, 5}, {5}},      {{3, 5}, {3, 1}},
      {{1}, {2, 3}},        {{2, 1, 7}, {3, 1}},     {{13}, {}},         {{4, 1, 3}, {1, 5, 1}},
  };
  for (const B& b : binaries) {
    for (const auto& [sa, sb] : pairs) {
      OpCase c;
      c.name = std::string("binary/") + b.name + "/" + shape_str(sa) + "x" + shape_str(sb);
      c.inputs = {InputSpec::floats(sa), InputSpec::floats(sb, b.lo_b, b.hi_b)};
      auto fn = b.fn;
      c.forward = [fn](const std::vector<Tensor>& in) { return fn(in[0], in[1]); };
      c.reference = binary_ref(b.op);
      cases.push_back(c);
    }
  }
}

}  // namespace hone::test
