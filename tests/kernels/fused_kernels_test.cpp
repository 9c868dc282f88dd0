// Fused kernels (kernels/fused.h) without the engine: the CPU versions against the references on
// odd shapes in every dtype, against the composition of the plain kernels they replace (bit for
// bit in float32), and 1 vs 2 threads bit-identical.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/fused.h"
#include "kernels/layernorm.h"
#include "kernels/philox.h"

namespace hk = hone::kernels;
using hone::acc_t;
using hone::bf16;
using hone::f16;
using hk::UnaryOp;

namespace {

// n values in [lo, hi) stored as T (seeded per call site).
template <class T> std::vector<T> uniform(size_t n, uint64_t seed, double lo, double hi) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = T(acc_t<T>(lo + (hi - lo) * hone::philox::uniform(seed, 7, i)));
  return v;
}

template <class T> double as_double(T v) { return double(acc_t<T>(v)); }

// |got - want| <= tol * max(1, |want|) everywhere (first 5 misses reported).
template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size() && misses < 5; ++i) {
    const double g = as_double(got[i]), w = as_double(want[i]);
    if (!(std::fabs(g - w) <= tol * std::max(1.0, std::fabs(w)))) {
      ADD_FAILURE() << what << ": element " << i << " is " << g << ", want " << w;
      ++misses;
    }
  }
}

template <class T> bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct Shape2 {
  int64_t rows, cols;
  std::string name() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};
// Odd widths; 120x200 spans several pieces and bias-gradient chunks.
const Shape2 kShapes[] = {{5, 1}, {3, 7}, {7, 33}, {6, 65}, {3, 1000}, {70, 13}, {120, 200}};
const UnaryOp kGelus[] = {UnaryOp::GeluErf, UnaryOp::GeluTanh};

// Forward and both gradients of bias_gelu in T against the reference; tol for T.
template <class T> void check_bias_gelu(const Shape2& s, UnaryOp op, double tol) {
  const std::string what = std::string("bias_gelu ") + hk::unary_op_name(op) + " " + s.name() + " " +
                           std::to_string(sizeof(T)) + "-byte";
  const size_t n = s.rows * s.cols;
  const auto x = uniform<T>(n, 1, -4, 4), b = uniform<T>(s.cols, 2, -1, 1), gy = uniform<T>(n, 3, -1, 1);
  std::vector<T> y(n), y_ref(n), gx(n), gx_ref(n), gb(s.cols), gb_ref(s.cols);
  hk::bias_gelu_forward<T>(op, s.rows, s.cols, x.data(), b.data(), y.data());
  hk::ref::bias_gelu_forward<T>(op, s.rows, s.cols, x.data(), b.data(), y_ref.data());
  expect_close(y, y_ref, tol, what + " forward");
  hk::bias_gelu_backward<T>(op, s.rows, s.cols, x.data(), b.data(), gy.data(), gx.data(), gb.data());
  hk::ref::bias_gelu_backward<T>(op, s.rows, s.cols, x.data(), b.data(), gy.data(), gx_ref.data(), gb_ref.data());
  expect_close(gx, gx_ref, tol, what + " dx");
  expect_close(gb, gb_ref, tol, what + " dbias");
  // Each gradient alone gives the same bits as both together.
  std::vector<T> gx_only(n), gb_only(s.cols);
  hk::bias_gelu_backward<T>(op, s.rows, s.cols, x.data(), b.data(), gy.data(), gx_only.data(), nullptr);
  hk::bias_gelu_backward<T>(op, s.rows, s.cols, x.data(), b.data(), gy.data(), nullptr, gb_only.data());
  EXPECT_TRUE(same_bits(gx_only, gx)) << what;
  EXPECT_TRUE(same_bits(gb_only, gb)) << what;
}

// sum, normed, mean and rstd of add_layernorm in T against the reference.
template <class T> void check_add_layernorm(const Shape2& s, bool has_w, bool has_b, double tol) {
  using A = acc_t<T>;
  const std::string what = "add_layernorm " + s.name() + (has_w ? " w" : "") + (has_b ? " b" : "") + " " +
                           std::to_string(sizeof(T)) + "-byte";
  const size_t n = s.rows * s.cols;
  const auto x = uniform<T>(n, 4, -3, 3), r = uniform<T>(n, 5, -3, 3);
  const auto w = uniform<T>(s.cols, 6, 0.5, 1.5), b = uniform<T>(s.cols, 7, -1, 1);
  const T* wp = has_w ? w.data() : nullptr;
  const T* bp = has_b ? b.data() : nullptr;
  std::vector<T> sum(n), y(n), sum_ref(n), y_ref(n);
  std::vector<A> mean(s.rows), rstd(s.rows), mean_ref(s.rows), rstd_ref(s.rows);
  hk::add_layernorm_forward<T>(s.rows, s.cols, x.data(), r.data(), wp, bp, 1e-5, sum.data(), y.data(), mean.data(),
                               rstd.data());
  hk::ref::add_layernorm_forward<T>(s.rows, s.cols, x.data(), r.data(), wp, bp, 1e-5, sum_ref.data(), y_ref.data(),
                                    mean_ref.data(), rstd_ref.data());
  EXPECT_TRUE(same_bits(sum, sum_ref)) << what << ": sum differs from the reference";
  expect_close(y, y_ref, tol, what + " normed");
  expect_close(mean, mean_ref, tol, what + " mean");
  expect_close(rstd, rstd_ref, tol, what + " rstd");  // relative: 1/sqrt(eps) ~ 316 for one column
}

