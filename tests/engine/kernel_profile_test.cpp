// The GPU profile's summary (engine/core/kernel_profile.h), on made-up traces: the tracer itself
// (CUPTI) needs a GPU and runs in tools/device-check.sh (`hone bench gpt2 --profile`).
#include "engine/core/kernel_profile.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "engine/core/gpu_trace.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

// Mangled as nvcc (the host compiler's ABI) names our kernels.
const char* kAdamW = "_ZN4hone7kernels4cuda12_GLOBAL__N_112adamw_kernelEPKNS1_11AdamWTensorEPKNS2_8ChunkRefEff";
const char* kCast = "_ZN4hone7kernels4cuda12_GLOBAL__N_116copy_flat_kernelIf13__nv_bfloat16EEvlPKT_PT0_";

TEST(KernelProfile, ShortNamesDropNamespacesReturnTypesAndArguments) {
  EXPECT_EQ(short_kernel_name(kAdamW), "adamw_kernel");
  EXPECT_EQ(short_kernel_name(kCast), "copy_flat_kernel<float, __nv_bfloat16>");
  // cuBLAS's kernels are C names: kept, cut when very long.
  EXPECT_EQ(short_kernel_name("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"),
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64");
  const std::string long_name(200, 'x');
  EXPECT_EQ(short_kernel_name(long_name).size(), 90u);
  EXPECT_EQ(short_kernel_name("memcpy host->device"), "memcpy host->device");
}

TEST(KernelProfile, CategoriesOfTheKernelsAStepRuns) {
  EXPECT_EQ(kernel_category(kAdamW), "optimizer");
  EXPECT_EQ(kernel_category(kCast), "copy/cast");
  EXPECT_EQ(kernel_category("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n"), "GEMM");
  EXPECT_EQ(kernel_category("nvjet_tst_192x128_64x4_1x2_h_bz_coopA_TNN"), "GEMM");
  EXPECT_EQ(kernel_category("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3"), "attention");
  EXPECT_EQ(kernel_category("layernorm_backward_fused_kernel<__nv_bfloat16>"), "norm");
  EXPECT_EQ(kernel_category("ce_forward_kernel<__nv_bfloat16>"), "softmax/loss");
  EXPECT_EQ(kernel_category("ce_count_kernel<int>"), "softmax/loss");
  EXPECT_EQ(kernel_category("ce_scale_grad_kernel<__nv_bfloat16, int, float>"), "softmax/loss");
  EXPECT_EQ(kernel_category("reduce_cols_kernel<float>"), "elementwise/other") << "not the loss's ce_ kernels";
  EXPECT_EQ(kernel_category("conv_forward_kernel<float>"), "convolution");
  EXPECT_EQ(kernel_category("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc"), "convolution")
      << "cuDNN's convolutions are implicit GEMMs, not GEMMs";
  EXPECT_EQ(kernel_category("sm80_xmma_wgrad_implicit_gemm_indexed_bf16"), "convolution");
  EXPECT_EQ(kernel_category("dropout_kernel<__nv_bfloat16>"), "dropout");
  EXPECT_EQ(kernel_category("index_add_kernel<float>"), "embedding");
  EXPECT_EQ(kernel_category("memcpy device->host"), "copy/cast");
  EXPECT_EQ(kernel_category("binary_kernel<float>"), "elementwise/other");
}

TEST(KernelProfile, BusyTimeCountsOverlapsOnceAndRowsSortByTime) {
  // Two steps: a GEMM of 3 ms, two casts of 0.5 ms (one overlapping the GEMM), AdamW 1 ms, and a
  // 4 ms gap in which the GPU waits.
  const uint64_t ms = 1000000;
  std::vector<GpuActivity> a;
  for (uint64_t step = 0; step < 2; ++step) {
    const uint64_t t = step * 10 * ms;
    a.push_back({"sm90_xmma_gemm_bf16", t, t + 3 * ms});
    a.push_back({kCast, t + 2 * ms + ms / 2, t + 3 * ms});  // inside the GEMM's span
    a.push_back({kCast, t + 3 * ms, t + 3 * ms + ms / 2});
    a.push_back({kAdamW, t + 8 * ms, t + 9 * ms});
  }
  const KernelProfile p = summarize_gpu_activity(a);
  EXPECT_EQ(p.activities, 8);
  EXPECT_NEAR(p.busy_ms, 2 * 4.5, 1e-9) << "3.5 ms of GEMM and casts (0.5 overlapped), 1 ms AdamW, per step";
  EXPECT_NEAR(p.window_ms, 19.0, 1e-9);
  ASSERT_EQ(p.kernels.size(), 3u);
  EXPECT_EQ(p.kernels[0].name, "sm90_xmma_gemm_bf16");
  EXPECT_NEAR(p.kernels[0].total_ms, 6.0, 1e-9);
  EXPECT_NEAR(p.kernels[0].share, 6.0 / 10.0, 1e-9) << "share of the summed kernel time (10 ms)";
  EXPECT_EQ(p.kernels[1].name, "adamw_kernel");
  EXPECT_EQ(p.kernels[2].name, "copy_flat_kernel<float, __nv_bfloat16>");
  EXPECT_EQ(p.kernels[2].calls, 4);
  ASSERT_EQ(p.categories.size(), 3u);
  EXPECT_EQ(p.categories[0].name, "GEMM");

  const std::string report = format_kernel_profile(p, 2, 10.0, 2);
  EXPECT_NE(report.find("GPU busy 4.50 of 10.00 ms per step (45.0%"), std::string::npos) << report;
  EXPECT_NE(report.find("top 2 kernels"), std::string::npos) << report;
  EXPECT_EQ(report.find("copy_flat_kernel<float, __nv_bfloat16> [copy"), std::string::npos)
      << "only the top 2 kernels are listed\n"
      << report;
  for (size_t at = 0; at < report.size(); at = report.find('\n', at) + 1)
    EXPECT_EQ(report.compare(at, 9, "[profile]"), 0) << "every line is tagged for device-check.sh";
  EXPECT_EQ(summarize_gpu_activity({}).busy_ms, 0.0);
}

// The idle gaps, named by the work around them: the AdamW kernel waits 4.5 ms after the casts each
// step (and 1 ms after AdamW before the next step's GEMM); a 2 us gap counts as short.
TEST(KernelProfile, IdleGapsAreNamedByTheWorkAroundThem) {
  const uint64_t ms = 1000000, us = 1000;
  std::vector<GpuActivity> a;
  for (uint64_t step = 0; step < 2; ++step) {
    const uint64_t t = step * 10 * ms;
    a.push_back({kCast, t + 3 * ms, t + 3 * ms + ms / 2});  // listed out of order
    a.push_back({"sm90_xmma_gemm_bf16", t, t + 3 * ms});
    a.push_back({kCast, t + 2 * ms, t + 2 * ms + ms / 2});  // inside the GEMM: the GEMM ends last
    a.push_back({kAdamW, t + 8 * ms, t + 9 * ms - 2 * us});
    a.push_back({kAdamW, t + 9 * ms, t + 9 * ms + us});  // 2 us after the first
  }
  const KernelProfile p = summarize_gpu_activity(a);
  ASSERT_EQ(p.long_gaps.size(), 2u);
  EXPECT_EQ(p.long_gaps[0].before, "copy_flat_kernel<float, __nv_bfloat16>");
  EXPECT_EQ(p.long_gaps[0].after, "adamw_kernel");
  EXPECT_EQ(p.long_gaps[0].count, 2);
  EXPECT_NEAR(p.long_gaps[0].total_ms, 2 * 4.5, 1e-9);
  EXPECT_NEAR(p.long_gaps[0].max_us, 4500, 1e-6);
  EXPECT_EQ(p.long_gaps[1].before, "adamw_kernel");
  EXPECT_EQ(p.long_gaps[1].after, "sm90_xmma_gemm_bf16");
  EXPECT_EQ(p.long_gaps[1].count, 1) << "one step boundary inside the window";
  EXPECT_NEAR(p.long_gaps[1].total_ms, 0.999, 1e-9);
  EXPECT_EQ(p.short_gaps, 2);
  EXPECT_NEAR(p.short_gaps_ms, 2 * 0.002, 1e-9);
  EXPECT_NEAR(p.busy_ms, 2 * (3.5 + 1.0 - 0.002 + 0.001), 1e-9);
  const std::string report = format_kernel_profile(p, 2, 10.0, 5);
  EXPECT_NE(report.find("ms per step in 1.5 gaps of 5 us or more, 0.002 ms in 1.0 shorter ones"), std::string::npos)
      << report;
  EXPECT_NE(report.find("copy_flat_kernel<float, __nv_bfloat16> -> adamw_kernel"), std::string::npos) << report;
}

TEST(KernelProfile, TracingWithoutAGpuSaysWhy) {
  const std::string why = GpuTrace::unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "GPU tracing is available here";
  GpuTrace t;
  try {
    t.start();
    FAIL() << "start() without a way to trace";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

// The tracer on a device (the CUDA emulator's CUPTI here, the real one in tools/device-check.sh):
// an elementwise kernel, a GEMM and a copy to the host are all recorded, with times,
// and the summary puts the GEMM's kernels (cuBLASLt's own names on a GPU) under "GEMM".
TEST(CudaTrace, RecordsKernelsGemmsAndCopies) {
  if (const std::string why = GpuTrace::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const Device dev = Device::cuda(0);
  const Tensor a = Tensor::rand({64, 96}, 1).to(dev), w = Tensor::rand({96, 32}, 2).to(dev);
  (void)ops::matmul(a, w).to(Device::cpu());  // first use: cuBLASLt's handle and workspace
  GpuTrace trace;
  trace.start();
  const Tensor sum = ops::add(a, a);
  const Tensor prod = ops::matmul(sum, w);
  const std::vector<float> host = prod.to(Device::cpu()).to_vector<float>();
  const std::vector<GpuActivity> got = trace.stop();
  ASSERT_EQ(host.size(), size_t(64 * 32));
  bool elementwise = false, copy_back = false;
  for (const GpuActivity& g : got) {
    EXPECT_LE(g.start_ns, g.end_ns) << g.name;
    elementwise |= short_kernel_name(g.name).find("binary_kernel") != std::string::npos;
    copy_back |= g.name == "memcpy device->host";
  }
  EXPECT_TRUE(elementwise) << "the add's kernel";
  EXPECT_TRUE(copy_back) << "the copy to the host";
  const KernelProfile p = summarize_gpu_activity(got);
  bool gemm = false;
  for (const KernelProfileRow& c : p.categories) gemm |= c.name == "GEMM" && c.calls >= 1;
  EXPECT_TRUE(gemm) << format_kernel_profile(p, 1, p.window_ms, 20);
  EXPECT_GT(p.busy_ms, 0.0);
  std::printf("[cuda] trace: %lld activities\n%s", (long long)p.activities,
              format_kernel_profile(p, 1, p.window_ms, 8).c_str());

  GpuTrace second;  // one trace at a time, and a new one after stop()
  second.start();
  EXPECT_THROW(GpuTrace().start(), std::logic_error);
  (void)second.stop();
}

}  // namespace
}  // namespace hone
