// Element types of tensors.
#pragma once
#include <cstdint>
#include <string>
#include <stdexcept>
#include "kernels/half.h"

namespace hone {

// F64 exists so that gradient checks can run ops in double precision.
enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, U8 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::U8: return "uint8";
  }
  return "?";
}

inline bool is_floating(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::BF16 || t == DType::F16;
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<bf16>() { return DType::BF16; }
template <> constexpr DType dtype_of<f16>() { return DType::F16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }

}  // namespace hone

// Runs the statement list with `scalar_t` bound to the C++ type of a floating dtype.
#define HONE_DISPATCH_FLOATING(DT, WHAT, ...)                                               \
  [&] {                                                                                     \
    switch (DT) {                                                                           \
      case ::hone::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }            \
      case ::hone::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }           \
      case ::hone::DType::BF16: { using scalar_t = ::hone::bf16; return __VA_ARGS__(); }    \
      case ::hone::DType::F16: { using scalar_t = ::hone::f16; return __VA_ARGS__(); }      \
      default:                                                                              \
        throw std::invalid_argument(std::string(WHAT) + ": expected a floating dtype, got " + \
                                    ::hone::dtype_name(DT));                                \
    }                                                                                       \
  }()

// Every dtype.
#define HONE_DISPATCH_ALL(DT, WHAT, ...)                                                     \
  [&] {                                                                                     \
    switch (DT) {                                                                           \
      case ::hone::DType::F32: { using scalar_t = float; return __VA_ARGS__(); }            \
      case ::hone::DType::F64: { using scalar_t = double; return __VA_ARGS__(); }           \
      case ::hone::DType::BF16: { using scalar_t = ::hone::bf16; return __VA_ARGS__(); }    \
      case ::hone::DType::F16: { using scalar_t = ::hone::f16; return __VA_ARGS__(); }      \
      case ::hone::DType::I32: { using scalar_t = int32_t; return __VA_ARGS__(); }          \
      case ::hone::DType::I64: { using scalar_t = int64_t; return __VA_ARGS__(); }          \
      case ::hone::DType::U8: { using scalar_t = uint8_t; return __VA_ARGS__(); }           \
    }                                                                                       \
    throw std::invalid_argument(std::string(WHAT) + ": unknown dtype");                     \
  }()
