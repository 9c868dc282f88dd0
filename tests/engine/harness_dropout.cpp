// Harness entries for the dropout family: fixed (seed, offset), so the mask is deterministic and
// the reference rebuilds it from philox::uniform directly (kernels::ref::dropout).
#include "engine/ops/ops.h"
#include "kernels/dropout.h"
#include "op_harness.h"

namespace hone::test {

void add_dropout_cases(std::vector<OpCase>& cases) {
  struct Variant {
    double p;
    Shape shape;
    uint64_t seed, offset;
    bool training;
  };
  const Variant variants[] = {
      {0.1, {7, 9}, 1234, 0, true},
      {0.5, {3, 5, 4}, 99, 12, true},    // offset != 0: the stream starts 12 blocks in
      {0.5, {1001}, 7, 3, true},         // a length that is not a multiple of 4 (the block size)
      {0.1, {300, 70}, 42, 5, true},     // several parallel chunks
      {0.5, {4, 6}, 1, 0, false},        // evaluation: identity
      {0.0, {4, 6}, 1, 0, true},         // p = 0: identity
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = "dropout/p" + std::to_string(v.p).substr(0, 3) + "/" + shape_str(v.shape) + "/seed" +
             std::to_string(v.seed) + "/offset" + std::to_string(v.offset) + (v.training ? "" : "/eval");
    c.inputs = {InputSpec::floats(v.shape)};
    const Variant var = v;
    c.forward = [var](const std::vector<Tensor>& in) {
      return ops::dropout(in[0], var.p, var.training, var.seed, var.offset);
    };
    c.reference = [var](const std::vector<Tensor>& in) {
      const std::vector<double> x = values(in[0]);
      if (!var.training) return from_values(x, in[0].shape());
      std::vector<double> y(x.size());
      kernels::ref::dropout(static_cast<int64_t>(x.size()), var.p, var.seed, var.offset, x.data(), y.data());
      return from_values(y, in[0].shape());
    };
    cases.push_back(c);
  }
}

}  // namespace hone::test
