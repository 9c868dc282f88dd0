// kernels/gemm_split.h: the aligned parts of a GEMM with a large odd extent, checked on the CPU by
// running the parts with the reference GEMM on the same memory (offsets, leading dimensions, the K
// remainder's beta) and against the whole product.
#include "kernels/gemm_split.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/gemm.h"

namespace hone::kernels {
namespace {

struct Case {
  bool ta, tb;
  int64_t M, N, K;
};

int64_t padded(int64_t n) { return (n + 7) / 8 * 8 + 8; }

std::vector<double> random_values(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// The parts must tile C exactly: each output element covered by exactly one non-accumulating part
// first, and the K parts of it summing to K.
TEST(GemmSplit, PartsRunOnTheSameMemoryGiveTheWholeProduct) {
  const Case cases[] = {{false, false, 515, 9, 12},   {true, false, 7, 521, 16},   {false, true, 5, 12, 1027},
                        {true, true, 519, 13, 515},   {false, false, 9, 515, 517}, {true, false, 513, 514, 515},
                        {false, true, 2049, 50257, 8}};
  for (const Case& c : cases) {
    for (int64_t elem_bytes : {2, 4}) {
      const int64_t lda = padded(c.ta ? c.M : c.K), ldb = padded(c.tb ? c.K : c.N), ldc = padded(c.N);
      const std::vector<GemmPart> parts = gemm_aligned_parts(c.ta, c.tb, c.M, c.N, c.K, lda, ldb, ldc, elem_bytes);
      const int64_t per = 16 / elem_bytes;
      int expected = 1;
      for (int64_t d : {c.M, c.N, c.K}) expected *= (d >= kGemmSplitMinExtent && d % per) ? 2 : 1;
      ASSERT_EQ(int(parts.size()), expected) << c.M << "x" << c.N << "x" << c.K << " elem " << elem_bytes;
      for (const GemmPart& p : parts) {
        // Main parts are whole vectors; remainders are shorter than one.
        for (auto [part_d, whole_d] : {std::pair{p.M, c.M}, std::pair{p.N, c.N}, std::pair{p.K, c.K}})
          EXPECT_TRUE(part_d == whole_d || part_d % per == 0 || part_d < per);
        // Offsets keep the 16-byte alignment of the operands.
        EXPECT_EQ(p.a_offset % per, 0);
        EXPECT_EQ(p.b_offset % per, 0);
        EXPECT_EQ(p.c_offset % per, 0);
      }
      if (c.M * c.N * c.K > 20'000'000) continue;  // the plan only: the product is too big to run here
      const auto A = random_values(size_t((c.ta ? c.K : c.M) * lda), 1),
                 B = random_values(size_t((c.tb ? c.N : c.K) * ldb), 2);
      const auto C0 = random_values(size_t(c.M * ldc), 3);
      for (double beta : {0.0, 0.5}) {
        std::vector<double> want = C0, got = C0;
        ref::gemm<double>(c.ta, c.tb, c.M, c.N, c.K, 1.0, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
        for (const GemmPart& p : parts)
          ref::gemm<double>(c.ta, c.tb, p.M, p.N, p.K, 1.0, A.data() + p.a_offset, lda, B.data() + p.b_offset, ldb,
                            p.accumulate ? 1.0 : beta, got.data() + p.c_offset, ldc);
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-9) << "element " << i << " of " << c.M << "x" << c.N << "x" << c.K << " ta "
                                             << c.ta << " tb " << c.tb << " beta " << beta;
      }
    }
  }
}

TEST(GemmSplit, SmallOrAlignedOrMisalignedLeadingDimensionsStayWhole) {
  // Below the threshold, odd extents stay whole.
  EXPECT_EQ(gemm_aligned_parts(false, false, 511, 33, 257, 264, 40, 40, 2).size(), 1u);
  // Aligned extents: nothing to cut.
  EXPECT_EQ(gemm_aligned_parts(false, true, 16384, 50264, 768, 768, 768, 50264, 2).size(), 1u);
  // A misaligned leading dimension: cutting would not give aligned operands.
  EXPECT_EQ(gemm_aligned_parts(false, false, 16384, 50257, 768, 768, 50257, 50257, 2).size(), 1u);
  // float64 (8 bytes): two per vector; one byte per element: 16 per vector.
  EXPECT_EQ(gemm_aligned_parts(false, false, 1025, 8, 8, 16, 16, 16, 8).size(), 2u);
  EXPECT_EQ(gemm_aligned_parts(false, false, 1025, 16, 16, 16, 16, 16, 16).size(), 1u);
  // GPT-2's tied head backward in bf16: dX = dlogits [16384, 50257 (ld 50264)] x wte [50257, 768].
  const auto dx = gemm_aligned_parts(false, false, 16384, 768, 50257, 50264, 768, 768, 2);
  ASSERT_EQ(dx.size(), 2u);
  EXPECT_EQ(dx[0].K, 1);
  EXPECT_FALSE(dx[0].accumulate);
  EXPECT_EQ(dx[0].a_offset, 50256);
  EXPECT_EQ(dx[0].b_offset, 50256 * 768);
  EXPECT_EQ(dx[1].K, 50256);
  EXPECT_TRUE(dx[1].accumulate);
}

}  // namespace
}  // namespace hone::kernels
