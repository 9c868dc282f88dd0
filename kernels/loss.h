// Fused cross-entropy over the rows of contiguous logits [rows, classes] with integer targets
// [rows] (int32 or int64):
//   lse_i  = log sum_c exp(x_ic)
//   loss_i = (1 - eps) (lse_i - x_i,t_i) + eps (lse_i - mean_c x_ic)     (eps: label smoothing)
// Rows whose target equals ignore_index contribute nothing. The forward reads each row twice
// (max, then one pass for both the exp-sum and the plain sum), parallel over rows.
#pragma once
#include <cstdint>

#include "kernels/half.h"

namespace hone::kernels {

struct CrossEntropyArgs {
  int64_t rows = 0, classes = 0;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  // Elements from one row's start to the next, for logits and their gradient (0: classes). The
  // CUDA kernels read GEMM outputs with padded rows in place (engine/ops/common.h,
  // empty_gemm_output); the CPU kernels take contiguous rows only.
  int64_t row_stride = 0;
};

struct CrossEntropyTotals {
  double loss_sum = 0.0;  // sum of loss_i over counted rows, added in row order in double
  int64_t count = 0;      // rows whose target != ignore_index
};

// Index of the first target that is neither in [0, classes) nor ignore_index, or -1. The
// kernels below assume this returned -1.
template <class I> int64_t cross_entropy_first_bad_target(const CrossEntropyArgs& a, const I* targets);

// lse (one per row, left 0 for ignored rows) is saved for the backward pass.
template <class T, class I>
CrossEntropyTotals cross_entropy_forward(const CrossEntropyArgs& a, const T* logits,
                                         const I* targets, acc_t<T>* lse);

// glogits = (softmax(x) - (1 - eps) onehot(t) - eps / classes) * grad_scale on counted rows,
// 0 on ignored rows. grad_scale is the upstream gradient divided by the count.
template <class T, class I>
void cross_entropy_backward(const CrossEntropyArgs& a, const T* logits, const I* targets,
                            const acc_t<T>* lse, double grad_scale, T* glogits);

}  // namespace hone::kernels

namespace hone::kernels::ref {
// The same, written plainly, in double for every T. The backward recomputes the softmax from
// the logits and ignores `lse`.
template <class T, class I>
CrossEntropyTotals cross_entropy_forward(const CrossEntropyArgs& a, const T* logits,
                                         const I* targets, acc_t<T>* lse);
template <class T, class I>
void cross_entropy_backward(const CrossEntropyArgs& a, const T* logits, const I* targets,
                            const acc_t<T>* lse, double grad_scale, T* glogits);
}  // namespace hone::kernels::ref