TEST(FusedKernels, BiasGeluCpuMatchesReference) {
  for (const Shape2& s : kShapes)
    for (UnaryOp op : kGelus) {
      check_bias_gelu<float>(s, op, 2e-5);
      check_bias_gelu<double>(s, op, 1e-9);
      check_bias_gelu<bf16>(s, op, 1e-2);
      check_bias_gelu<f16>(s, op, 2e-3);
    }
}

TEST(FusedKernels, AddLayerNormCpuMatchesReference) {
  for (const Shape2& s : kShapes)
    for (int affine = 0; affine < 4; ++affine) {
      const bool has_w = affine & 1, has_b = affine & 2;
      check_add_layernorm<float>(s, has_w, has_b, 1e-5);
      check_add_layernorm<double>(s, has_w, has_b, 1e-10);
      check_add_layernorm<bf16>(s, has_w, has_b, 1e-2);
      check_add_layernorm<f16>(s, has_w, has_b, 2e-3);
    }
}

TEST(FusedKernels, BiasGeluRejectsOtherActivations) {
  float x = 1, b = 0, y = 0;
  EXPECT_THROW(hk::bias_gelu_forward<float>(UnaryOp::Relu, 1, 1, &x, &b, &y), std::invalid_argument);
  EXPECT_THROW(hk::bias_gelu_backward<float>(UnaryOp::Tanh, 1, 1, &x, &b, &x, &y, &y), std::invalid_argument);
}

// Fused against the plain kernels it replaces: binary add (bias broadcast) then unary gelu; the
// gelu backward then the column sums of its result. float32: the same bits, except the bias
// gradient, which the composition sums in another order.
TEST(FusedKernels, BiasGeluEqualsComposedKernels) {
  const int64_t rows = 70, cols = 97;
  const size_t n = rows * cols;
  const auto x = uniform<float>(n, 8, -4, 4), b = uniform<float>(cols, 9, -1, 1), gy = uniform<float>(n, 10, -1, 1);
  const int64_t shape[2] = {rows, cols}, xs[2] = {cols, 1}, bs[2] = {0, 1};
  for (UnaryOp op : kGelus) {
    std::vector<float> z(n), y_c(n), gx_c(n), gb_c(cols, 0.f), y(n), gx(n), gb(cols);
    hk::binary_forward<float>(hk::BinaryOp::Add, 2, shape, x.data(), xs, b.data(), bs, z.data());
    hk::unary_forward<float>(op, n, z.data(), y_c.data(), 0.0);
    hk::unary_backward<float>(op, n, z.data(), y_c.data(), gy.data(), gx_c.data(), 0.0);
    std::vector<double> col(cols, 0.0);
    for (size_t i = 0; i < n; ++i) col[i % cols] += gx_c[i];
    for (int64_t j = 0; j < cols; ++j) gb_c[j] = float(col[j]);
    hk::bias_gelu_forward<float>(op, rows, cols, x.data(), b.data(), y.data());
    hk::bias_gelu_backward<float>(op, rows, cols, x.data(), b.data(), gy.data(), gx.data(), gb.data());
    EXPECT_TRUE(same_bits(y, y_c)) << hk::unary_op_name(op) << " forward";
    EXPECT_TRUE(same_bits(gx, gx_c)) << hk::unary_op_name(op) << " dx";
    expect_close(gb, gb_c, 1e-6, std::string(hk::unary_op_name(op)) + " dbias");
  }
}

