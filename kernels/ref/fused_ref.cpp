// Reference fused kernels: the composition of the plain formulas, in double.
#include <vector>

#include "kernels/fused.h"
#include "kernels/layernorm.h"

namespace hone::kernels::ref {

// Values of T widened to double, and doubles rounded to T (through acc_t<T>, as the kernels store).
template <class T> static double d(T v) { return double(acc_t<T>(v)); }
template <class T> static T rounded(double v) { return T(acc_t<T>(v)); }

template <class T>
void bias_gelu_forward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, T* y) {
  require_gelu_op(op, "ref::bias_gelu_forward");
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j)
      y[r * cols + j] = rounded<T>(unary(op, d(x[r * cols + j]) + d(bias[j]), 0.0));
}

template <class T>
void bias_gelu_backward(UnaryOp op, int64_t rows, int64_t cols, const T* x, const T* bias, const T* gy,
                        T* gx, T* gbias) {
  require_gelu_op(op, "ref::bias_gelu_backward");
  std::vector<double> gb(cols, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t k = r * cols + j;
      const double g = d(gy[k]) * unary_grad(op, d(x[k]) + d(bias[j]), 0.0);
      if (gx) gx[k] = rounded<T>(g);
      gb[j] += g;
    }
  if (gbias)
    for (int64_t j = 0; j < cols; ++j) gbias[j] = rounded<T>(gb[j]);
}

template <class T>
void add_layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* residual, const T* weight,
                           const T* bias, double eps, T* sum, T* y, acc_t<T>* mean, acc_t<T>* rstd) {
  for (int64_t i = 0; i < rows * cols; ++i) sum[i] = rounded<T>(d(x[i]) + d(residual[i]));
  layernorm_forward<T>(rows, cols, sum, weight, bias, eps, y, mean, rstd);
}

HONE_FUSED_FOR_EACH_TYPE(HONE_FUSED_INSTANTIATE)

}  // namespace hone::kernels::ref
