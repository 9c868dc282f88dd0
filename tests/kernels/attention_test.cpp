// Attention: fast (flash-style) kernels against the naive reference, the reference's gradients
// against finite differences, edge cases (fully masked rows, documented dropout stream), and
// thread-count determinism.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/philox.h"

namespace hk = hone::kernels;

namespace {

struct Case {
  int64_t B, H, Tq, Tk, D;
  bool causal, pad, dropout;
};

std::string name(const Case& c) {
  std::string n;
  for (auto [tag, x] : {std::pair{"B", c.B}, {"H", c.H}, {"Tq", c.Tq}, {"Tk", c.Tk}, {"D", c.D}})
    n.append(tag).append(std::to_string(x));
  if (c.causal) n += "_causal";
  if (c.pad) n += "_pad";
  if (c.dropout) n += "_drop";
  return n;
}

// Key padding: batch b keeps its first Tk - 3b keys; the last batch (when B > 1) is entirely
// padding, so whole rows are masked.
std::vector<uint8_t> padding_mask(int64_t B, int64_t Tk) {
  std::vector<uint8_t> m(B * Tk, 0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = (B > 1 && b == B - 1) ? 0 : std::max<int64_t>(1, Tk - 3 * b);
    for (int64_t j = 0; j < len; ++j) m[b * Tk + j] = 1;
  }
  return m;
}

template <class T>
std::vector<T> random_vec(size_t n, uint32_t seed, double amp = 1.0) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-amp, amp);
  std::vector<T> x(n);
  for (auto& e : x) e = T(u(g));
  return x;
}

// Everything one attention problem needs, inputs filled at random.
template <class T>
struct Problem {
  hk::AttentionShape s;
  hk::AttentionOptions o;
  std::vector<uint8_t> mask;
  std::vector<T> q, k, v, dout;

  explicit Problem(const Case& c, uint32_t seed = 1) : s{c.B, c.H, c.Tq, c.Tk, c.D} {
    o.scale = float(1.0 / std::sqrt(double(c.D)));
    o.causal = c.causal;
    if (c.pad) {
      mask = padding_mask(c.B, c.Tk);
      o.key_valid = mask.data();
    }
    if (c.dropout) {
      o.dropout_p = 0.25f;
      o.seed = 0x1234567887654321ull;
      o.offset = 77;
    }
    const size_t nq = c.B * c.H * c.Tq * c.D, nk = c.B * c.H * c.Tk * c.D;
    // Amplitude 2 makes the softmax far from uniform, so the max tracking matters.
    q = random_vec<T>(nq, seed, 2.0);
    k = random_vec<T>(nk, seed + 1, 2.0);
    v = random_vec<T>(nk, seed + 2);
    dout = random_vec<T>(nq, seed + 3);
  }
  size_t nq() const { return q.size(); }
  size_t nk() const { return k.size(); }
  size_t rows() const { return size_t(s.batch * s.heads * s.q_len); }
};

template <class T>
struct Result {
  std::vector<T> out, lse, dq, dk, dv;
};

enum class Impl { Fast, Ref };

template <class T>
Result<T> run(const Problem<T>& p, Impl impl) {
  Result<T> r{std::vector<T>(p.nq()), std::vector<T>(p.rows()), std::vector<T>(p.nq()),
              std::vector<T>(p.nk()), std::vector<T>(p.nk())};
  // Garbage in the outputs: the kernels must overwrite, not accumulate.
  std::fill(r.dq.begin(), r.dq.end(), T(7));
  std::fill(r.dk.begin(), r.dk.end(), T(7));
  std::fill(r.dv.begin(), r.dv.end(), T(7));
  auto fwd = impl == Impl::Fast ? hk::attention_forward<T> : hk::ref::attention_forward<T>;
  auto bwd = impl == Impl::Fast ? hk::attention_backward<T> : hk::ref::attention_backward<T>;
  fwd(p.s, p.o, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.lse.data());
  bwd(p.s, p.o, p.q.data(), p.k.data(), p.v.data(), r.out.data(), r.lse.data(), p.dout.data(),
      r.dq.data(), r.dk.data(), r.dv.data());
  return r;
}

// |a - b| <= tol * (1 + max|b|), elementwise; -inf must match -inf.
template <class T>
void expect_close(const std::vector<T>& a, const std::vector<T>& b, double tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  double scale = 1.0;
  for (T x : b)
    if (std::isfinite(x)) scale = std::max(scale, std::abs(double(x)));
  int bad = 0;
  for (size_t i = 0; i < a.size() && bad < 5; ++i) {
    if (std::isinf(b[i])) {
      if (a[i] != b[i]) {
        ADD_FAILURE() << what << "[" << i << "] = " << a[i] << ", expected " << b[i];
        ++bad;
      }
      continue;
    }
    if (!(std::abs(double(a[i]) - double(b[i])) <= tol * scale)) {
      ADD_FAILURE() << what << "[" << i << "] = " << a[i] << ", expected " << b[i];
      ++bad;
    }
  }
}

