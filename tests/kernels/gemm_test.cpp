// sgemm / dgemm against the double-accumulating reference, on every backend this CPU runs.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_internal.h"
#include "kernels/gemm.h"
#include "kernels/runtime.h"

namespace hk = hone::kernels;

namespace {

template <class T>
std::vector<T> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  std::vector<T> v(n);
  for (auto& x : v) x = T(d(rng));
  return v;
}

// One problem: sizes, transposes, scalars and padded leading dimensions.
struct Case {
  bool ta, tb;
  int64_t M, N, K;
  double alpha, beta;
  int64_t pad = 0;  // extra elements per row in A, B and C
};

template <class T>
struct Operands {
  int64_t lda, ldb, ldc;
  std::vector<T> A, B, C;
  Operands(const Case& c, uint32_t seed) {
    const int64_t arows = c.ta ? c.K : c.M, acols = c.ta ? c.M : c.K;
    const int64_t brows = c.tb ? c.N : c.K, bcols = c.tb ? c.K : c.N;
    lda = acols + c.pad;
    ldb = bcols + c.pad;
    ldc = c.N + c.pad;
    A = random_vec<T>(size_t(arows * lda), seed);
    B = random_vec<T>(size_t(brows * ldb), seed + 1);
    C = random_vec<T>(size_t(c.M * ldc), seed + 2);
    if (c.beta == 0) std::fill(C.begin(), C.end(), std::numeric_limits<T>::quiet_NaN());
  }
};

template <class T>
void gemm_call(const Case& c, Operands<T>& o, std::vector<T>& C) {
  if constexpr (std::is_same_v<T, float>)
    hk::sgemm(c.ta, c.tb, c.M, c.N, c.K, float(c.alpha), o.A.data(), o.lda, o.B.data(), o.ldb,
              float(c.beta), C.data(), o.ldc);
  else
    hk::dgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta,
              C.data(), o.ldc);
}

std::string describe(const Case& c) {
  return std::string(c.ta ? "T" : "N") + (c.tb ? "T" : "N") + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) +
         " pad=" + std::to_string(c.pad);
}

// Checks one case against ref::gemm; padding between rows of C must be left untouched.
template <class T>
void check(const Case& c, uint32_t seed = 1) {
  Operands<T> o(c, seed);
  std::vector<T> got = o.C, want = o.C;
  gemm_call(c, o, got);
  hk::ref::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, T(c.alpha), o.A.data(), o.lda, o.B.data(), o.ldb,
                   T(c.beta), want.data(), o.ldc);
  // Inputs are in [-1, 1]: rounding error grows at most ~K * eps (far less in practice).
  const double eps = std::numeric_limits<T>::epsilon();
  const double tol = 4 * eps * (double(c.K) * std::abs(c.alpha) + std::abs(c.beta) + 1);
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < o.ldc; ++j) {
      const T g = got[size_t(i * o.ldc + j)], w = want[size_t(i * o.ldc + j)];
      if (j >= c.N) {  // padding: must be bit-for-bit what it was (NaN stays NaN)
        ASSERT_TRUE((std::isnan(g) && std::isnan(w)) || g == w) << describe(c);
        continue;
      }
      ASSERT_FALSE(std::isnan(g)) << describe(c) << " at " << i << "," << j;
      ASSERT_NEAR(g, w, tol) << describe(c) << " at " << i << "," << j;
    }
  }
}

// The shapes every backend must get right: tile and block edges, degenerate sizes.
std::vector<Case> shapes() {
  std::vector<Case> cases;
  const int64_t dims[][3] = {{1, 1, 1},   {1, 7, 13},   {7, 1, 13},   {13, 31, 1},
                             {31, 67, 7}, {67, 31, 129}, {129, 67, 31}, {12, 32, 256},
                             {24, 64, 513}, {33, 17, 300}, {1, 129, 67},  {100, 1, 67}};
  for (const auto& d : dims)
    for (int t = 0; t < 4; ++t)
      cases.push_back({bool(t & 1), bool(t & 2), d[0], d[1], d[2], 1.0, 0.0});
  // Crossing cache blocks (MC, KC and, with pad, unusual strides).
  for (int t = 0; t < 4; ++t) cases.push_back({bool(t & 1), bool(t & 2), 257, 513, 300, 1.0, 0.0});
  // alpha / beta variants, padded leading dimensions.
  const double ab[][2] = {{1, 1}, {0.5, -2}, {-1.5, 0}, {2, 0.25}};
  for (const auto& s : ab)
    for (int t = 0; t < 4; ++t)
      cases.push_back({bool(t & 1), bool(t & 2), 45, 70, 33, s[0], s[1], 5});
  return cases;
}

