// Harness entries for joining, splitting and indexing. References are plain loops in float64
// (kernels::ref for index_select and gather).
#include "engine/ops/ops.h"
#include "kernels/indexing.h"
#include "op_harness.h"

namespace hone::test {

namespace {

int64_t wrap(int64_t d, int64_t nd) { return d < 0 ? d + nd : d; }

// Sizes of a tensor seen as [outer, shape[d], inner].
struct Split3 {
  int64_t outer = 1, mid = 1, inner = 1;
  Split3(const Shape& s, int64_t d) {
    for (int64_t k = 0; k < static_cast<int64_t>(s.size()); ++k) (k < d ? outer : k == d ? mid : inner) *= s[k];
  }
};

// The flat index in a tensor of shape `src` of the element that broadcasting sends to flat
// position `flat` of `out`.
int64_t broadcast_source(const Shape& src, const Shape& out, int64_t flat) {
  int64_t idx = 0, mult = 1;
  const int64_t lead = static_cast<int64_t>(out.size() - src.size());
  for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
    const int64_t coord = flat % out[d];
    flat /= out[d];
    if (d < lead) continue;
    idx += (src[d - lead] == 1 ? 0 : coord) * mult;
    mult *= src[d - lead];
  }
  return idx;
}

Shape broadcast3(const Shape& a, const Shape& b, const Shape& c) {
  return ops::broadcast_shapes(ops::broadcast_shapes(a, b), c);
}

// Piece p of a split gets the scale (p + 1) * (-1)^p: a piece boundary in the wrong place
// multiplies some element by the wrong factor.
double piece_scale(size_t p) { return double(p + 1) * (p % 2 ? -1.0 : 1.0); }

// Forward for split-like ops: scale the pieces differently, then join them again.
Tensor scale_and_join(const std::vector<Tensor>& pieces, int64_t dim) {
  std::vector<Tensor> scaled;
  for (size_t p = 0; p < pieces.size(); ++p) scaled.push_back(ops::mul(pieces[p], piece_scale(p)));
  return ops::concat(scaled, dim);
}

// Reference for scale_and_join: element k along dim belongs to piece piece_of(k).
template <class PieceOf>
Tensor scaled_pieces_ref(const Tensor& x, int64_t dim, PieceOf piece_of) {
  const int64_t d = wrap(dim, x.dim());
  const Split3 s(x.shape(), d);
  std::vector<double> v = values(x);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t k = 0; k < s.mid; ++k)
      for (int64_t i = 0; i < s.inner; ++i) v[(o * s.mid + k) * s.inner + i] *= piece_scale(piece_of(k));
  return from_values(v, x.shape());
}

void add_concat_cases(std::vector<OpCase>& cases) {
  struct Variant {
    std::vector<Shape> shapes;
    int64_t dim;
  };
  const Variant variants[] = {
      {{{2, 3}, {4, 3}, {1, 3}}, 0},
      {{{2, 3}, {2, 1}, {2, 4}}, 1},
      {{{2, 3, 2}, {2, 3, 5}, {2, 3, 1}}, -1},
      {{{3, 2, 4}, {3, 1, 4}, {3, 5, 4}}, 1},
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/concat/dim";
    c.name += std::to_string(v.dim);
    for (const Shape& s : v.shapes) {
      c.name += '/';
      c.name += shape_str(s);
      c.inputs.push_back(InputSpec::floats(s));
    }
    const int64_t dim = v.dim;
    c.forward = [dim](const std::vector<Tensor>& in) { return ops::concat(in, dim); };
    c.reference = [dim](const std::vector<Tensor>& in) {
      const int64_t d = wrap(dim, in[0].dim());
      Shape out_shape = in[0].shape();
      out_shape[d] = 0;
      for (const Tensor& t : in) out_shape[d] += t.size(d);
      const Split3 so(out_shape, d);
      std::vector<double> out(shape_numel(out_shape));
      int64_t start = 0;
      for (const Tensor& t : in) {
        const Split3 st(t.shape(), d);
        const std::vector<double> tv = values(t);
        for (int64_t o = 0; o < st.outer; ++o)
          for (int64_t k = 0; k < st.mid; ++k)
            for (int64_t i = 0; i < st.inner; ++i)
              out[(o * so.mid + start + k) * so.inner + i] = tv[(o * st.mid + k) * st.inner + i];
        start += st.mid;
      }
      return from_values(out, out_shape);
    };
    cases.push_back(c);
  }
}

