// The host-only side of the GEMM epilogues (kernels/gemm_epilogue.h), tested without a GPU:
//  - the column-major plan handed to cuBLASLt, run through a host model of cuBLASLt's documented
//    semantics (column-major D = op(A) op(B), bias over D's rows, aux column-major with its ld,
//    BGRADA/BGRADB reducing cuBLASLt's A/B over k), gives the row-major reference on the same
//    buffers, for every kind, transpose pair and odd shape;
//  - the reference itself against the plain GEMM reference plus the epilogue's formula;
//  - the eligibility rules (alignment, aux ld), the argument checks, the fallback's bias-gradient
//    reduction, and the memo of configurations without an algorithm.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/philox.h"

namespace hone::kernels {
namespace {

constexpr EpilogueKind kKinds[] = {EpilogueKind::None,       EpilogueKind::Bias,   EpilogueKind::BiasGeluTanh,
                                   EpilogueKind::DGeluBgrad, EpilogueKind::BgradA, EpilogueKind::BgradB,
                                   EpilogueKind::DGelu};

// Counter-based values in [lo, hi): value i of stream `seed`.
std::vector<double> random_values(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox::uniform(seed, 0, i);
  return v;
}

double gelu(double z) { return ref::unary(UnaryOp::GeluTanh, z, 0.0); }
double gelu_grad(double z) { return ref::unary_grad(UnaryOp::GeluTanh, z, 0.0); }

// What cuBLASLt computes for a plan, by its documentation: D [m, n] column-major (element (r, c)
// at r + c * ld) = op(first) op(second); epilogue vectors over D's rows (bias, DGELU_BGRAD,
// BGRADA) or columns (BGRADB); aux column-major [m, n] with ld aux_ld.
void cublaslt_model(const LtGemmPlan& p, const double* first, const double* second, double* d, double* bias,
                    double* aux) {
  auto f_at = [&](int64_t r, int64_t kk) {  // op(first) [m, k]
    return p.trans_first ? first[kk + r * p.first.ld] : first[r + kk * p.first.ld];
  };
  auto s_at = [&](int64_t kk, int64_t c) {  // op(second) [k, n]
    return p.trans_second ? second[c + kk * p.second.ld] : second[kk + c * p.second.ld];
  };
  std::vector<double> row_sums(p.m, 0.0);
  for (int64_t r = 0; r < p.m; ++r)
    for (int64_t c = 0; c < p.n; ++c) {
      double acc = 0;
      for (int64_t kk = 0; kk < p.k; ++kk) acc += f_at(r, kk) * s_at(kk, c);
      switch (p.epilogue) {
        case LtEpilogue::Bias: acc += bias[r]; break;
        case LtEpilogue::GeluBias: acc = gelu(acc + bias[r]); break;
        case LtEpilogue::GeluAuxBias:
          acc += bias[r];
          aux[r + c * p.aux_ld] = acc;
          acc = gelu(acc);
          break;
        case LtEpilogue::DGeluBgrad:
          acc *= gelu_grad(aux[r + c * p.aux_ld]);
          row_sums[r] += acc;
          break;
        case LtEpilogue::DGelu:
          acc *= gelu_grad(aux[r + c * p.aux_ld]);
          break;
        default: break;
      }
      d[r + c * p.d.ld] = acc;
    }
  if (p.epilogue == LtEpilogue::DGeluBgrad)
    for (int64_t r = 0; r < p.m; ++r) bias[r] = row_sums[r];
  if (p.epilogue == LtEpilogue::BgradA)
    for (int64_t r = 0; r < p.m; ++r) {
      double s = 0;
      for (int64_t kk = 0; kk < p.k; ++kk) s += f_at(r, kk);
      bias[r] = s;
    }
  if (p.epilogue == LtEpilogue::BgradB)
    for (int64_t c = 0; c < p.n; ++c) {
      double s = 0;
      for (int64_t kk = 0; kk < p.k; ++kk) s += s_at(kk, c);
      bias[c] = s;
    }
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::fabs(want[i]))) << what << " at " << i;
}

struct Shape3 {
  int64_t M, N, K;
};
constexpr Shape3 kShapes[] = {{1, 5, 3}, {7, 64, 64}, {33, 129, 257}, {7, 5, 1}, {2, 16, 9}};

