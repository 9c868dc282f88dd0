// Harness entries for the embedding family: odd table sizes, repeated ids (so the backward's
// scatter-add sums several tokens into one row), int32 and int64 ids.
#include "engine/ops/ops.h"
#include "kernels/embedding.h"
#include "op_harness.h"

namespace hone::test {

namespace {

// weight [V, C], ids of any shape -> [..., C], via kernels::ref::embedding.
Tensor embedding_ref(const std::vector<Tensor>& in) {
  const Tensor& w = in[0];
  const int64_t C = w.size(1);
  const std::vector<double> wv = values(w);
  const std::vector<int64_t> ids = in[1].to_vector<int64_t>();
  std::vector<double> out(ids.size() * C);
  kernels::ref::embedding(static_cast<int64_t>(ids.size()), C, ids.data(), wv.data(), out.data());
  Shape shape = in[1].shape();
  shape.push_back(C);
  return from_values(out, shape);
}

}  // namespace

void add_embedding_cases(std::vector<OpCase>& cases) {
  struct Variant {
    int64_t V, C;
    Shape ids;
    bool int32;
  };
  const Variant variants[] = {
      {1, 5, {3}, false},       // one row: every id is 0, all tokens collide
      {7, 1, {2, 5}, false},    // one column
      {7, 17, {2, 5}, false},   // 10 ids over 7 rows: repeats are certain
      {50, 5, {3}, false},
      {3, 17, {4, 6}, true},    // int32 ids, heavy repetition
      {50, 600, {40}, false},   // several parallel row blocks for the 1-vs-2-threads check
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "embedding/V" + std::to_string(v.V) + "/C" + std::to_string(v.C) + "/ids" + shape_str(v.ids) +
             (v.int32 ? "/int32" : "");
    c.inputs = {InputSpec::floats({v.V, v.C}), InputSpec::index(v.ids, v.V)};
    const bool int32 = v.int32;
    c.forward = [int32](const std::vector<Tensor>& in) {
      return ops::embedding(in[0], int32 ? in[1].to(DType::I32) : in[1]);
    };
    c.reference = embedding_ref;
    cases.push_back(c);
  }
}

}  // namespace hone::test
