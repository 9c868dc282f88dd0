// batch_norm over dim 1 of [N, C, ...] through kernels/batchnorm.h (x viewed as [N, C, S]), or
// on CUDA through kernels/cuda_api.h, where the statistics, the running-stat update (computed in
// float64 on the device, then copied back in place) and invstd never leave the device.
// Training: batch statistics (biased variance) normalise, and the running statistics, when
// given, are updated in place under no-grad with the unbiased variance (PyTorch's rule); the
// backward is the full batch-norm backward. Eval: the running statistics normalise, and the
// backward is the per-channel affine map (the running statistics are never written).
#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/batchnorm.h"

namespace hone::ops {

namespace {

DType stats_dtype(DType x) { return x == DType::F64 ? DType::F64 : DType::F32; }

template <class T> const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}
template <class T> T* mut_ptr_or_null(const Tensor& t) { return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr; }

void check_batch_norm(const Tensor& x, const Tensor& rm, const Tensor& rv, const Tensor& w, const Tensor& b,
                      bool training) {
  const char* op = "batch_norm";
  detail::require_floating(x, op);
  if (x.dim() < 2) throw std::invalid_argument("batch_norm: x must be [N, C, ...], got " + x.str());
  const int64_t C = x.size(1);
  auto check_vec = [&](const Tensor& t, const char* what, bool same_dtype) {
    if (!t.defined()) return;
    detail::require_same_device(x, t, op);
    if (same_dtype)
      detail::require_same_dtype(x, t, op);
    else
      detail::require_floating(t, op);
    if (t.dim() != 1 || t.size(0) != C)
      throw std::invalid_argument(std::string("batch_norm: ") + what + " must be [" + std::to_string(C) +
                                  "] for x " + x.str() + ", got " + t.str());
  };
  check_vec(w, "weight", true);
  check_vec(b, "bias", true);
  check_vec(rm, "running_mean", false);
  check_vec(rv, "running_var", false);
  if (!training && (!rm.defined() || !rv.defined()))
    throw std::invalid_argument("batch_norm: evaluation mode needs running_mean and running_var (x " + x.str() + ")");
  if (training && x.numel() / C <= 1)
    throw std::invalid_argument("batch_norm: expected more than 1 value per channel when training, got x " + x.str());
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, Tensor running_mean, Tensor running_var, const Tensor& weight_in,
                  const Tensor& bias_in, bool training, double momentum, double eps) {
  // Under autocast a 16-bit input stays 16-bit (statistics are float32 inside the kernels) and
  // the float32 weight and bias join its dtype (engine/autograd/autocast_mode.h).
  if (autocast_enabled() && detail::is_16bit(x_in.dtype()) &&
      ((weight_in.defined() && weight_in.dtype() != x_in.dtype()) || (bias_in.defined() && bias_in.dtype() != x_in.dtype())))
    return batch_norm(x_in, running_mean, running_var, weight_in.defined() ? weight_in.to(x_in.dtype()) : weight_in,
                      bias_in.defined() ? bias_in.to(x_in.dtype()) : bias_in, training, momentum, eps);
  check_batch_norm(x_in, running_mean, running_var, weight_in, bias_in, training);
  const int64_t N = x_in.size(0), C = x_in.size(1), S = C == 0 ? 0 : x_in.numel() / std::max<int64_t>(N * C, 1);
  const Tensor x = x_in.detach().contiguous();
  const Tensor w = weight_in.defined() ? weight_in.detach().contiguous() : Tensor();
  const Tensor b = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
  const DType sdt = stats_dtype(x.dtype());
  Tensor mean = Tensor::empty({C}, sdt, x.device());
  Tensor invstd = Tensor::empty({C}, sdt, x.device());
  if (detail::on_cuda(x)) {
#if defined(HONE_WITH_CUDA)
    const cudaStream_t stream = cuda::stream(x.device());
    // The running statistics as float64 copies on the device (exact for every floating dtype).
    auto as_f64 = [](const Tensor& t) { return t.defined() ? t.detach().to(DType::F64).contiguous() : Tensor(); };
    const Tensor rm64 = as_f64(running_mean), rv64 = as_f64(running_var);
    auto f64_ptr = [](const Tensor& t) { return t.defined() ? static_cast<const double*>(t.data_ptr()) : nullptr; };
    if (training) {
      const Tensor var = Tensor::empty({C}, sdt, x.device());
      const Tensor rm_new = rm64.defined() ? Tensor::empty({C}, DType::F64, x.device()) : Tensor();
      const Tensor rv_new = rv64.defined() ? Tensor::empty({C}, DType::F64, x.device()) : Tensor();
      HONE_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
        using S_t = acc_t<scalar_t>;
        kernels::cuda::batchnorm_stats<scalar_t>(N, C, S, static_cast<const scalar_t*>(x.data_ptr()),
                                                 static_cast<S_t*>(mean.data_ptr()), static_cast<S_t*>(var.data_ptr()),
                                                 stream);
        kernels::cuda::batchnorm_train_epilogue<S_t>(
            C, static_cast<const S_t*>(mean.data_ptr()), static_cast<const S_t*>(var.data_ptr()), eps, momentum,
            double(N * S), f64_ptr(rm64), mut_ptr_or_null<double>(rm_new), f64_ptr(rv64),
            mut_ptr_or_null<double>(rv_new), static_cast<S_t*>(invstd.data_ptr()), stream);
      });
      // running = (1 - momentum) running + momentum batch, var unbiased; not recorded by autograd.
      NoGradGuard no_grad;
      if (running_mean.defined()) running_mean.copy_(rm_new);
      if (running_var.defined()) running_var.copy_(rv_new);
    } else {
      HONE_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
        using S_t = acc_t<scalar_t>;
        kernels::cuda::batchnorm_eval_stats<S_t>(C, f64_ptr(rm64), f64_ptr(rv64), eps,
                                                 static_cast<S_t*>(mean.data_ptr()),
                                                 static_cast<S_t*>(invstd.data_ptr()), stream);
      });
    }