TEST(GemmEpiloguePlan, ColumnMajorModelOfThePlanEqualsTheRowMajorReference) {
  uint64_t seed = 1;
  for (const Shape3& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (EpilogueKind kind : kKinds)
          for (bool has_aux : {true, false}) {
            if (!has_aux && kind != EpilogueKind::BiasGeluTanh) continue;
            const int64_t M = s.M, N = s.N, K = s.K;
            // Padded leading dimensions: the plan must carry them through.
            const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3, aux_ld = (N + 7) / 8 * 8;
            const auto A = random_values((ta ? K : M) * lda, ++seed), B = random_values((tb ? N : K) * ldb, ++seed);
            const auto bias_in = random_values(std::max(M, N), ++seed);
            const auto aux_in = random_values(M * aux_ld, ++seed, -3.0, 3.0);
            std::vector<double> c_ref(M * ldc, 0.0), bias_ref = bias_in, aux_ref = aux_in;
            ref::gemm_epilogue<double>(kind, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, c_ref.data(), ldc,
                                       bias_ref.data(), has_aux ? aux_ref.data() : nullptr, aux_ld);
            const LtGemmPlan p = plan_lt_gemm(kind, ta, tb, M, N, K, lda, ldb, ldc, has_aux, aux_ld);
            const std::string what = std::string(epilogue_kind_name(kind)) + " M" + std::to_string(M) + " N" +
                                     std::to_string(N) + " K" + std::to_string(K) + " ta" + std::to_string(ta) +
                                     " tb" + std::to_string(tb) + (has_aux ? "" : " (no aux)");
            // The layouts are consistent with the sizes and the stored buffers.
            EXPECT_EQ(p.m, N) << what;
            EXPECT_EQ(p.n, M) << what;
            EXPECT_EQ(p.k, K) << what;
            EXPECT_EQ(p.first.rows, p.trans_first ? p.k : p.m) << what;
            EXPECT_EQ(p.first.cols, p.trans_first ? p.m : p.k) << what;
            EXPECT_EQ(p.second.rows, p.trans_second ? p.n : p.k) << what;
            EXPECT_EQ(p.second.cols, p.trans_second ? p.k : p.n) << what;
            EXPECT_EQ(p.d.rows, p.m) << what;
            EXPECT_EQ(p.d.cols, p.n) << what;
            for (const LtLayout* l : {&p.first, &p.second, &p.d}) EXPECT_GE(l->ld, l->rows) << what;
            EXPECT_EQ(p.first.ld * p.first.cols, int64_t(B.size())) << what;
            EXPECT_EQ(p.second.ld * p.second.cols, int64_t(A.size())) << what;
            // The same buffers through the model of cuBLASLt.
            std::vector<double> c_lt(M * ldc, 0.0), bias_lt = bias_in, aux_lt = aux_in;
            cublaslt_model(p, B.data(), A.data(), c_lt.data(), bias_lt.data(), aux_lt.data());
            expect_near_all(c_lt, c_ref, what + " C");
            expect_near_all(aux_lt, aux_ref, what + " aux");
            expect_near_all(bias_lt, bias_ref, what + " bias");
            // Epilogue vectors: which length, read or written.
            const int64_t want_len = !epilogue_uses_bias(kind) ? 0 : kind == EpilogueKind::BgradA ? M : N;
            EXPECT_EQ(p.bias_length, want_len) << what;
            EXPECT_EQ(p.bias_is_output, kind == EpilogueKind::DGeluBgrad || kind == EpilogueKind::BgradA ||
                                            kind == EpilogueKind::BgradB)
                << what;
            EXPECT_EQ(p.aux_ld > 0, epilogue_uses_aux(kind, has_aux ? aux_in.data() : nullptr)) << what;
            EXPECT_EQ(p.aux_is_output, kind == EpilogueKind::BiasGeluTanh && has_aux) << what;
          }
}

TEST(GemmEpiloguePlan, KindsMapToTheSwappedCublasLtEpilogues) {
  auto epi = [](EpilogueKind k, bool aux) { return plan_lt_gemm(k, false, true, 4, 8, 2, 2, 2, 8, aux, 8).epilogue; };
  EXPECT_EQ(epi(EpilogueKind::None, false), LtEpilogue::Default);
  EXPECT_EQ(epi(EpilogueKind::Bias, false), LtEpilogue::Bias);
  EXPECT_EQ(epi(EpilogueKind::BiasGeluTanh, true), LtEpilogue::GeluAuxBias);
  EXPECT_EQ(epi(EpilogueKind::BiasGeluTanh, false), LtEpilogue::GeluBias);
  EXPECT_EQ(epi(EpilogueKind::DGeluBgrad, true), LtEpilogue::DGeluBgrad);
  EXPECT_EQ(epi(EpilogueKind::DGelu, true), LtEpilogue::DGelu);
  // Our A is cuBLASLt's B and the other way round.
  EXPECT_EQ(epi(EpilogueKind::BgradA, false), LtEpilogue::BgradB);
  EXPECT_EQ(epi(EpilogueKind::BgradB, false), LtEpilogue::BgradA);
  // The weight gradient of a linear layer (dW [N, K] = g^T x, g [R, N], x [R, K]) with BgradA:
  // cuBLASLt sees (N, T) operands, m = K, n = N, as Apex's and flash-attention's wgrad + BGRADB.
  const int64_t R = 16, Nout = 12, Kin = 8;
  const LtGemmPlan w = plan_lt_gemm(EpilogueKind::BgradA, true, false, Nout, Kin, R, Nout, Kin, Kin, false, 0);
  EXPECT_FALSE(w.trans_first);
  EXPECT_TRUE(w.trans_second);
  EXPECT_EQ(w.m, Kin);
  EXPECT_EQ(w.n, Nout);
  EXPECT_EQ(w.k, R);
  EXPECT_EQ(w.epilogue, LtEpilogue::BgradB);
  EXPECT_EQ(w.bias_length, Nout);
}

TEST(GemmEpilogueReference, EqualsPlainGemmPlusTheFormula) {
  const int64_t M = 5, N = 7, K = 9;
  const auto A = random_values(M * K, 3), B = random_values(N * K, 4), b = random_values(N, 5);
  std::vector<double> plain(M * N);
  ref::gemm<double>(false, true, M, N, K, 1.0, A.data(), K, B.data(), K, 0.0, plain.data(), N);
  std::vector<double> c(M * N), aux(M * 8), bias = b;
  ref::gemm_epilogue<double>(EpilogueKind::BiasGeluTanh, false, true, M, N, K, A.data(), K, B.data(), K, c.data(), N,
                             bias.data(), aux.data(), 8);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const double z = plain[i * N + j] + b[j];
      EXPECT_NEAR(aux[i * 8 + j], z, 1e-14);
      EXPECT_NEAR(c[i * N + j], gelu(z), 1e-14);
    }
  // DGeluBgrad: C = plain * gelu'(aux), bias = column sums of C.
  std::vector<double> g(N, 0.0);
  ref::gemm_epilogue<double>(EpilogueKind::DGeluBgrad, false, true, M, N, K, A.data(), K, B.data(), K, c.data(), N,
                             g.data(), aux.data(), 8);
  for (int64_t j = 0; j < N; ++j) {
    double s = 0;
    for (int64_t i = 0; i < M; ++i) {
      const double want = plain[i * N + j] * gelu_grad(aux[i * 8 + j]);
      EXPECT_NEAR(c[i * N + j], want, 1e-14);
      s += want;
    }
    EXPECT_NEAR(g[j], s, 1e-13);
  }
  // A float instantiation agrees with the double one.
  std::vector<float> Af(A.begin(), A.end()), Bf(B.begin(), B.end()), cf(M * N), bf(b.begin(), b.end());
  ref::gemm_epilogue<float>(EpilogueKind::Bias, false, true, M, N, K, Af.data(), K, Bf.data(), K, cf.data(), N,
                            bf.data(), nullptr, 0);
  for (int64_t i = 0; i < M * N; ++i) EXPECT_NEAR(cf[i], plain[i] + b[i % N], 1e-5);
}

