// Harness entries for the softmax family: softmax and log_softmax over last and non-last dims,
// rows of odd lengths (1, 7, 33, 50) and one long row length (1000).
#include <cmath>

#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

namespace {

// Plain reference: x seen as [outer, n, inner] around `dim`; each (outer, inner) pair is a line.
Tensor softmax_ref(const Tensor& x, int64_t dim, bool log) {
  const Shape& s = x.shape();
  if (dim < 0) dim += x.dim();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= s[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= s[d];
  const int64_t n = s[dim];
  const std::vector<double> v = values(x);
  std::vector<double> out(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return (o * n + j) * inner + i; };
      double m = -INFINITY;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, v[at(j)]);
      double z = 0;
      for (int64_t j = 0; j < n; ++j) z += std::exp(v[at(j)] - m);
      for (int64_t j = 0; j < n; ++j)
        out[at(j)] = log ? v[at(j)] - m - std::log(z) : std::exp(v[at(j)] - m) / z;
    }
  return from_values(out, s);
}

}  // namespace

void add_softmax_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape shape;
    int64_t dim;
  };
  const Variant variants[] = {
      {{5, 1}, -1},      {{3, 7}, -1},     {{2, 4, 33}, -1}, {{6, 50}, 1},
      {{4, 1000}, -1},   {{3, 5, 7}, 0},   {{3, 5, 7}, 1},   {{7}, 0},
      {{40, 1000}, -1},  // enough rows to spread over threads
  };
  for (const Variant& v : variants) {
    for (bool log : {false, true}) {
      OpCase c;
      c.name = std::string(log ? "softmax/log_softmax/" : "softmax/softmax/") + shape_str(v.shape) +
               "/dim" + std::to_string(v.dim);
      c.inputs = {InputSpec::floats(v.shape, -4.0, 4.0)};
      const int64_t dim = v.dim;
      c.forward = [dim, log](const std::vector<Tensor>& in) {
        return log ? ops::log_softmax(in[0], dim) : ops::softmax(in[0], dim);
      };
      c.reference = [dim, log](const std::vector<Tensor>& in) { return softmax_ref(in[0], dim, log); };
      // The finite differences of sum(w * log_softmax) over thousands of elements of size ~7
      // carry rounding noise of ~1e-6 (1e-16 * sum|terms| / 2h): the tolerance covers the
      // difference quotient, not the op.
      if (log && shape_numel(v.shape) >= 4000) c.grad_tol = 2e-5;
      cases.push_back(c);
    }
  }
}

}  // namespace hone::test
