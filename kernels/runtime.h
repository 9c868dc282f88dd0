// What the kernels can run on: CPU features and CUDA devices, asked once at run time.
#pragma once

namespace hone::kernels {

// True when the running CPU executes AVX-512F/BW/VL/DQ (checked with cpuid, not with how the
// binary was compiled).
bool cpu_has_avx512();
// True when the running CPU executes AVX2 + FMA.
bool cpu_has_avx2();
// True when this binary was built with CUDA and at least one CUDA device is visible.
bool cuda_device_present();

}  // namespace hone::kernels
