#include "engine/optim/clip.h"

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

#if defined(HONE_WITH_CUDA)
#include "engine/core/cuda_runtime.h"
#endif

namespace hone {

namespace {

#if defined(HONE_WITH_CUDA)
// The gradients of `params` for a multi-tensor kernel: filled (true) only when every gradient is
// a float32 tensor on one CUDA device. `in_place` (the kernel writes through them) also requires
// each to be contiguous; otherwise non-contiguous ones are read through contiguous copies.
bool collect_device_grads(const std::vector<Tensor>& params, bool in_place, std::vector<Tensor>& grads,
                          std::vector<int64_t>& sizes) {
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!g.device().is_cuda() || g.dtype() != DType::F32 || (in_place && !g.is_contiguous())) return false;
    if (!grads.empty() && g.device() != grads.front().device()) return false;
    grads.push_back(in_place ? g : g.contiguous());
    sizes.push_back(g.numel());
  }
  return !grads.empty();
}

// Device gradients: one multi-tensor launch and one read of the result (the step's only host
// synchronisation besides the logged loss), instead of a reduction and a read per tensor.
bool device_grad_norm(const std::vector<Tensor>& params, double& norm) {
  std::vector<Tensor> grads;
  std::vector<int64_t> sizes;
  if (!collect_device_grads(params, false, grads, sizes)) return false;
  std::vector<const float*> ptrs;
  for (const Tensor& g : grads) ptrs.push_back(g.data<float>());
  const Tensor out = Tensor::empty({}, DType::F32, grads.front().device());
  kernels::cuda::global_grad_norm(ptrs.data(), sizes.data(), int(ptrs.size()), out.data<float>(),
                                  cuda::stream(out.device()));
  norm = out.item();
  return true;
}

// Scales every device gradient by min(1, max_norm / (norm + 1e-6)) in one multi-tensor launch
// (false, nothing done, when collect_device_grads refuses them).
bool device_clip(const std::vector<Tensor>& params, double norm, double max_norm) {
  std::vector<Tensor> grads;
  std::vector<int64_t> sizes;
  if (!collect_device_grads(params, true, grads, sizes)) return false;
  std::vector<float*> ptrs;
  for (const Tensor& g : grads) ptrs.push_back(g.data<float>());
  const Device dev = grads.front().device();
  const Tensor norm_dev = Tensor::scalar(norm, DType::F32, dev);
  kernels::cuda::clip_by_norm(ptrs.data(), sizes.data(), int(ptrs.size()), norm_dev.data<float>(), float(max_norm),
                              cuda::stream(dev));
  for (const Tensor& g : grads) g.bump_version();
  return true;
}
#endif

}  // namespace

double global_grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
#if defined(HONE_WITH_CUDA)
  if (double norm = 0; device_grad_norm(params, norm)) return norm;
#endif
  double sq = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    // Per-tensor sums accumulate in double inside the reduction kernel, in a fixed order.
    const Tensor g64 = g.to(DType::F64);
    sq += ops::sum(ops::mul(g64, g64)).item();
  }
  return std::sqrt(sq);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  clip_grads_to_norm(params, norm, max_norm);
  return norm;
}

void clip_grads_to_norm(const std::vector<Tensor>& params, double norm, double max_norm) {
  if (max_norm > 0 && norm > max_norm) {
    NoGradGuard no_grad;
#if defined(HONE_WITH_CUDA)
    if (device_clip(params, norm, max_norm)) return;
#endif
    const double scale = max_norm / (norm + 1e-6);
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined()) ops::mul_(g, scale);
    }
  }
}

}  // namespace hone
