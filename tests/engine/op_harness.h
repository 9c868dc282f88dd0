// The op harness: one table of op cases, each run the same way (in the spirit of ggml's
// test-backend-ops):
//   forward   against a reference computed in float64 from the same (rounded) inputs, for every
//             dtype the case lists, with a tolerance per dtype;
//   backward  against central finite differences in float64;
//   layout    the same results when every input of 2+ dims is a non-contiguous (transposed) view;
//   threads   bit-identical outputs and gradients with 1 and 2 OpenMP threads;
//   CUDA      forward and backward against the CPU when a device is present (skipped otherwise).
// Adding an op means adding one OpCase in the harness_<family>.cpp file of its family.
#pragma once
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hone::test {

struct InputSpec {
  enum class Kind { Float, Index, Mask };
  Kind kind = Kind::Float;
  Shape shape;
  double lo = -2.0, hi = 2.0;  // Float: uniform range; Index: ids in [0, hi)
  bool differentiable = true;  // Float inputs only: take part in the gradient check

  static InputSpec floats(Shape s, double lo = -2.0, double hi = 2.0) {
    return {Kind::Float, std::move(s), lo, hi, true};
  }
  // Float input that is not differentiated (e.g. a mask-like weight).
  static InputSpec constant(Shape s, double lo = -2.0, double hi = 2.0) {
    return {Kind::Float, std::move(s), lo, hi, false};
  }
  static InputSpec index(Shape s, int64_t high) { return {Kind::Index, std::move(s), 0, double(high), false}; }
  // uint8 values, each 1 with probability `p_one`.
  static InputSpec mask(Shape s, double p_one = 0.5) { return {Kind::Mask, std::move(s), 0, p_one, false}; }
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;                // "family/op/variant": unique, used as the test name
  std::vector<InputSpec> inputs;
  OpFn forward;                    // the engine op
  OpFn reference;                  // the expected output from float64 inputs, as float64
  // (From an array rather than a braced list: GCC 12 warns falsely about the list's copy.)
  static constexpr DType kDefaultDtypes[] = {DType::F32, DType::F64, DType::BF16};
  std::vector<DType> dtypes{std::begin(kDefaultDtypes), std::end(kDefaultDtypes)};
  double tol_f32 = 1e-5;           // relative to max(1, max|reference|)
  double tol_half = 3e-2;
  bool check_grad = true;
  bool check_noncontiguous = true;
  double grad_tol = 1e-6;          // finite-difference comparison (relative to max(1, |fd|))
};

// Each family contributes its cases (harness_<family>.cpp).
void add_elementwise_cases(std::vector<OpCase>& cases);
void add_reduce_cases(std::vector<OpCase>& cases);
void add_matmul_cases(std::vector<OpCase>& cases);
void add_softmax_cases(std::vector<OpCase>& cases);
void add_norm_cases(std::vector<OpCase>& cases);
void add_loss_cases(std::vector<OpCase>& cases);
void add_embedding_cases(std::vector<OpCase>& cases);
void add_dropout_cases(std::vector<OpCase>& cases);
void add_indexing_cases(std::vector<OpCase>& cases);
void add_attention_cases(std::vector<OpCase>& cases);
void add_view_cases(std::vector<OpCase>& cases);
void add_cnn_cases(std::vector<OpCase>& cases);
void add_fused_cases(std::vector<OpCase>& cases);

const std::vector<OpCase>& all_op_cases();

// Helpers for writing references: a float64 contiguous copy, and element access by flat index.
Tensor f64(const Tensor& t);
std::vector<double> values(const Tensor& t);
Tensor from_values(const std::vector<double>& v, const Shape& shape);

}  // namespace hone::test