// Runs `body` once per sgemm backend this machine can execute, then restores automatic choice.
template <class F>
void for_each_backend(F body) {
  for (const char* name : {"portable", "avx2", "avx512"}) {
    if (!hk::detail::sgemm_force_backend(name)) continue;
    SCOPED_TRACE(name);
    EXPECT_STREQ(hk::sgemm_backend(), name);
    body();
  }
  hk::detail::sgemm_force_backend(nullptr);
}

}  // namespace

TEST(Gemm, BackendMatchesCpu) {
  const std::string b = hk::sgemm_backend();
#if defined(HONE_HAVE_AVX512_KERNELS)
  if (hk::cpu_has_avx512()) {
    EXPECT_EQ(b, "avx512");
  }
#endif
  EXPECT_TRUE(b == "avx512" || b == "avx2" || b == "portable");
}

TEST(Gemm, SgemmShapesAllBackends) {
  for_each_backend([] {
    for (const Case& c : shapes()) {
      check<float>(c);
      if (HasFatalFailure()) return;
    }
  });
}

TEST(Gemm, DgemmShapes) {
  for (const Case& c : shapes()) {
    check<double>(c);
    if (HasFatalFailure()) return;
  }
}

TEST(Gemm, DegenerateKAndAlpha) {
  for_each_backend([] {
    check<float>({false, false, 5, 9, 0, 1.0, 0.5});  // K == 0: C = beta * C
    check<float>({false, true, 5, 9, 0, 1.0, 0.0});   // K == 0, beta == 0: zeros, NaN dropped
    check<float>({true, false, 5, 9, 4, 0.0, 2.0});   // alpha == 0
  });
  check<double>({false, false, 5, 9, 0, 1.0, 0.0});
}

// Bit-identical results for 1 and 2 threads (threads split tiles, never K), on shapes large
// enough to take the multi-threaded path and to split small M across N.
TEST(Gemm, ThreadCountDoesNotChangeBits) {
  const Case cases[] = {{false, true, 200, 300, 700, 1.0, 0.0},
                        {true, false, 5, 700, 600, 1.0, 1.0},
                        {false, false, 517, 65, 257, 0.5, 0.0}};
  const int saved = omp_get_max_threads();
  for_each_backend([&] {
    for (const Case& c : cases) {
      Operands<float> o(c, 7);
      std::vector<float> one = o.C, two = o.C;
      omp_set_num_threads(1);
      gemm_call(c, o, one);
      omp_set_num_threads(2);
      gemm_call(c, o, two);
      EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float))) << describe(c);
    }
  });
  omp_set_num_threads(saved);
}

// Batched products, with stride 0 broadcasting A or B, against per-item reference products;
// batch sizes below and above the thread count take the two parallel strategies.
TEST(Gemm, StridedBatched) {
  const int64_t M = 19, N = 37, K = 45;
  for (int64_t batch : {1, 5}) {
    for (int bc = 0; bc < 3; ++bc) {  // 0: none, 1: A broadcast, 2: B broadcast
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
        const int64_t sa = bc == 1 ? 0 : M * K, sb = bc == 2 ? 0 : K * N, sc = M * N;
        auto A = random_vec<float>(size_t(M * K * batch), 3);
        auto B = random_vec<float>(size_t(K * N * batch), 4);
        auto C = random_vec<float>(size_t(M * N * batch), 5);
        auto want = C;
        hk::sgemm_strided_batched(ta, tb, M, N, K, 0.75f, A.data(), lda, sa, B.data(), ldb, sb,
                                  0.5f, C.data(), ldc, sc, batch);
        for (int64_t i = 0; i < batch; ++i)
          hk::ref::gemm<float>(ta, tb, M, N, K, 0.75f, A.data() + i * sa, lda, B.data() + i * sb,
                               ldb, 0.5f, want.data() + i * sc, ldc);
        for (size_t i = 0; i < C.size(); ++i)
          ASSERT_NEAR(C[i], want[i], 1e-5) << "batch=" << batch << " bc=" << bc << " t=" << t;

        std::vector<double> Ad(A.begin(), A.end()), Bd(B.begin(), B.end()), Cd(batch * M * N);
        std::vector<double> wd(Cd.size());
        hk::dgemm_strided_batched(ta, tb, M, N, K, 1.0, Ad.data(), lda, sa, Bd.data(), ldb, sb,
                                  0.0, Cd.data(), ldc, sc, batch);
        for (int64_t i = 0; i < batch; ++i)
          hk::ref::gemm<double>(ta, tb, M, N, K, 1.0, Ad.data() + i * sa, lda, Bd.data() + i * sb,
                                ldb, 0.0, wd.data() + i * sc, ldc);
        for (size_t i = 0; i < Cd.size(); ++i) ASSERT_NEAR(Cd[i], wd[i], 1e-12);
      }
    }
  }
}
