// GoogleTest wrapper over the CUDA kernel checks (cuda_kernel_checks.h): each check is one test,
// skipped when no CUDA device is visible.
#if defined(HONE_WITH_CUDA)
#include <gtest/gtest.h>

#include "kernels/runtime.h"
#include "kernels/cuda_kernel_checks.h"

namespace hone::cudacheck {
namespace {

void run_check(const std::string& name) {
  if (!kernels::cuda_device_present()) GTEST_SKIP() << "no CUDA device";
  for (const auto& [n, check] : all_checks())
    if (n == name) {
      const std::string err = check();
      EXPECT_TRUE(err.empty()) << err;
      return;
    }
  FAIL() << "no check " << name;
}

TEST(CudaKernels, GemmMatchesReferenceOnOddShapesAndTransposes) { run_check("gemm"); }
TEST(CudaKernels, DropoutMaskEqualsTheCpuMask) { run_check("dropout"); }
TEST(CudaKernels, AdamWMultiTensorAndGradNormMatchTheCpu) { run_check("adamw_and_norm"); }
TEST(CudaKernels, ElementwiseMatchesTheCpu) { run_check("elementwise"); }
TEST(CudaKernels, SoftmaxAndLayerNormMatchTheCpu) { run_check("rows"); }
TEST(CudaKernels, LayerNormBackwardSixteenByteKernelMatchesTheFusedKernel) { run_check("layernorm_backward_vec"); }
TEST(CudaKernels, AttentionAndEmbeddingBackward) { run_check("attention_and_embedding"); }
TEST(CudaKernels, FusedBiasGeluAndAddLayerNormMatchTheCpu) { run_check("fused"); }
TEST(CudaKernels, GemmEpiloguesMatchPlainGemmPlusHostEpilogue) { run_check("gemm_epilogue"); }
TEST(CudaKernels, GemmFloat32OutputForAutocastWeightGradients) { run_check("gemm_f32_out"); }
TEST(CudaKernels, BiasGradientColumnSumsMatchSumsInDouble) { run_check("column_sums"); }
TEST(CudaKernels, GemmWithOddLargeExtentsRunsAsAlignedParts) { run_check("gemm_split"); }
TEST(CudaKernels, GemmAutotuneTimesEachConfigurationOnceAndNeverAnAccumulation) { run_check("gemm_autotune"); }
TEST(CudaKernels, UploadsThroughThePageLockedRingArriveInOrder) { run_check("upload"); }

}  // namespace
}  // namespace hone::cudacheck
#endif  // HONE_WITH_CUDA
