// `hone bench` arguments: --profile traces GPU kernels, so without a GPU it is refused up front
// with the reason (the profile itself runs in tools/device-check.sh).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "engine/core/gpu_trace.h"
#include "tests/tools/cli_run.h"

namespace hone {
namespace {

using testing_cli::hone_binary;
using testing_cli::run;

TEST(BenchCli, ProfileIsRefusedWhereNoGpuCanBeTraced) {
  if (!std::filesystem::exists(hone_binary())) GTEST_SKIP() << "hone binary not built at " << hone_binary();
  std::string out;
  EXPECT_NE(run(hone_binary().string() + " bench gpt2 --profile --steps 1", &out), 0);
  EXPECT_NE(out.find("--profile traces GPU kernels: use it with --device cuda"), std::string::npos) << out;
  EXPECT_EQ(out.find("step 1"), std::string::npos) << "refused before any step\n" << out;

  const std::string why = GpuTrace::unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "this machine can trace its GPU";
  EXPECT_NE(run(hone_binary().string() + " bench gpt2 --device cuda --profile --steps 1", &out), 0);
  // Without a device the CUDA device check may speak first; either way the reason is given.
  EXPECT_TRUE(out.find(why) != std::string::npos || out.find("CUDA") != std::string::npos) << out;
  EXPECT_EQ(out.find("step 1"), std::string::npos) << out;
}

}  // namespace
}  // namespace hone
