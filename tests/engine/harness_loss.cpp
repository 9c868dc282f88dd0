// Harness entries for the loss family: cross_entropy with 2-d and 3-d logits, ignored targets,
// label smoothing, int32 targets, every target ignored; plus its argument checks.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

namespace {

constexpr int64_t kIgnore = -100;

// Which targets a case replaces by ignore_index (InputSpec::index only gives ids in [0, C)).
enum class Ignore { None, Some, All };

// The targets with the fixed ignore pattern applied: every third position (1, 4, 7, ...) for
// Some, all of them for All.
Tensor apply_ignore(const Tensor& targets, Ignore ig, DType dtype) {
  std::vector<int64_t> t = targets.to_vector<int64_t>();
  for (size_t k = 0; k < t.size(); ++k)
    if (ig == Ignore::All || (ig == Ignore::Some && k % 3 == 1)) t[k] = kIgnore;
  return Tensor::from_vector(t, targets.shape()).to(dtype).to(targets.device());
}

// Plain reference: -sum_c q_c log softmax(x)_c per row, q = (1 - eps) onehot + eps / C, averaged
// over the rows that are not ignored (0 when none is left).
Tensor cross_entropy_ref(const Tensor& logits, const Tensor& targets, double eps) {
  const int64_t C = logits.shape().back();
  const std::vector<double> x = values(logits);
  const std::vector<int64_t> t = targets.to_vector<int64_t>();
  double total = 0;
  int64_t count = 0;
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] == kIgnore) continue;
    const double* row = x.data() + r * C;
    double m = -INFINITY, z = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, row[c]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(row[c] - m);
    const double lse = m + std::log(z);
    for (int64_t c = 0; c < C; ++c) {
      const double q = (c == t[r] ? 1.0 - eps : 0.0) + eps / double(C);
      total -= q * (row[c] - lse);
    }
    ++count;
  }
  return from_values({count ? total / double(count) : 0.0}, {});
}

}  // namespace

void add_loss_cases(std::vector<OpCase>& cases) {
  struct Variant {
    Shape logits;
    Ignore ignore;
    double smoothing;
    DType target_dtype = DType::I64;
  };
  const Variant variants[] = {
      {{6, 7}, Ignore::None, 0.0},           {{6, 7}, Ignore::Some, 0.0},
      {{6, 7}, Ignore::Some, 0.1, DType::I32}, {{2, 5, 33}, Ignore::Some, 0.1},
      {{3, 4, 50}, Ignore::None, 0.0},       {{4, 50}, Ignore::Some, 0.1},
      {{5, 1}, Ignore::None, 0.1},           {{3, 1000}, Ignore::None, 0.0},
      {{4, 7}, Ignore::All, 0.0},            {{4, 7}, Ignore::All, 0.1},
      {{40, 1000}, Ignore::Some, 0.1},  // enough rows to spread over threads
  };
  for (const Variant& v : variants) {
    const Shape tshape(v.logits.begin(), v.logits.end() - 1);
    const int64_t C = v.logits.back();
    static const char* ignore_names[] = {"", "/some_ignored", "/all_ignored"};
    OpCase c;
    c.name = "loss/cross_entropy/" + shape_str(v.logits) + ignore_names[int(v.ignore)] + "/ls" +
             std::to_string(v.smoothing) + (v.target_dtype == DType::I32 ? "/int32" : "");
    c.inputs = {InputSpec::floats(v.logits, -3.0, 3.0), InputSpec::index(tshape, C)};
    const Ignore ig = v.ignore;
    const double eps = v.smoothing;
    const DType tdt = v.target_dtype;
    c.forward = [=](const std::vector<Tensor>& in) {
      return ops::cross_entropy(in[0], apply_ignore(in[1], ig, tdt), kIgnore, eps);
    };
    c.reference = [=](const std::vector<Tensor>& in) {
      return cross_entropy_ref(in[0], apply_ignore(in[1], ig, DType::I64), eps);
    };
    cases.push_back(c);
  }
  // The language-model head: logits = x wte^T, then the loss. On CUDA the logits' rows are padded to
  // 16 bytes (engine/ops/common.h, empty_gemm_output) for the 50-way vocabulary, the loss reads them
  // in place and writes its gradient padded alike, and the backward GEMMs read that: the whole chain
  // against the plain reference, forward and backward, in every dtype.
  for (const int64_t V : {50, 7}) {
    OpCase c;
    c.name = "loss/cross_entropy/after_tied_head/[3, 5, 16]x[" + std::to_string(V) + ", 16]^T";
    c.inputs = {InputSpec::floats({3, 5, 16}, -1.0, 1.0), InputSpec::floats({V, 16}, -1.0, 1.0),
                InputSpec::index({3, 5}, V)};
    c.forward = [](const std::vector<Tensor>& in) {
      return ops::cross_entropy(ops::matmul(in[0], in[1].transpose(0, 1)),
                                apply_ignore(in[2], Ignore::Some, DType::I64), kIgnore, 0.1);
    };
    c.reference = [V](const std::vector<Tensor>& in) {
      const std::vector<double> x = values(in[0]), w = values(in[1]);
      std::vector<double> logits(size_t(15 * V));
      for (int64_t r = 0; r < 15; ++r)
        for (int64_t v = 0; v < V; ++v) {
          double acc = 0;
          for (int64_t k = 0; k < 16; ++k) acc += x[size_t(r * 16 + k)] * w[size_t(v * 16 + k)];
          logits[size_t(r * V + v)] = acc;
        }
      return cross_entropy_ref(from_values(logits, {15, V}), apply_ignore(in[2], Ignore::Some, DType::I64), 0.1);
    };
    cases.push_back(c);
  }
}

namespace {

TEST(CrossEntropy, RejectsOutOfRangeTargetsNamingValueAndPosition) {
  const Tensor logits = Tensor::zeros({2, 3, 5});
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{0, 1, -100, 4, 5, 2}, {2, 3});
  try {
    ops::cross_entropy(logits, targets);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("target 5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[1, 1]"), std::string::npos) << msg;
  }
  const Tensor negative = Tensor::from_vector(std::vector<int32_t>{0, -1}, {2});
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 5}), negative), std::invalid_argument);
}

TEST(CrossEntropy, RejectsBadArguments) {
  const Tensor t = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 5}, DType::I64), t), std::invalid_argument);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 5}), t.to(DType::F32)), std::invalid_argument);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({3, 5}), t), std::invalid_argument);
  EXPECT_THROW(ops::cross_entropy(Tensor::zeros({2, 5}), t, -100, 1.5), std::invalid_argument);
}

// Uniform logits: the loss is log C whatever the targets; with every target ignored it is 0 and
// the gradient is 0 (PyTorch would give nan).
TEST(CrossEntropy, UniformLogitsAndAllIgnored) {
  const Tensor t = Tensor::from_vector(std::vector<int64_t>{3, 0, 4}, {3});
  EXPECT_NEAR(ops::cross_entropy(Tensor::zeros({3, 5}), t).item(), std::log(5.0), 1e-6);
  Tensor x = Tensor::randn({3, 5}, 3);
  x.requires_grad_(true);
  const Tensor none = Tensor::full({3}, -100, DType::I64);
  const Tensor loss = ops::cross_entropy(x, none);
  EXPECT_EQ(loss.item(), 0.0);
  loss.backward();
  for (double g : values(x.grad())) EXPECT_EQ(g, 0.0);
}

}  // namespace

}  // namespace hone::test