TEST(GemmEpilogueRules, AlignmentAndAuxLeadingDimension) {
  alignas(256) static unsigned char buf[1024];
  const void* aligned = buf;
  const void* off8 = buf + 8;
  EXPECT_EQ(pointer_alignment(aligned), 256u);
  EXPECT_EQ(pointer_alignment(buf + 48), 16u);
  EXPECT_EQ(pointer_alignment(off8), 8u);
  EXPECT_EQ(pointer_alignment(buf + 2), 2u);
  EXPECT_EQ(pointer_alignment(buf + 1), 1u);
  using E = EpilogueKind;
  const struct {
    E kind;
    int64_t M, N, K;
    const void *bias, *aux;
    int64_t aux_ld;
    bool eligible;
  } cases[] = {
      {E::None, 7, 5, 3, nullptr, nullptr, 0, true},
      {E::Bias, 7, 5, 3, aligned, nullptr, 0, true},
      {E::Bias, 7, 5, 3, off8, nullptr, 0, false},  // bias not 16-byte aligned
      {E::Bias, 0, 5, 3, aligned, nullptr, 0, false},  // empty products go to the fallback
      {E::Bias, 7, 5, 0, aligned, nullptr, 0, false},
      {E::BiasGeluTanh, 7, 5, 3, aligned, aligned, 8, true},
      {E::BiasGeluTanh, 7, 5, 3, aligned, aligned, 5, false},   // aux ld not a multiple of 8
      {E::BiasGeluTanh, 7, 12, 3, aligned, aligned, 8, false},  // aux ld < N
      {E::BiasGeluTanh, 7, 5, 3, aligned, off8, 8, false},      // aux not 16-byte aligned
      {E::BiasGeluTanh, 7, 5, 3, aligned, nullptr, 5, true},    // no aux: its ld does not matter
      {E::DGeluBgrad, 7, 5, 3, aligned, aligned, 5, false},
      {E::DGeluBgrad, 7, 64, 3, aligned, aligned, 64, true},
      {E::BgradA, 7, 5, 3, aligned, nullptr, 0, true},
  };
  for (const auto& c : cases) {
    const char* why = lt_epilogue_ineligibility(c.kind, c.M, c.N, c.K, c.bias, c.aux, c.aux_ld);
    EXPECT_EQ(why == nullptr, c.eligible) << epilogue_kind_name(c.kind) << " M" << c.M << " N" << c.N << " K" << c.K
                                          << " aux_ld " << c.aux_ld << ": " << (why ? why : "eligible");
  }
}