void add_split_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape shape;
    std::vector<int64_t> sizes;
    int64_t dim;
  };
  const Variant variants[] = {
      {{7, 4}, {2, 4, 1}, 0},
      {{3, 9}, {5, 1, 3}, 1},
      {{2, 3, 6}, {1, 0, 5}, -1},  // an empty piece
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/split/" + shape_str(v.shape) + "/sizes" + shape_str(v.sizes) + "/dim" + std::to_string(v.dim);
    c.inputs = {InputSpec::floats(v.shape)};
    const std::vector<int64_t> sizes = v.sizes;
    const int64_t dim = v.dim;
    c.forward = [sizes, dim](const std::vector<Tensor>& in) { return scale_and_join(ops::split(in[0], sizes, dim), dim); };
    c.reference = [sizes, dim](const std::vector<Tensor>& in) {
      return scaled_pieces_ref(in[0], dim, [&](int64_t k) {
        size_t p = 0;
        for (int64_t end = sizes[0]; k >= end; end += sizes[++p]) {}
        return p;
      });
    };
    cases.push_back(c);
  }
}

void add_chunk_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape shape;
    int64_t chunks, dim;
  };
  const Variant variants[] = {
      {{7, 3}, 3, 0},   // 3, 3, 1
      {{2, 10}, 4, 1},  // 3, 3, 3, 1
      {{2, 3}, 5, -1},  // more chunks than elements: 1, 1, 1
      {{6, 4}, 2, 0},   // even: 3, 3
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/chunk/" + shape_str(v.shape) + "/chunks" + std::to_string(v.chunks) + "/dim" + std::to_string(v.dim);
    c.inputs = {InputSpec::floats(v.shape)};
    const int64_t chunks = v.chunks, dim = v.dim;
    c.forward = [chunks, dim](const std::vector<Tensor>& in) { return scale_and_join(ops::chunk(in[0], chunks, dim), dim); };
    c.reference = [chunks, dim](const std::vector<Tensor>& in) {
      const int64_t size = in[0].size(dim);
      const int64_t step = (size + chunks - 1) / chunks;
      return scaled_pieces_ref(in[0], dim, [step](int64_t k) { return static_cast<size_t>(k / step); });
    };
    cases.push_back(c);
  }
}

void add_index_select_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape shape;
    int64_t dim, n;
    bool int32;
  };
  const Variant variants[] = {
      {{5, 4}, 0, 7, false},     // more ids than rows: repeats
      {{3, 6}, 1, 4, false},
      {{2, 5, 3}, 1, 8, true},   // int32, middle dim
      {{1, 3}, 0, 3, false},     // a single row, selected three times
      {{50, 700}, 0, 60, false}, // several parallel row blocks in the backward
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/index_select/" + shape_str(v.shape) + "/dim" + std::to_string(v.dim) + "/n" +
             std::to_string(v.n) + (v.int32 ? "/int32" : "");
    c.inputs = {InputSpec::floats(v.shape), InputSpec::index({v.n}, v.shape[v.dim])};
    const int64_t dim = v.dim;
    const bool int32 = v.int32;
    c.forward = [dim, int32](const std::vector<Tensor>& in) {
      return ops::index_select(in[0], dim, int32 ? in[1].to(DType::I32) : in[1]);
    };
    c.reference = [dim](const std::vector<Tensor>& in) {
      const Split3 s(in[0].shape(), dim);
      const std::vector<double> x = values(in[0]);
      const std::vector<int64_t> idx = in[1].to_vector<int64_t>();
      const int64_t n = static_cast<int64_t>(idx.size());
      std::vector<double> out(s.outer * n * s.inner);
      kernels::ref::index_select(s.outer, s.mid, s.inner, x.data(), n, idx.data(), out.data());
      Shape shape = in[0].shape();
      shape[dim] = n;
      return from_values(out, shape);
    };
    cases.push_back(c);
  }
}

