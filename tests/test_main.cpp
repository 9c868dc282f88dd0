// Shared main for every hone test program: prints the thread count and whether a CUDA device
// is present, so a CI log says at once which cases could run.
#include <gtest/gtest.h>
#include <cstdio>
#include "kernels/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!hone::kernels::cuda_device_present())
    std::printf("[hone] no CUDA device: CUDA cases are skipped\n");
  return RUN_ALL_TESTS();
}