TEST(GemmEpilogueRules, ArgumentChecksNameTheProblem) {
  alignas(16) float v[64] = {};
  using K = EpilogueKind;
  EXPECT_NO_THROW(check_epilogue_args(K::None, 5, nullptr, nullptr, 0, "t"));
  EXPECT_THROW(check_epilogue_args(K::Bias, 5, nullptr, nullptr, 0, "t"), std::invalid_argument);
  EXPECT_THROW(check_epilogue_args(K::BgradB, 5, nullptr, nullptr, 0, "t"), std::invalid_argument);
  EXPECT_THROW(check_epilogue_args(K::DGeluBgrad, 5, v, nullptr, 8, "t"), std::invalid_argument);
  EXPECT_THROW(check_epilogue_args(K::BiasGeluTanh, 5, v, v, 4, "t"), std::invalid_argument);
  EXPECT_NO_THROW(check_epilogue_args(K::BiasGeluTanh, 5, v, nullptr, 0, "t"));
  EXPECT_NO_THROW(check_epilogue_args(K::DGeluBgrad, 5, v, v, 5, "t"));
  // DGelu reads the pre-activation and has no bias vector.
  EXPECT_NO_THROW(check_epilogue_args(K::DGelu, 5, nullptr, v, 8, "t"));
  EXPECT_THROW(check_epilogue_args(K::DGelu, 5, nullptr, nullptr, 8, "t"), std::invalid_argument);
  EXPECT_EQ(lt_epilogue_ineligibility(K::DGelu, 4, 5, 6, nullptr, v, 8), nullptr);
  try {
    check_epilogue_args(K::DGeluBgrad, 9, v, v, 8, "cuda::gemm_epilogue");
    FAIL() << "no throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("dgelu_bgrad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("aux_ld 8"), std::string::npos) << e.what();
  }
}

