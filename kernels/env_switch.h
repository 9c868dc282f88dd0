// The environment switches that turn a fast path off (HONE_CUDNN=0, HONE_GEMM_EPILOGUE=0, ...): a path is
// on unless its variable is exactly "0"; and the opt-ins, on only when exactly "1". Header-only, for the
// CPU and the CUDA libraries alike.
#pragma once
#include <cstdlib>
#include <cstring>

namespace hone::kernels {

// True when the environment variable `name` is set to "0".
inline bool switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

// True when the environment variable `name` is set to "1": the opt-in switches (HONE_GEMM_AUTOTUNE=1).
inline bool switched_on(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "1") == 0;
}

// HONE_DETERMINISTIC=0 (opt-in, as PyTorch's default): cuDNN may take its non-deterministic algorithms
// (attention backward: dQ added up with atomics; convolutions: whatever measures fastest), whose last
// bits differ from run to run. Otherwise every hone kernel, cuDNN's included, gives the same bits.
inline bool deterministic_algorithms() { return !switched_off("HONE_DETERMINISTIC"); }

}  // namespace hone::kernels
