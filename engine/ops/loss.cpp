// cross_entropy: fused log-softmax + negative log-likelihood (+ label smoothing), mean over the
// targets that are not ignore_index. When every target is ignored the loss is 0 and so is the
// gradient (PyTorch gives nan there; a batch of pure padding should not poison training).
#include "kernels/loss.h"

#include <cmath>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/env_switch.h"

namespace hone::ops {

namespace {

thread_local double t_expected_loss_grad = 1.0;

// "[1, 7]": the multi-index of flat position `flat` in `shape`.
std::string position_str(int64_t flat, const Shape& shape) {
  Shape idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}

void check_cross_entropy_args(const Tensor& logits, const Tensor& targets, double smoothing) {
  detail::require_floating(logits, "cross_entropy");
  detail::require_index_dtype(targets, "cross_entropy");
  detail::require_same_device(logits, targets, "cross_entropy");
  if (logits.dim() < 1)
    throw std::invalid_argument("cross_entropy: logits must have a class dim, got " + logits.str());
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  if (targets.shape() != lead)
    throw std::invalid_argument("cross_entropy: targets " + targets.str() + " must have shape " +
                                shape_str(lead) + " to match logits " + logits.str());
  if (!(smoothing >= 0.0 && smoothing <= 1.0))
    throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " +
                                std::to_string(smoothing));
}

// Runs f(I{}) with I the C++ type of the int32/int64 targets.
template <class F> void dispatch_index(DType dt, F&& f) {
  if (dt == DType::I32)
    f(int32_t{});
  else
    f(int64_t{});
}

void check_targets_in_range(const kernels::CrossEntropyArgs& a, const Tensor& targets) {
  int64_t bad = -1, value = 0;
  dispatch_index(targets.dtype(), [&](auto tag) {
    using I = decltype(tag);
    const I* t = static_cast<const I*>(targets.data_ptr());
    bad = kernels::cross_entropy_first_bad_target(a, t);
    if (bad >= 0) value = int64_t(t[bad]);
  });
  if (bad >= 0)
    throw std::invalid_argument("cross_entropy: target " + std::to_string(value) + " at position " +
                                position_str(bad, targets.shape()) + " is out of range for " +
                                std::to_string(a.classes) + " classes (ignore_index is " +
                                std::to_string(a.ignore_index) + ")");
}

#if defined(HONE_WITH_CUDA)
// The CUDA path: the loss and the count of counted rows stay on the device (the backward forms
// grad / count there too), so neither direction synchronises with the host. Out-of-range
// targets are reported at the next synchronisation (see kernels/cuda_api.h, IndexError).
//
// The logits are read in place when their rows are evenly spaced with unit-stride classes (a GEMM's
// padded rows, see detail::empty_gemm_output), and their gradient is written in the same layout, so
// that the backward GEMMs get it aligned too.
//
// When the logits need a gradient, the forward forms it while it has each row at hand, for the
// upstream gradient LossGradScaleGuard expects (1 by default), and the backward only scales it, in
// place and not at all when the expected one comes: the logits are read once instead of twice (at
// GPT-2's 50257-token head, B=16, T=1024 in bf16: 1.6 GB less traffic per step), and they need not be
// kept for the backward. Not for f16 logits unless the upstream gradient is declared (formed for 1,
// divided by the count, their gradient would mostly underflow before a loss scale reached it), nor
// with HONE_CE_GRAD_IN_FORWARD=0.
Tensor cross_entropy_cuda(const Tensor& logits_in, const Tensor& targets, kernels::CrossEntropyArgs args) {
  Tensor x = logits_in.detach().reshape({args.rows, args.classes});  // a view where the strides allow
  if (args.classes > 1 && x.strides()[1] != 1) x = x.contiguous();
  args.row_stride = args.rows > 1 ? x.strides()[0] : args.classes;
  const Device dev = x.device();
  const DType stats = x.dtype() == DType::F64 ? DType::F64 : DType::F32;
  const Tensor lse = Tensor::empty({args.rows}, stats, dev);
  const Tensor count = Tensor::empty({}, DType::I64, dev);
  Tensor out = Tensor::empty({}, stats, dev);  // the loss in the accumulation dtype
  const bool grad = needs_grad({&logits_in});
  // The upstream gradient the gradient is formed for, rounded as the device holds it (1 if the
  // expected one is 0 or not finite: the backward divides by it).
  double expected = expected_loss_grad();
  if (stats != DType::F64) expected = double(float(expected));
  const bool declared = std::isfinite(expected) && expected != 0.0 && expected != 1.0;
  const double formed_for = declared ? expected : 1.0;
  // f16 logits only where the upstream gradient was declared (the Trainer's loss scale): formed for 1
  // and scaled after, their gradient would mostly underflow first.
  const bool grad_in_forward =
      grad && (x.dtype() != DType::F16 || declared) && !kernels::switched_off("HONE_CE_GRAD_IN_FORWARD");
  // [rows, classes] with the logits' row stride: storage [rows, row_stride], narrowed.
  const auto empty_grad = [args](DType dtype, Device device) {
    return Tensor::empty({args.rows, args.row_stride}, dtype, device).narrow(1, 0, args.classes);
  };
  const Tensor forward_grad = grad_in_forward ? empty_grad(x.dtype(), dev) : Tensor();
  HONE_DISPATCH_FLOATING(x.dtype(), "cross_entropy", [&] {
    dispatch_index(targets.dtype(), [&](auto tag) {
      using I = decltype(tag);
      kernels::cuda::cross_entropy_forward<scalar_t, I>(
          args, static_cast<const scalar_t*>(x.data_ptr()), static_cast<const I*>(targets.data_ptr()),
          static_cast<acc_t<scalar_t>*>(lse.data_ptr()), static_cast<acc_t<scalar_t>*>(out.data_ptr()),
          count.data<int64_t>(), cuda::index_error_record(dev.index), cuda::stream(dev),
          grad_in_forward ? static_cast<scalar_t*>(forward_grad.data_ptr()) : nullptr, formed_for);
    });
  });
  if (!grad) return out;
  const Shape logits_shape = logits_in.shape();
  const SavedTensor t_saved(targets);
  if (grad_in_forward) {
    record("CrossEntropyBackward", out, {logits_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor tv = t_saved.unpack("CrossEntropyBackward");
      const Tensor g = g_in.to(stats).contiguous();
      // Scaled in place and handed on when this node cannot run again; a retained graph keeps the
      // forward's gradient as it is for the next backward.
      const Tensor gx =
          backward_may_run_again() ? empty_grad(forward_grad.dtype(), forward_grad.device()) : forward_grad;
      HONE_DISPATCH_FLOATING(gx.dtype(), "CrossEntropyBackward", [&] {
        dispatch_index(tv.dtype(), [&](auto tag) {
          using I = decltype(tag);
          kernels::cuda::cross_entropy_scale_grad<scalar_t, I>(
              args, static_cast<const I*>(tv.data_ptr()), static_cast<const acc_t<scalar_t>*>(g.data_ptr()),
              acc_t<scalar_t>(formed_for), static_cast<const scalar_t*>(forward_grad.data_ptr()),
              static_cast<scalar_t*>(gx.data_ptr()), cuda::stream(gx.device()));
        });
      });
      return {gx.view(logits_shape)};
    });
    return out;
  }
  SavedTensor x_saved(x), lse_saved(lse), count_saved(count);
  record("CrossEntropyBackward", out, {logits_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
    const char* node = "CrossEntropyBackward";
    const Tensor xv = x_saved.unpack(node), tv = t_saved.unpack(node), lv = lse_saved.unpack(node);
    const Tensor cv = count_saved.unpack(node);
    const Tensor g = g_in.to(lv.dtype()).contiguous();
    const Tensor gx = empty_grad(xv.dtype(), xv.device());
    HONE_DISPATCH_FLOATING(xv.dtype(), node, [&] {
      dispatch_index(tv.dtype(), [&](auto tag) {
        using I = decltype(tag);
        kernels::cuda::cross_entropy_backward<scalar_t, I>(
            args, static_cast<const scalar_t*>(xv.data_ptr()), static_cast<const I*>(tv.data_ptr()),
            static_cast<const acc_t<scalar_t>*>(lv.data_ptr()), static_cast<const acc_t<scalar_t>*>(g.data_ptr()),
            cv.data<int64_t>(), static_cast<scalar_t*>(gx.data_ptr()), cuda::stream(xv.device()));
      });
    });
    return {gx.view(logits_shape)};
  });
  return out;
}
#endif

// The loss of the kernels (in the accumulation dtype: float32 for 16-bit logits), then in the
// logits' dtype (as PyTorch returns it) unless autocast is on: autocast's cross-entropy is a
// float32 op, and the kernels already compute in float32 from the 16-bit logits, so they read
// them as they are instead of from a float32 copy (for GPT-2's 50257-way head at B=16, T=1024
// that copy and its gradient would be 6.6 GB of traffic and memory).
Tensor cross_entropy_accumulated(const Tensor& logits_in, const Tensor& targets_in, int64_t ignore_index,
                                 double label_smoothing) {
  check_cross_entropy_args(logits_in, targets_in, label_smoothing);
  kernels::CrossEntropyArgs args;
  args.classes = logits_in.shape().back();
  args.rows = targets_in.numel();
  args.ignore_index = ignore_index;
  args.label_smoothing = label_smoothing;
  const Tensor targets = targets_in.detach().contiguous();
  if (detail::on_cuda(logits_in)) {
    HONE_CUDA_ONLY("cross_entropy", return cross_entropy_cuda(logits_in, targets, args));
  }
  check_targets_in_range(args, targets);

  const Tensor x = logits_in.detach().contiguous();
  const DType stats = x.dtype() == DType::F64 ? DType::F64 : DType::F32;  // acc_t of the logits
  const Tensor lse = Tensor::empty({args.rows}, stats, x.device());
  kernels::CrossEntropyTotals tot;
  HONE_DISPATCH_FLOATING(x.dtype(), "cross_entropy", [&] {
    dispatch_index(targets.dtype(), [&](auto tag) {
      using I = decltype(tag);
      tot = kernels::cross_entropy_forward<scalar_t, I>(
          args, static_cast<const scalar_t*>(x.data_ptr()), static_cast<const I*>(targets.data_ptr()),
          static_cast<acc_t<scalar_t>*>(lse.data_ptr()));
    });
  });
  const int64_t count = tot.count;
  Tensor out = Tensor::scalar(count ? tot.loss_sum / double(count) : 0.0, stats, x.device());

  if (needs_grad({&logits_in})) {
    SavedTensor x_saved(x), t_saved(targets), lse_saved(lse);
    record("CrossEntropyBackward", out, {logits_in}, [=](const Tensor& g) -> std::vector<Tensor> {
      const char* node = "CrossEntropyBackward";
      const Tensor xv = x_saved.unpack(node), tv = t_saved.unpack(node), lv = lse_saved.unpack(node);
      Tensor gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
      const double scale = count ? g.item() / double(count) : 0.0;
      HONE_DISPATCH_FLOATING(xv.dtype(), node, [&] {
        dispatch_index(tv.dtype(), [&](auto tag) {
          using I = decltype(tag);
          kernels::cross_entropy_backward<scalar_t, I>(
              args, static_cast<const scalar_t*>(xv.data_ptr()), static_cast<const I*>(tv.data_ptr()),
              static_cast<const acc_t<scalar_t>*>(lv.data_ptr()), scale,
              static_cast<scalar_t*>(gx.data_ptr()));
        });
      });
      return {gx};
    });
  }
  return out;
}

}  // namespace

LossGradScaleGuard::LossGradScaleGuard(double expected_upstream_grad) : previous_(t_expected_loss_grad) {
  t_expected_loss_grad = expected_upstream_grad;
}
LossGradScaleGuard::~LossGradScaleGuard() { t_expected_loss_grad = previous_; }
double expected_loss_grad() { return t_expected_loss_grad; }

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets_in, int64_t ignore_index,
                     double label_smoothing) {
  const Tensor loss = cross_entropy_accumulated(logits_in, targets_in, ignore_index, label_smoothing);
  return autocast_enabled() ? loss : loss.to(logits_in.dtype());
}

}  // namespace hone::ops