template <class T>
void compare_fast_to_ref(const Case& c) {
  const Problem<T> p(c);
  const Result<T> fast = run(p, Impl::Fast), ref = run(p, Impl::Ref);
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  expect_close(fast.out, ref.out, tol, "out");
  expect_close(fast.lse, ref.lse, tol, "lse");
  expect_close(fast.dq, ref.dq, tol, "dq");
  expect_close(fast.dk, ref.dk, tol, "dk");
  expect_close(fast.dv, ref.dv, tol, "dv");
}

std::vector<Case> fast_vs_ref_cases() {
  const std::vector<std::pair<int64_t, int64_t>> lens = {
      {1, 1}, {1, 17}, {5, 5}, {17, 5}, {5, 17}, {64, 64}, {65, 65}, {130, 130}, {17, 130},
      {130, 17}, {64, 65}, {65, 130}};
  const int64_t dims[] = {1, 7, 16, 64};
  std::vector<Case> cases;
  int n = 0;
  for (auto [tq, tk] : lens)
    for (int flags = 0; flags < 8; ++flags, ++n) {
      // Cycle batch, heads and head_dim so that every length pair meets several of each.
      const int64_t B = 1 + n % 3, H = 1 + (n / 3) % 3, D = dims[(n + n / 8) % 4];
      cases.push_back({B, H, tq, tk, D, bool(flags & 1), bool(flags & 2), bool(flags & 4)});
    }
  return cases;
}

class AttentionFastVsRef : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionFastVsRef, Float) { compare_fast_to_ref<float>(GetParam()); }
TEST_P(AttentionFastVsRef, Double) { compare_fast_to_ref<double>(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Attention, AttentionFastVsRef, ::testing::ValuesIn(fast_vs_ref_cases()),
                         [](const auto& info) { return name(info.param); });

// Gradients of L = sum(dout * out) by central differences, in double, against backward.
void check_finite_differences(const Case& c, Impl impl) {
  Problem<double> p(c, 11);
  const Result<double> r = run(p, impl);
  auto fwd = impl == Impl::Fast ? hk::attention_forward<double> : hk::ref::attention_forward<double>;
  std::vector<double> out(p.nq()), lse(p.rows());
  auto loss = [&] {
    fwd(p.s, p.o, p.q.data(), p.k.data(), p.v.data(), out.data(), lse.data());
    double l = 0;
    for (size_t i = 0; i < out.size(); ++i) l += p.dout[i] * out[i];
    return l;
  };
  const double eps = 1e-5;
  auto check = [&](std::vector<double>& x, const std::vector<double>& grad, const char* what) {
    for (size_t i = 0; i < x.size(); ++i) {
      const double x0 = x[i];
      x[i] = x0 + eps;
      const double lp = loss();
      x[i] = x0 - eps;
      const double lm = loss();
      x[i] = x0;
      EXPECT_NEAR(grad[i], (lp - lm) / (2 * eps), 1e-7) << what << "[" << i << "]";
    }
  };
  check(p.q, r.dq, "dq");
  check(p.k, r.dk, "dk");
  check(p.v, r.dv, "dv");
}

class AttentionGradient : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionGradient, RefMatchesFiniteDifferences) { check_finite_differences(GetParam(), Impl::Ref); }
TEST_P(AttentionGradient, FastMatchesFiniteDifferences) { check_finite_differences(GetParam(), Impl::Fast); }

INSTANTIATE_TEST_SUITE_P(Attention, AttentionGradient,
                         ::testing::Values(Case{2, 2, 5, 7, 3, false, false, false},
                                           Case{2, 2, 5, 7, 3, true, false, false},
                                           Case{2, 1, 7, 5, 4, true, false, false},
                                           Case{3, 2, 6, 6, 3, false, true, false},
                                           Case{2, 2, 5, 7, 3, false, false, true},
                                           Case{3, 1, 6, 9, 2, true, true, true}),
                         [](const auto& info) { return name(info.param); });

