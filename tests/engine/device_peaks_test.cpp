// The GPU peak table behind `hone bench --device cuda`'s MFU: the names drivers report map to
// the right card, more specific names win, and unknown cards get no number.
#include <gtest/gtest.h>

#include "engine/core/device_peaks.h"

namespace hone {
namespace {

TEST(DevicePeaks, DriverNamesMapToTheirCards) {
  struct Case { const char* reported; const char* card; double bf16; };
  for (const Case& c : {Case{"NVIDIA H100 80GB HBM3", "H100 SXM", 989.4}, Case{"NVIDIA H100 PCIe", "H100 PCIe", 756.0},
                        Case{"NVIDIA H100 NVL", "H100 NVL", 835.0}, Case{"NVIDIA H200", "H200 SXM", 989.4},
                        Case{"NVIDIA GH200 480GB", "GH200", 989.4}, Case{"NVIDIA A100-SXM4-80GB", "A100", 312.0},
                        Case{"NVIDIA A10G", "A10G", 70.0}, Case{"NVIDIA A10", "A10", 125.0},
                        Case{"NVIDIA L40S", "L40S", 362.05}, Case{"NVIDIA GeForce RTX 4090", "RTX 4090", 165.2}}) {
    const auto p = gpu_peak_flops(c.reported, MatmulPrecision::BF16);
    ASSERT_TRUE(p.has_value()) << c.reported;
    EXPECT_EQ(p->card, c.card) << c.reported;
    EXPECT_DOUBLE_EQ(p->tflops, c.bf16) << c.reported;
  }
  EXPECT_DOUBLE_EQ(gpu_peak_flops("NVIDIA H100 80GB HBM3", MatmulPrecision::TF32)->tflops, 494.7);
  EXPECT_DOUBLE_EQ(gpu_peak_flops("NVIDIA A100-PCIE-40GB", MatmulPrecision::FP32)->tflops, 19.5);
}

TEST(DevicePeaks, UnknownCardsAndMissingPrecisionsGiveNoNumber) {
  EXPECT_FALSE(gpu_peak_flops("Some Future GPU", MatmulPrecision::BF16).has_value());
  EXPECT_FALSE(gpu_peak_flops("", MatmulPrecision::FP32).has_value());
  EXPECT_FALSE(gpu_peak_flops("Tesla V100-SXM2-16GB", MatmulPrecision::BF16).has_value()) << "V100 has no bf16 tensor cores";
  EXPECT_TRUE(gpu_peak_flops("Tesla V100-SXM2-16GB", MatmulPrecision::FP32).has_value());
}

}  // namespace
}  // namespace hone
