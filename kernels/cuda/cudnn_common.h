// What the cuDNN users of kernels/cuda (conv_cudnn.cpp, attention_cudnn.cpp) share: one cuDNN
// handle per device and stream-ordered workspaces. Only builds with cuDNN (HONE_HAVE_CUDNN) include
// this header.
//
//  - One handle per device, created on first use and never destroyed (like the cuBLASLt handles of
//    engine/core/cuda_runtime.cpp); every call binds it to the caller's stream (cudnnSetStream).
//  - HONE_CUDNN=0 in the environment, or a cudnnCreate failure (cuDNN's sub-libraries missing at
//    run time, said once on stderr), gives no handle: every caller then runs its own kernels.
//  - Workspaces come from ConvContext::alloc (the engine's caching allocator) and are released right
//    after the work is enqueued (every kernel of a device runs on one stream, so stream order keeps
//    that safe), or from cudaMallocAsync when no allocator is given.
#pragma once
#if defined(HONE_HAVE_CUDNN)
#include <cudnn.h>

#include <cstddef>

#include "kernels/cuda_api.h"

namespace hone::kernels::cuda::cudnn {

// Throws std::runtime_error("cuDNN <what> failed: <message>") unless st is CUDNN_STATUS_SUCCESS.
void check(cudnnStatus_t st, const char* what);
// True when HONE_CUDNN=0 is set.
bool disabled_by_env();
// The device's handle, or null when cuDNN cannot be used there (see above).
cudnnHandle_t handle(int device);

// Device memory for one call, released (stream-ordered) when the object goes.
class Workspace {
 public:
  Workspace(const ConvContext& ctx, size_t bytes, cudaStream_t stream);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return p_; }
  template <class T> T* as() const { return static_cast<T*>(p_); }

 private:
  ConvContext ctx_;
  cudaStream_t stream_;
  void* p_ = nullptr;
};

}  // namespace hone::kernels::cuda::cudnn

#endif  // HONE_HAVE_CUDNN