// Rows with nothing to attend to: output 0, lse -inf, zero gradients, no NaN anywhere.
TEST(Attention, FullyMaskedRowsGiveZeros) {
  // Causal with Tq > Tk: the first Tq - Tk queries see no key; batch 1 is entirely padding.
  const Case c{2, 2, 70, 3, 16, true, true, true};
  const Problem<float> p(c);
  for (Impl impl : {Impl::Fast, Impl::Ref}) {
    const Result<float> r = run(p, impl);
    for (const auto* t : {&r.out, &r.dq, &r.dk, &r.dv})
      for (float x : *t) ASSERT_TRUE(std::isfinite(x));
    const int64_t T = c.Tq, D = c.D;
    for (int64_t bh = 0; bh < c.B * c.H; ++bh)
      for (int64_t i = 0; i < T; ++i) {
        const bool masked = bh >= c.H /* batch 1 */ || i < c.Tq - c.Tk;
        if (!masked) {
          EXPECT_TRUE(std::isfinite(r.lse[bh * T + i]));
          continue;
        }
        EXPECT_EQ(r.lse[bh * T + i], -std::numeric_limits<float>::infinity());
        for (int64_t d = 0; d < D; ++d) {
          EXPECT_EQ(r.out[(bh * T + i) * D + d], 0.f);
          EXPECT_EQ(r.dq[(bh * T + i) * D + d], 0.f);
        }
      }
    for (int64_t i = c.H * c.Tk * D; i < int64_t(r.dk.size()); ++i) {  // keys of batch 1
      EXPECT_EQ(r.dk[i], 0.f);
      EXPECT_EQ(r.dv[i], 0.f);
    }
  }
}

// The dropout mask is the documented Philox stream, not just "whatever ref does": with q = 0
// the probabilities are uniform, and with v = identity out[i][j] = keep(i, j) / ((1-p) Tk).
TEST(Attention, DropoutFollowsDocumentedPhiloxStream) {
  const int64_t B = 2, H = 3, Tq = 9, Tk = 70;
  hk::AttentionShape s{B, H, Tq, Tk, Tk};
  hk::AttentionOptions o;
  o.scale = 0.125f;
  o.dropout_p = 0.3f;
  o.seed = 42;
  o.offset = 1000;
  std::vector<float> q(B * H * Tq * Tk, 0.f), k = random_vec<float>(B * H * Tk * Tk, 5),
                     v(B * H * Tk * Tk, 0.f), out(B * H * Tq * Tk), lse(B * H * Tq);
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t j = 0; j < Tk; ++j) v[(bh * Tk + j) * Tk + j] = 1.f;
  int dropped = 0;
  for (Impl impl : {Impl::Fast, Impl::Ref}) {
    (impl == Impl::Fast ? hk::attention_forward<float> : hk::ref::attention_forward<float>)(
        s, o, q.data(), k.data(), v.data(), out.data(), lse.data());
    for (int64_t bh = 0; bh < B * H; ++bh)
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < Tk; ++j) {
          const uint64_t idx = uint64_t((bh * Tq + i) * Tk + j);
          const bool keep = hone::philox::uniform(o.seed, o.offset, idx) >= o.dropout_p;
          dropped += !keep;
          const float want = keep ? 1.f / ((1.f - o.dropout_p) * Tk) : 0.f;
          ASSERT_NEAR(out[(bh * Tq + i) * Tk + j], want, 1e-6f) << "bh " << bh << " i " << i << " j " << j;
        }
  }
  const double frac = dropped / double(2 * B * H * Tq * Tk);
  EXPECT_NEAR(frac, 0.3, 0.03);
}

// 1 and 2 threads give the same bits. B*H = 3 runs the per-head backward on 1 thread and the
// two-pass one on 2, so this also checks that the two partitions agree exactly. (The shapes are
// above the size below which the kernels stay on one thread.)
TEST(Attention, ThreadCountDoesNotChangeBits) {
  const int saved = omp_get_max_threads();
  for (const Case& c : {Case{1, 1, 130, 130, 64, true, false, true},
                        Case{1, 3, 100, 150, 64, false, true, false},
                        Case{3, 1, 65, 130, 7, true, true, true},
                        Case{2, 4, 129, 129, 48, true, false, false}}) {
    SCOPED_TRACE(name(c));
    const Problem<float> p(c);
    omp_set_num_threads(1);
    const Result<float> one = run(p, Impl::Fast);
    omp_set_num_threads(2);
    const Result<float> two = run(p, Impl::Fast);
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
    };
    EXPECT_TRUE(same(one.out, two.out));
    EXPECT_TRUE(same(one.lse, two.lse));
    EXPECT_TRUE(same(one.dq, two.dq));
    EXPECT_TRUE(same(one.dk, two.dk));
    EXPECT_TRUE(same(one.dv, two.dv));
  }
  omp_set_num_threads(saved);
}

}  // namespace
