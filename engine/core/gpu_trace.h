// Records what the GPUs run (every kernel, copy and memset, with GPU timestamps) between start()
// and stop(), through CUPTI's activity API (the tracer under nsys and the PyTorch profiler).
// engine/core/kernel_profile.h summarises the records.
//
// Available in CUDA builds linked with CUPTI (part of the CUDA toolkit) on a machine with a GPU;
// elsewhere unavailable_reason() says why and start() throws it.
#pragma once
#include <string>
#include <vector>

#include "engine/core/kernel_profile.h"

namespace hone {

class GpuTrace {
 public:
  // Empty when tracing can run here; else why not ("this build has no CUPTI", ...).
  static std::string unavailable_reason();

  GpuTrace() = default;
  GpuTrace(const GpuTrace&) = delete;
  GpuTrace& operator=(const GpuTrace&) = delete;
  ~GpuTrace();  // stops a trace still running

  // Begins recording (one trace at a time per process).
  void start();
  // Waits for every device, stops recording and returns what ran since start(). Throws if CUPTI
  // dropped records (its buffers were full).
  std::vector<GpuActivity> stop();

 private:
  bool running_ = false;
};

}  // namespace hone
