// The CUDA runtime state of the engine: one stream per device (every kernel of that device runs
// on it, so kernels are ordered without host synchronisation), lazily created cuBLASLt handles
// with their workspace, and the device-side record of out-of-range indices (see
// kernels/cuda_api.h, IndexError), which is read and reported wherever the host synchronises.
//
// Only CUDA builds (HONE_WITH_CUDA) may include this header.
#pragma once
#include <cuda_runtime_api.h>

#include "engine/core/device.h"
#include "kernels/cuda_api.h"

namespace hone::cuda {

// Makes `device` current and returns its stream (created on first use). The stream is a blocking
// one: it stays ordered with work issued on the legacy default stream (cudaMemcpy, cudaFree).
cudaStream_t stream(const Device& device);
cudaStream_t stream(int device);

// The cuBLASLt handle and a 32 MiB workspace of `device`, created on first use.
kernels::cuda::BlasContext blas(int device);

// The device's IndexError record (device memory, zeroed at creation).
kernels::cuda::IndexError* index_error_record(int device);

// Waits for the device's stream, then throws std::invalid_argument if a kernel recorded an
// out-of-range index since the last check (and clears the record).
void synchronize(int device);
// Reads the record (the stream must already be synchronised) and throws as above.
void raise_deferred_errors(int device);

// Throws std::runtime_error("CUDA <what> failed: ...") unless err == cudaSuccess.
inline void check(cudaError_t err, const char* what) { kernels::cuda::check(err, what); }

}  // namespace hone::cuda