#else
    detail::no_cuda_build("batch_norm");
#endif
  } else if (training) {
    Tensor var = Tensor::empty({C}, sdt, x.device());
    HONE_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
      using S_t = acc_t<scalar_t>;
      kernels::batchnorm_stats<scalar_t>(N, C, S, static_cast<const scalar_t*>(x.data_ptr()),
                                         static_cast<S_t*>(mean.data_ptr()), static_cast<S_t*>(var.data_ptr()));
    });
    const std::vector<double> mv = mean.to_vector<double>(), vv = var.to_vector<double>();
    std::vector<double> is(C);
    for (int64_t c = 0; c < C; ++c) is[c] = 1.0 / std::sqrt(vv[c] + eps);
    invstd = Tensor::from_vector(is, {C}).to(sdt);
    // running = (1 - momentum) running + momentum batch, var unbiased; not recorded by autograd.
    NoGradGuard no_grad;
    const double M = double(N * S), unbias = M / (M - 1.0);
    if (running_mean.defined()) {
      std::vector<double> r = running_mean.to_vector<double>();
      for (int64_t c = 0; c < C; ++c) r[c] = (1.0 - momentum) * r[c] + momentum * mv[c];
      running_mean.copy_(Tensor::from_vector(r, {C}));
    }
    if (running_var.defined()) {
      std::vector<double> r = running_var.to_vector<double>();
      for (int64_t c = 0; c < C; ++c) r[c] = (1.0 - momentum) * r[c] + momentum * vv[c] * unbias;
      running_var.copy_(Tensor::from_vector(r, {C}));
    }
  } else {
    const std::vector<double> rm = running_mean.to_vector<double>(), rv = running_var.to_vector<double>();
    std::vector<double> is(C);
    for (int64_t c = 0; c < C; ++c) is[c] = 1.0 / std::sqrt(rv[c] + eps);
    mean = Tensor::from_vector(rm, {C}).to(sdt);
    invstd = Tensor::from_vector(is, {C}).to(sdt);
  }
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  HONE_DISPATCH_FLOATING(x.dtype(), "batch_norm", [&] {
    using S_t = acc_t<scalar_t>;
    if (detail::on_cuda(x)) {
      HONE_CUDA_ONLY("batch_norm",
                     kernels::cuda::batchnorm_forward<scalar_t>(
                         N, C, S, static_cast<const scalar_t*>(x.data_ptr()), static_cast<const S_t*>(mean.data_ptr()),
                         static_cast<const S_t*>(invstd.data_ptr()), ptr_or_null<scalar_t>(w), ptr_or_null<scalar_t>(b),
                         static_cast<scalar_t*>(out.data_ptr()), cuda::stream(x.device())));
    } else {
      kernels::batchnorm_forward<scalar_t>(N, C, S, static_cast<const scalar_t*>(x.data_ptr()),
                                           static_cast<const S_t*>(mean.data_ptr()),
                                           static_cast<const S_t*>(invstd.data_ptr()), ptr_or_null<scalar_t>(w),
                                           ptr_or_null<scalar_t>(b), static_cast<scalar_t*>(out.data_ptr()));
    }
  });
  if (needs_grad({&x_in, &weight_in, &bias_in})) {
    SavedTensor x_saved(x), w_saved(w), mean_saved(mean), invstd_saved(invstd);
    const bool want_x = x_in.requires_grad();
    const bool want_w = weight_in.defined() && weight_in.requires_grad();
    const bool want_b = bias_in.defined() && bias_in.requires_grad();
    record("BatchNormBackward", out, {x_in, weight_in, bias_in}, [=](const Tensor& g_in) -> std::vector<Tensor> {
      const char* node = "BatchNormBackward";
      const Tensor xv = x_saved.unpack(node), wv = w_saved.unpack(node);
      const Tensor mv = mean_saved.unpack(node), iv = invstd_saved.unpack(node);
      const Tensor g = g_in.contiguous();
      Tensor gx, gw, gb;
      if (want_x) gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
      if (want_w) gw = Tensor::empty({C}, xv.dtype(), xv.device());
      if (want_b) gb = Tensor::empty({C}, xv.dtype(), xv.device());
      HONE_DISPATCH_FLOATING(xv.dtype(), node, [&] {
        using S_t = acc_t<scalar_t>;
        if (detail::on_cuda(xv)) {
          HONE_CUDA_ONLY(node, kernels::cuda::batchnorm_backward<scalar_t>(
                                   N, C, S, static_cast<const scalar_t*>(xv.data_ptr()),
                                   static_cast<const scalar_t*>(g.data_ptr()), static_cast<const S_t*>(mv.data_ptr()),
                                   static_cast<const S_t*>(iv.data_ptr()), ptr_or_null<scalar_t>(wv), training,
                                   mut_ptr_or_null<scalar_t>(gx), mut_ptr_or_null<scalar_t>(gw),
                                   mut_ptr_or_null<scalar_t>(gb), cuda::stream(xv.device())));
        } else {
          kernels::batchnorm_backward<scalar_t>(
              N, C, S, static_cast<const scalar_t*>(xv.data_ptr()), static_cast<const scalar_t*>(g.data_ptr()),
              static_cast<const S_t*>(mv.data_ptr()), static_cast<const S_t*>(iv.data_ptr()),
              ptr_or_null<scalar_t>(wv), training, mut_ptr_or_null<scalar_t>(gx), mut_ptr_or_null<scalar_t>(gw),
              mut_ptr_or_null<scalar_t>(gb));
        }
      });
      return {gx, gw, gb};
    });
  }
  return out;
}

}  // namespace hone::ops
