#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/optim.h"

namespace hone::kernels {
namespace {

TEST(AdamWKernel, MatchesPyTorchFormulaOverSeveralSteps) {
  const int64_t n = 1037;  // not a multiple of any vector width
  std::vector<float> p1(n), p2(n), m1(n, 0), m2(n, 0), v1(n, 0), v2(n, 0), g(n);
  for (int64_t i = 0; i < n; ++i) p1[i] = p2[i] = std::sin(0.1f * i);
  for (int step = 1; step <= 5; ++step) {
    for (int64_t i = 0; i < n; ++i) g[i] = std::cos(0.37f * i + step);
    AdamWParams hp{1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step};
    adamw_update(n, p1.data(), g.data(), m1.data(), v1.data(), hp);
    ref::adamw_update(n, p2.data(), g.data(), m2.data(), v2.data(), hp);
  }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(p1[i], p2[i], 1e-6f) << i;
    ASSERT_NEAR(m1[i], m2[i], 1e-6f) << i;
    ASSERT_NEAR(v1[i], v2[i], 1e-7f) << i;
  }
}

}  // namespace
}  // namespace hone::kernels
