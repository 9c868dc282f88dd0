// Elementwise kernels: unary maps, broadcasting binary ops, comparisons, strided copies.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/half.h"

namespace hone::kernels {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, GeluErf, GeluTanh, Silu, Abs, Pow
};
const char* unary_op_name(UnaryOp op);

// y[i] = f(x[i]) over n contiguous elements; `param` is the exponent of Pow.
template <class T> void unary_forward(UnaryOp op, int64_t n, const T* x, T* y, double param);
// gx[i] = gy[i] * f'(x[i]). `y` (the forward output) is used where the derivative is cheaper
// from it (exp, tanh, sigmoid, sqrt, rsqrt); it may be null for the others.
template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx, double param);

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Maximum, Minimum };
enum class CompareOp : uint8_t { Eq, Gt };

// A strided operand over an index space of `ndim` dims: element (i0..ik) is at
// data + sum(i_d * strides[d]). A stride of 0 broadcasts.
constexpr int kMaxDims = 12;

// out (contiguous, row-major over `shape`) = a op b.
template <class T>
void binary_forward(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
                    const T* b, const int64_t* b_strides, T* out);
// out (uint8, contiguous) = a cmp b.
template <class T>
void compare(CompareOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
             const T* b, const int64_t* b_strides, uint8_t* out);
// out = cond ? a : b, all strided over `shape`, out contiguous.
template <class T>
void where(int ndim, const int64_t* shape, const uint8_t* cond, const int64_t* c_strides, const T* a,
           const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out);

// dst = convert(src) elementwise over `shape`, both strided; types given by dtype codes
// (the engine's DType values: 0 f32, 1 f64, 2 bf16, 3 f16, 4 i32, 5 i64, 6 u8; with_type_code).
void copy_strided(int src_type, int dst_type, int ndim, const int64_t* shape, const void* src,
                  const int64_t* src_strides, void* dst, const int64_t* dst_strides);
// dst[i] = value for the strided view dst.
void fill_strided(int dst_type, int ndim, const int64_t* shape, void* dst,
                  const int64_t* dst_strides, double value);
// a += alpha * b over n contiguous elements (gradient accumulation).
template <class T> void axpy(int64_t n, double alpha, const T* b, T* a);
template <class T> void scale(int64_t n, double s, T* a);

// Calls f(T{}) with T the type of a dtype code of copy_strided/fill_strided, the 16-bit types being
// BF16 and F16 (hone's on the CPU, CUDA's in device code). `what` names the caller in the error.
template <class BF16, class F16, class F>
void with_type_code(int code, const char* what, F&& f) {
  switch (code) {
    case 0: return f(float{});
    case 1: return f(double{});
    case 2: return f(BF16{});
    case 3: return f(F16{});
    case 4: return f(int32_t{});
    case 5: return f(int64_t{});
    case 6: return f(uint8_t{});
  }
  throw std::invalid_argument(std::string(what) + ": unknown type code " + std::to_string(code));
}

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The plain formulas in double, the yardstick for the fast kernels and for op tests.
double unary(UnaryOp op, double x, double param);
double unary_grad(UnaryOp op, double x, double param);  // f'(x)
double binary(BinaryOp op, double a, double b);
}  // namespace hone::kernels::ref
