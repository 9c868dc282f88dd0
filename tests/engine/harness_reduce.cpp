// Harness entries: sum, mean, max, var over axes.
#include <cmath>
#include <limits>

#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

namespace {

// Plain reference: for every output position, walk all input positions that map to it.
enum class R { Sum, Mean, Max, Var };

Tensor reduce_ref(const Tensor& x, std::vector<int64_t> dims, bool keepdim, R kind) {
  const int64_t nd = x.dim();
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  for (int64_t& d : dims) d = d < 0 ? d + nd : d;
  std::vector<bool> red(nd, false);
  for (int64_t d : dims) red[d] = true;
  Shape out_shape, kept_shape;
  for (int64_t d = 0; d < nd; ++d) {
    kept_shape.push_back(red[d] ? 1 : x.shape()[d]);
    if (!red[d] || keepdim) out_shape.push_back(red[d] ? 1 : x.shape()[d]);
  }
  const int64_t n_out = shape_numel(kept_shape);
  std::vector<std::vector<double>> groups(n_out);
  const std::vector<double> v = values(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, out_idx = 0, mult = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t coord = rem % x.shape()[d];
      rem /= x.shape()[d];
      if (!red[d]) out_idx += coord * mult;
      mult *= kept_shape[d];
    }
    groups[out_idx].push_back(v[i]);
  }
  std::vector<double> out(n_out);
  for (int64_t o = 0; o < n_out; ++o) {
    const auto& g = groups[o];
    double s = 0, m = -std::numeric_limits<double>::infinity();
    for (double e : g) s += e, m = std::max(m, e);
    const double mean = s / double(g.size());
    double ss = 0;
    for (double e : g) ss += (e - mean) * (e - mean);
    switch (kind) {
      case R::Sum: out[o] = s; break;
      case R::Mean: out[o] = mean; break;
      case R::Max: out[o] = m; break;
      case R::Var: out[o] = ss / double(g.size() - 1); break;
    }
  }
  return from_values(out, out_shape);
}

}  // namespace

void add_reduce_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape shape;
    std::vector<int64_t> dims;
    bool keepdim;
  };
  const Variant variants[] = {
      {{7}, {}, false},          {{3, 5}, {1}, false},      {{3, 5}, {0}, true},
      {{2, 3, 4}, {0, 2}, false}, {{2, 3, 4}, {-1}, true},  {{5, 1, 3}, {}, false},
      {{4, 6, 5}, {1, 2}, false}, {{300}, {0}, false},
  };
  for (const Variant& v : variants) {
    const std::string suffix = shape_str(v.shape) + "/dims" + shape_str(v.dims) + (v.keepdim ? "/keep" : "");
    for (auto [name, kind] : {std::pair{"sum", R::Sum}, std::pair{"mean", R::Mean}, std::pair{"max", R::Max},
                              std::pair{"var", R::Var}}) {
      OpCase c;
      c.name = std::string("reduce/") + name + "/" + suffix;
      c.inputs = {InputSpec::floats(v.shape)};
      const auto dims = v.dims;
      const bool keep = v.keepdim;
      const R k = kind;
      c.forward = [dims, keep, k](const std::vector<Tensor>& in) {
        switch (k) {
          case R::Sum: return ops::sum(in[0], dims, keep);
          case R::Mean: return ops::mean(in[0], dims, keep);
          case R::Max: return ops::max(in[0], dims, keep);
          case R::Var: return ops::var(in[0], dims, 1, keep);
        }
        return Tensor();
      };
      c.reference = [dims, keep, k](const std::vector<Tensor>& in) { return reduce_ref(in[0], dims, keep, k); };
      if (kind == R::Var) c.tol_half = 6e-2;
      cases.push_back(c);
    }
  }
}

}  // namespace hone::test