// add then layernorm_forward: the same bits (sum, normed, statistics) in float32 and bfloat16.
template <class T> void check_add_layernorm_composed() {
  using A = acc_t<T>;
  const int64_t rows = 70, cols = 97;
  const size_t n = rows * cols;
  const auto x = uniform<T>(n, 11, -3, 3), r = uniform<T>(n, 12, -3, 3);
  const auto w = uniform<T>(cols, 13, 0.5, 1.5), b = uniform<T>(cols, 14, -1, 1);
  const int64_t shape[2] = {rows, cols}, st[2] = {cols, 1};
  std::vector<T> sum_c(n), y_c(n), sum(n), y(n);
  std::vector<A> mean_c(rows), rstd_c(rows), mean(rows), rstd(rows);
  hk::binary_forward<T>(hk::BinaryOp::Add, 2, shape, x.data(), st, r.data(), st, sum_c.data());
  hk::layernorm_forward<T>(rows, cols, sum_c.data(), w.data(), b.data(), 1e-5, y_c.data(), mean_c.data(),
                           rstd_c.data());
  hk::add_layernorm_forward<T>(rows, cols, x.data(), r.data(), w.data(), b.data(), 1e-5, sum.data(), y.data(),
                               mean.data(), rstd.data());
  EXPECT_TRUE(same_bits(sum, sum_c)) << sizeof(T) << "-byte sum";
  EXPECT_TRUE(same_bits(y, y_c)) << sizeof(T) << "-byte normed";
  EXPECT_TRUE(same_bits(mean, mean_c)) << sizeof(T) << "-byte mean";
  EXPECT_TRUE(same_bits(rstd, rstd_c)) << sizeof(T) << "-byte rstd";
}

TEST(FusedKernels, AddLayerNormEqualsComposedKernels) {
  check_add_layernorm_composed<float>();
  check_add_layernorm_composed<bf16>();
}

// The autocast form (16-bit x, float32 stream, 16-bit normed) is the float32 kernel with x cast up
// and normed cast down, bit for bit.
template <class H>
void check_add_layernorm_lowp() {
  const int64_t rows = 70, cols = 97;
  const size_t n = rows * cols;
  const auto xh = uniform<H>(n, 21, -3, 3);
  const auto r = uniform<float>(n, 22, -3, 3), w = uniform<float>(cols, 23, 0.5, 1.5),
             b = uniform<float>(cols, 24, -1, 1);
  const std::vector<float> xf(xh.begin(), xh.end());
  std::vector<float> sum_f(n), y_f(n), mean_f(rows), rstd_f(rows), sum(n), mean(rows), rstd(rows);
  std::vector<H> y(n);
  hk::add_layernorm_forward<float>(rows, cols, xf.data(), r.data(), w.data(), b.data(), 1e-5, sum_f.data(), y_f.data(),
                                   mean_f.data(), rstd_f.data());
  hk::add_layernorm_forward_lowp<float, H>(rows, cols, xh.data(), r.data(), w.data(), b.data(), 1e-5, sum.data(),
                                           y.data(), mean.data(), rstd.data());
  const std::vector<H> y_rounded(y_f.begin(), y_f.end());
  EXPECT_TRUE(same_bits(sum, sum_f)) << sizeof(H) << "-byte sum";
  EXPECT_TRUE(same_bits(y, y_rounded)) << "normed";
  EXPECT_TRUE(same_bits(mean, mean_f) && same_bits(rstd, rstd_f)) << "statistics";
}

TEST(FusedKernels, AddLayerNormLowpIsTheFloat32KernelBetweenCasts) {
  check_add_layernorm_lowp<bf16>();
  check_add_layernorm_lowp<f16>();
}

// Large enough to be split over threads: 1 and 2 threads give the same bits.
TEST(FusedKernels, OneAndTwoThreadsAgreeBitForBit) {
  const int64_t rows = 300, cols = 777;
  const size_t n = rows * cols;
  const auto x = uniform<float>(n, 15, -3, 3), r = uniform<float>(n, 16, -3, 3), gy = uniform<float>(n, 17, -1, 1);
  const auto w = uniform<float>(cols, 18, 0.5, 1.5), b = uniform<float>(cols, 19, -1, 1);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    std::vector<float> y(n), gx(n), gb(cols), sum(n), normed(n), mean(rows), rstd(rows);
    hk::bias_gelu_forward<float>(UnaryOp::GeluTanh, rows, cols, x.data(), b.data(), y.data());
    hk::bias_gelu_backward<float>(UnaryOp::GeluErf, rows, cols, x.data(), b.data(), gy.data(), gx.data(), gb.data());
    hk::add_layernorm_forward<float>(rows, cols, x.data(), r.data(), w.data(), b.data(), 1e-5, sum.data(),
                                     normed.data(), mean.data(), rstd.data());
    omp_set_num_threads(saved);
    std::vector<float> out;
    for (const auto* v : {&y, &gx, &gb, &sum, &normed, &mean, &rstd}) out.insert(out.end(), v->begin(), v->end());
    return out;
  };
  EXPECT_TRUE(same_bits(run(1), run(2)));
}

}  // namespace
