// 16-bit floating point storage types. Arithmetic always happens in float: a value is widened
// on load and rounded (to nearest, ties to even, as IEEE 754 and PyTorch do) on store.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HONE_HD16 __host__ __device__ inline
#else
#define HONE_HD16 inline
#endif

namespace hone {

HONE_HD16 uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
HONE_HD16 float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bfloat16: the top 16 bits of a float. Rounding adds 0x7FFF plus the lowest kept bit, which
// rounds to nearest and breaks ties towards an even mantissa. NaN stays a (quiet) NaN.
HONE_HD16 uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  const uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}
HONE_HD16 float bf16_bits_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// IEEE half: 1 sign, 5 exponent, 10 mantissa bits; handles subnormals, overflow to inf, NaN.
HONE_HD16 uint16_t float_to_f16_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): value = m * 2^-24. Shift the full mantissa with rounding.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to 0
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - exp;  // 14 + (113 - exp)
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return static_cast<uint16_t>(sign | h);
}
HONE_HD16 float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    if (mant == 0) return bits_float(sign);
    // subnormal: mant * 2^-24
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7F800000u | (mant << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Storage types that behave like float in arithmetic (widen on read, round on write).
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  HONE_HD16 bf16(float f) : bits(float_to_bf16_bits(f)) {}
  HONE_HD16 operator float() const { return bf16_bits_to_float(bits); }
  static HONE_HD16 bf16 from_bits(uint16_t b) { bf16 r; r.bits = b; return r; }
};
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  HONE_HD16 f16(float f) : bits(float_to_f16_bits(f)) {}
  HONE_HD16 operator float() const { return f16_bits_to_float(bits); }
  static HONE_HD16 f16 from_bits(uint16_t b) { f16 r; r.bits = b; return r; }
};

// The type arithmetic on T happens in: double for double, float for the other floating types.
template <class T> struct acc_type { using type = float; };
template <> struct acc_type<double> { using type = double; };
// Integers convert exactly through int64 (copies, comparisons).
template <> struct acc_type<int32_t> { using type = int64_t; };
template <> struct acc_type<int64_t> { using type = int64_t; };
template <> struct acc_type<uint8_t> { using type = int64_t; };
template <class T> using acc_t = typename acc_type<T>::type;

}  // namespace hone
