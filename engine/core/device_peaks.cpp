#include "engine/core/device_peaks.h"

namespace hone {

namespace {

struct CardPeaks {
  const char* name_contains;  // first match wins: more specific names come first
  const char* card;
  double bf16, tf32, fp32;  // dense TFLOP/s
};

// NVIDIA datasheets (dense tensor-core bf16 and tf32, non-tensor fp32).
const CardPeaks kCards[] = {
    {"H100 PCIe", "H100 PCIe", 756.0, 378.0, 51.2},
    {"H100 NVL", "H100 NVL", 835.0, 417.5, 60.0},
    {"GH200", "GH200", 989.4, 494.7, 66.9},
    {"H200 NVL", "H200 NVL", 835.0, 417.5, 60.0},
    {"H200", "H200 SXM", 989.4, 494.7, 66.9},
    {"H100", "H100 SXM", 989.4, 494.7, 66.9},  // "H100 80GB HBM3" is the SXM part
    {"H800", "H800 SXM", 989.4, 494.7, 66.9},
    {"B200", "B200", 2250.0, 1100.0, 80.0},
    {"A100", "A100", 312.0, 156.0, 19.5},
    {"A800", "A800", 312.0, 156.0, 19.5},
    {"L40S", "L40S", 362.05, 183.0, 91.6},
    {"L4", "L4", 121.0, 60.0, 30.3},
    {"A10G", "A10G", 70.0, 35.0, 31.2},
    {"A10", "A10", 125.0, 62.5, 31.2},
    {"RTX 4090", "RTX 4090", 165.2, 82.6, 82.6},
    {"RTX 3090", "RTX 3090", 71.0, 35.6, 35.6},
    {"V100", "V100", 0.0, 0.0, 15.7},  // no bf16 or tf32 tensor cores
};

}  // namespace

std::optional<PeakFlops> gpu_peak_flops(const std::string& device_name, MatmulPrecision precision) {
  for (const CardPeaks& c : kCards) {
    if (device_name.find(c.name_contains) == std::string::npos) continue;
    const double t = precision == MatmulPrecision::BF16 ? c.bf16 : precision == MatmulPrecision::TF32 ? c.tf32 : c.fp32;
    if (t <= 0) return std::nullopt;
    return PeakFlops{c.card, t};
  }
  return std::nullopt;
}

}  // namespace hone