void add_gather_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape x, index;
    int64_t dim;
  };
  const Variant variants[] = {
      {{4, 5}, {3, 5}, 0},
      {{4, 5}, {2, 3}, 0},         // index smaller than x in the other dim too
      {{3, 6}, {3, 4}, -1},
      {{2, 3, 4}, {2, 5, 3}, 1},   // more ids along dim than x has: repeats
      {{40, 600}, {40, 600}, 0},   // several parallel line blocks in the backward
      {{600, 40}, {600, 50}, -1},
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/gather/" + shape_str(v.x) + "/index" + shape_str(v.index) + "/dim" + std::to_string(v.dim);
    const int64_t d = wrap(v.dim, static_cast<int64_t>(v.x.size()));
    c.inputs = {InputSpec::floats(v.x), InputSpec::index(v.index, v.x[d])};
    const int64_t dim = v.dim;  // as given (possibly negative) to the op; `d` for the reference
    c.forward = [dim](const std::vector<Tensor>& in) { return ops::gather(in[0], dim, in[1]); };
    c.reference = [d](const std::vector<Tensor>& in) {
      const std::vector<double> x = values(in[0]);
      const std::vector<int64_t> idx = in[1].to_vector<int64_t>();
      std::vector<double> out(idx.size());
      kernels::ref::gather(static_cast<int>(in[0].dim()), in[0].shape().data(), in[1].shape().data(), static_cast<int>(d),
                           x.data(), idx.data(), out.data());
      return from_values(out, in[1].shape());
    };
    cases.push_back(c);
  }
}

void add_where_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape cond, a, b;
  };
  const Variant variants[] = {
      {{3, 1}, {3, 4}, {4}},
      {{2, 3, 4}, {1, 4}, {2, 1, 1}},
      {{4}, {2, 3, 4}, {2, 3, 4}},
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/where/cond" + shape_str(v.cond) + "/a" + shape_str(v.a) + "/b" + shape_str(v.b);
    c.inputs = {InputSpec::mask(v.cond), InputSpec::floats(v.a), InputSpec::floats(v.b)};
    c.forward = [](const std::vector<Tensor>& in) { return ops::where(in[0], in[1], in[2]); };
    c.reference = [](const std::vector<Tensor>& in) {
      const Shape shape = broadcast3(in[0].shape(), in[1].shape(), in[2].shape());
      const std::vector<double> cond = values(in[0]), a = values(in[1]), b = values(in[2]);
      std::vector<double> out(shape_numel(shape));
      for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i)
        out[i] = cond[broadcast_source(in[0].shape(), shape, i)] != 0 ? a[broadcast_source(in[1].shape(), shape, i)]
                                                                       : b[broadcast_source(in[2].shape(), shape, i)];
      return from_values(out, shape);
    };
    cases.push_back(c);
  }
}

void add_masked_fill_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape x, mask;
    double value;
  };
  const Variant variants[] = {
      {{3, 4}, {4}, 7.5},
      {{2, 3, 4}, {2, 1, 4}, -3.0},
      {{5, 6}, {5, 6}, 0.25},
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "indexing/masked_fill/" + shape_str(v.x) + "/mask" + shape_str(v.mask);
    c.inputs = {InputSpec::floats(v.x), InputSpec::mask(v.mask, 0.4)};
    const double value = v.value;
    c.forward = [value](const std::vector<Tensor>& in) { return ops::masked_fill(in[0], in[1], value); };
    c.reference = [value](const std::vector<Tensor>& in) {
      const Shape& shape = in[0].shape();
      std::vector<double> x = values(in[0]);
      const std::vector<double> mask = values(in[1]);
      for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i)
        if (mask[broadcast_source(in[1].shape(), shape, i)] != 0) x[i] = value;
      return from_values(x, shape);
    };
    cases.push_back(c);
  }
}

}  // namespace

void add_indexing_cases(std::vector<OpCase>& cases) {
  add_concat_cases(cases);
  add_split_cases(cases);
  add_chunk_cases(cases);
  add_index_select_cases(cases);
  add_gather_cases(cases);
  add_where_cases(cases);
  add_masked_fill_cases(cases);
}

}  // namespace hone::test
