// float exp, tanh and erf written as plain arithmetic, so that `#pragma omp simd` loops over them
// vectorise (gcc calls the scalar libm functions one element at a time otherwise: without
// -ffast-math glibc's vector variants are not used). The GELUs of GPT-2 and BERT spent about 9 ns
// per element in scalar tanhf/erff, a sixth of a GPT-2 training step on the CPU.
//   exp_f   Cephes expf: x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial, 2^n from the
//           exponent bits; relative error < 2e-7 over the float range (inputs are clamped to
//           [-87.3, 88.3], so no denormal or infinite results).
//   tanh_f  Cephes tanhf: an odd polynomial below |x| = 0.625, 1 - 2 / (e^{2|x|} + 1) above;
//           absolute error < 1e-7.
//   erf_f   Abramowitz & Stegun 7.1.26 with exp_f: absolute error < 6e-7 (GELU's relative error
//           stays below 2e-7).
// NaN in gives NaN out. tests/kernels/fast_math_test.cpp pins the error bounds against libm.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace hone::kernels::cpu::fast {

[[gnu::always_inline]] inline float exp_f(float x) {
  const float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  const float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  const float z = r * r;
  const float p =
      ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
       1.6666665459e-1f) * r + 5.0000001201e-1f;
  const float e = p * z + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);  // 2^n
  const float y = e * scale;
  return x != x ? x : y;
}

[[gnu::always_inline]] inline float tanh_f(float x) {
  const float a = std::fabs(x);
  const float z = x * x;
  const float small =
      ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
       3.33332819422e-1f) * z * x + x;
  const float e = exp_f(2.0f * (a < 10.0f ? a : 10.0f));  // tanh rounds to 1 in float from |x| = 9.1 on
  const float big = std::copysign(1.0f - 2.0f / (e + 1.0f), x);
  const float y = a < 0.625f ? small : big;
  return x != x ? x : y;
}

[[gnu::always_inline]] inline float erf_f(float x) {
  const float a = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  const float y = std::copysign(1.0f - poly * exp_f(-a * a), x);
  return x != x ? x : y;
}

}  // namespace hone::kernels::cpu::fast