// The fallback's bias gradient as described by fallback_bias_grad, summed on the host, equals the
// reference's (C after the GELU gradient, op(A) or op(B) over K).
TEST(GemmEpilogueRules, FallbackBiasGradientReductionMatchesTheReference) {
  uint64_t seed = 100;
  for (const Shape3& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (EpilogueKind kind : {EpilogueKind::DGeluBgrad, EpilogueKind::BgradA, EpilogueKind::BgradB}) {
          const int64_t M = s.M, N = s.N, K = s.K;
          const int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 1, aux_ld = N;
          const auto A = random_values((ta ? K : M) * lda, ++seed), B = random_values((tb ? N : K) * ldb, ++seed);
          auto aux = random_values(M * aux_ld, ++seed, -3.0, 3.0);
          std::vector<double> c(M * ldc, 0.0), bias(std::max(M, N), 0.0);
          ref::gemm_epilogue<double>(kind, ta, tb, M, N, K, A.data(), lda, B.data(), ldb, c.data(), ldc, bias.data(),
                                     aux.data(), aux_ld);
          const BiasGradSum r = fallback_bias_grad(kind, ta, tb, M, N, K, lda, ldb, ldc);
          const double* x = r.source == BiasGradSum::Source::C   ? c.data()
                            : r.source == BiasGradSum::Source::A ? A.data()
                                                                 : B.data();
          ASSERT_EQ(r.n_out, kind == EpilogueKind::BgradA ? M : N);
          for (int64_t i = 0; i < r.n_out; ++i) {
            double sum = 0;
            for (int64_t j = 0; j < r.n_red; ++j) sum += x[i * r.stride_out + j * r.stride_red];
            ASSERT_NEAR(sum, bias[i], 1e-12 * std::max(1.0, std::fabs(bias[i])))
                << epilogue_kind_name(kind) << " M" << M << " N" << N << " K" << K << " ta" << ta << " tb" << tb;
          }
        }
  EXPECT_EQ(fallback_bias_grad(EpilogueKind::Bias, false, false, 3, 4, 5, 5, 4, 4).source, BiasGradSum::Source::None);
}

TEST(GemmEpilogueMemo, RemembersConfigurationsPerKey) {
  EpilogueMemo memo;
  EpilogueKey a;
  a.kind = EpilogueKind::DGeluBgrad;
  a.M = 16384, a.N = 3072, a.K = 768, a.lda = 3072, a.ldb = 3072, a.ldc = 3072, a.aux_ld = 3072;
  a.align_a = a.align_b = a.align_c = a.align_bias = a.align_aux = 256;
  EXPECT_FALSE(memo.unsupported(a));
  EXPECT_TRUE(memo.mark_unsupported(a));
  EXPECT_FALSE(memo.mark_unsupported(a));
  EXPECT_TRUE(memo.unsupported(a));
  // Any field of the key makes another configuration.
  EpilogueKey b = a;
  b.align_bias = 8;
  EXPECT_FALSE(memo.unsupported(b));
  b = a, b.tf32 = true;
  EXPECT_FALSE(memo.unsupported(b));
  b = a, b.dtype = 2;
  EXPECT_FALSE(memo.unsupported(b));
  b = a, b.trans_b = true;
  EXPECT_FALSE(memo.unsupported(b));
  b = a, b.device = 1;
  EXPECT_FALSE(memo.unsupported(b));
  EXPECT_EQ(memo.size(), 1u);
  // Concurrent recording from two threads keeps every key once.
  auto fill = [&](int64_t base) {
    for (int64_t i = 0; i < 200; ++i) {
      EpilogueKey k = a;
      k.M = base + i % 100;
      memo.mark_unsupported(k);
    }
  };
  std::thread t1(fill, 0), t2(fill, 50);
  t1.join();
  t2.join();
  EXPECT_EQ(memo.size(), 1u + 150u);
  memo.clear();
  EXPECT_EQ(memo.size(), 0u);
  EXPECT_FALSE(memo.unsupported(a));
}

}  // namespace
}  // namespace hone::kernels
