// The cuDNN handle per device and the workspaces shared by conv_cudnn.cpp and attention_cudnn.cpp
// (see cudnn_common.h).
#if defined(HONE_HAVE_CUDNN)
#include "kernels/cuda/cudnn_common.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/env_switch.h"

namespace hone::kernels::cuda::cudnn {

void check(cudnnStatus_t st, const char* what) {
  if (st == CUDNN_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string("cuDNN ") + what + " failed: " + cudnnGetErrorString(st));
}

bool disabled_by_env() { return switched_off("HONE_CUDNN"); }

cudnnHandle_t handle(int device) {
  struct Slot {
    bool tried = false;
    cudnnHandle_t h = nullptr;
  };
  static std::mutex mu;
  static auto* slots = new std::vector<Slot>();  // never destroyed
  std::lock_guard<std::mutex> lock(mu);
  if (device < 0) throw std::invalid_argument("cuDNN: negative device index " + std::to_string(device));
  if (static_cast<size_t>(device) >= slots->size()) slots->resize(device + 1);
  Slot& s = (*slots)[device];
  if (!s.tried) {
    s.tried = true;
    if (disabled_by_env()) return nullptr;
    int current = -1;
    cuda::check(cudaGetDevice(&current), "cudaGetDevice");
    if (current != device) cuda::check(cudaSetDevice(device), "cudaSetDevice");
    const cudnnStatus_t st = cudnnCreate(&s.h);
    if (st != CUDNN_STATUS_SUCCESS) {
      s.h = nullptr;
      std::fprintf(stderr,
                   "hone: cuDNN unavailable on cuda:%d (cudnnCreate: %s); convolutions and attention use hone's own "
                   "CUDA kernels\n",
                   device, cudnnGetErrorString(st));
    }
  }
  return s.h;
}

Workspace::Workspace(const ConvContext& ctx, size_t bytes, cudaStream_t stream) : ctx_(ctx), stream_(stream) {
  if (!bytes) return;
  if (ctx.alloc) {
    p_ = ctx.alloc(bytes, ctx.device);
  } else {
    p_ = cuda::scratch_alloc(bytes, stream, "cudaMallocAsync (cuDNN workspace)");
  }
}

Workspace::~Workspace() {
  if (!p_) return;
  if (ctx_.alloc && ctx_.release)
    ctx_.release(p_, ctx_.device);
  else if (!ctx_.alloc)
    cudaFreeAsync(p_, stream_);
}

}  // namespace hone::kernels::cuda::cudnn

#endif  // HONE_HAVE_CUDNN
