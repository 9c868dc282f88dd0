// The CUDA emulator's counters (tests/cuda_emu/runtime.cpp keeps them): the host's waits for the
// device, for tests that check where a program makes the host wait as a GPU would, and the kernel
// launches by kernel, for tests that hold a training step to a launch budget.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace hone::emu {

// The runtime calls that make a host wait for the device on a GPU, counted since the process
// started: explicit synchronisations (stream, device, event), copies to host memory (they return
// when the data is there) and cudaFree (it waits for the device to be idle); with the copies from
// pageable host memory (which may wait for the stream), cudaMalloc (which costs far more than a
// kernel launch) and the stream-ordered cudaMallocAsync (cheap: served from the device's pool). A
// test can so check that a training step waits only where it reads a logged value.
struct HostWaits {
  uint64_t synchronize = 0, device_to_host = 0, free = 0;  // each of these waits
  uint64_t host_to_device = 0, malloc = 0;                 // these may wait, or cost
  uint64_t malloc_async = 0;
};
HostWaits host_waits();

// Kernel launches since the process started, by the kernel expression at the launch site (e.g.
// "layernorm_forward_kernel<T, A>"); launches the emulator refused are not counted.
std::map<std::string, uint64_t> launches();

}  // namespace hone::emu
