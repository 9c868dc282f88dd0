// Tests of the CUDA emulator itself (built only with HONE_CUDA=EMULATE; rewritten by
// rewrite_launches.py like the kernels): that it runs CUDA's execution model faithfully enough to
// trust a passing kernel test (barriers, shared memory per block, warp shuffles, launch limits),
// and that it reports the mistakes a GPU would punish (deadlocks, host pointers in kernels, copies
// past an allocation, reads of memory nobody wrote).
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

template <class T>
struct DeviceBuffer {
  T* p = nullptr;
  size_t n;
  explicit DeviceBuffer(size_t count) : n(count) { EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess); }
  ~DeviceBuffer() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

// Each block sums its threads' values through shared memory (a tree with __syncthreads between
// levels); a thread that read its partner before the partner wrote would give a wrong sum.
template <int kThreads>
__global__ void block_tree_sum(const int* in, int* out) {
  __shared__ int partial[kThreads];
  const int t = threadIdx.x;
  partial[t] = in[blockIdx.x * kThreads + t];
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

TEST(CudaEmulator, BlocksHaveTheirOwnSharedMemoryAndBarriersOrderIt) {
  constexpr int kThreads = 128, kBlocks = 5;
  std::vector<int> h(kThreads * kBlocks);
  for (size_t i = 0; i < h.size(); ++i) h[i] = int(i % 97) - 40;
  DeviceBuffer<int> in(h.size()), out(kBlocks);
  ASSERT_EQ(cudaMemcpy(in.p, h.data(), h.size() * sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);
  block_tree_sum<kThreads><<<kBlocks, kThreads>>>(
      in.p,
      out.p);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> got = out.get();
  for (int b = 0; b < kBlocks; ++b) {
    int want = 0;
    for (int t = 0; t < kThreads; ++t) want += h[b * kThreads + t];
    EXPECT_EQ(got[b], want) << "block " << b;
  }
}

__global__ void warp_ops(float* sums, float* from_lane5, int* any_negative, const float* in) {
  const int t = threadIdx.x;
  float v = in[t];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  sums[t] = v;
  from_lane5[t] = __shfl_sync(0xffffffffu, in[t], 5);
  any_negative[t] = __syncthreads_or(in[t] < 0.f);
}

TEST(CudaEmulator, WarpShufflesAndBlockVotesSeeEveryLane) {
  constexpr int kThreads = 64;
  std::vector<float> h(kThreads);
  for (int i = 0; i < kThreads; ++i) h[i] = float(i * i % 13);
  h[40] = -1.f;
  DeviceBuffer<float> in(kThreads), sums(kThreads), lane5(kThreads);
  DeviceBuffer<int> vote(kThreads);
  ASSERT_EQ(cudaMemcpy(in.p, h.data(), kThreads * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  warp_ops<<<1, kThreads, 0, nullptr>>>(sums.p, lane5.p, vote.p, in.p);
  const std::vector<float> s = sums.get(), l5 = lane5.get();
  const std::vector<int> v = vote.get();
  for (int w = 0; w < 2; ++w) {
    float want = 0;
    for (int i = 0; i < 32; ++i) want += h[32 * w + i];
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(s[32 * w + i], want) << "lane " << i << " of warp " << w;
      EXPECT_EQ(l5[32 * w + i], h[32 * w + 5]) << "lane " << i << " of warp " << w;
    }
  }
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(v[i], 1) << "thread " << i;
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    __syncwarp();
  }
  out[threadIdx.x] = 1;
}

TEST(CudaEmulator, ABarrierInDivergentCodeIsReportedNotHung) {
  DeviceBuffer<int> out(32);
  try {
    divergent_barrier<<<1, 32>>>(out.p);
    FAIL() << "the deadlock was not reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("deadlocks"), std::string::npos) << e.what();
  }
}

__global__ void write_index(int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = int(threadIdx.x); }

TEST(CudaEmulator, LaunchesBeyondTheDeviceLimitsFailLikeOnTheDevice) {
  DeviceBuffer<int> out(2048);
  write_index<<<1, 2048>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration) << "2048 threads per block";
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the error is cleared once read";
  write_index<<<dim3(1, 70000), 32>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration) << "grid.y above 65535";
  write_index<<<1, 32, 64 * 1024>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue) << "64 KiB of dynamic shared memory without opting in";
  const std::vector<int> h = out.get();
  for (int x : h) ASSERT_EQ(x, -1) << "a refused launch ran (fresh device memory is 0xff bytes)";
}

__global__ void __launch_bounds__(512) write_index_bounded(int* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = int(threadIdx.x);
}

// A kernel without bounds may use 255 registers a thread, too many for blocks above 256 threads on a
// GPU (whether it does depends on the build): the emulator refuses such launches outright. With
// __launch_bounds__(N) up to N threads run, and more fail as on a GPU.
TEST(CudaEmulator, BlocksAbove256ThreadsNeedLaunchBounds) {
  DeviceBuffer<int> out(1024);
  try {
    write_index<<<1, 512>>>(out.p);
    FAIL() << "512 threads of a kernel without __launch_bounds__ ran";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("write_index is launched with 512 threads per block but declares no "
                                         "__launch_bounds__"),
              std::string::npos)
        << e.what();
  }
  write_index_bounded<<<1, 512>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(out.get()[511], 511);
  write_index_bounded<<<1, 1024>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchOutOfResources) << "more threads than the bounds";
}

TEST(CudaEmulator, HostPointersInKernelsAndCopiesPastAnAllocationAreErrors) {
  std::vector<int> host(32);
  EXPECT_THROW(write_index<<<1, 32>>>(host.data()), std::runtime_error);
  DeviceBuffer<int> dev(8);
  std::vector<int> big(16, 0);
  EXPECT_THROW(cudaMemcpy(dev.p, big.data(), 16 * sizeof(int), cudaMemcpyHostToDevice), std::runtime_error);
  EXPECT_THROW(cudaMemcpy(big.data(), dev.p, 16 * sizeof(int), cudaMemcpyDeviceToHost), std::runtime_error);
  EXPECT_THROW(cudaMemcpy(dev.p, big.data(), 4, cudaMemcpyDeviceToHost), std::runtime_error) << "wrong kind";
  EXPECT_EQ(cudaMemcpy(dev.p, big.data(), 8 * sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);
}

__global__ void read_dynamic_shared(float* out) {
  extern __shared__ float scratch[];
  out[threadIdx.x] = scratch[threadIdx.x];  // never written: NaN, as garbage would be on a GPU
}

TEST(CudaEmulator, UnwrittenSharedAndDeviceMemoryReadsAsNaN) {
  DeviceBuffer<float> out(32), fresh(4);
  read_dynamic_shared<<<1, 32, 32 * sizeof(float)>>>(out.p);
  for (float x : out.get()) EXPECT_TRUE(std::isnan(x));
  for (float x : fresh.get()) EXPECT_TRUE(std::isnan(x));
}

__global__ void neighbour_without_barrier(float* out) {
  extern __shared__ float values[];
  values[threadIdx.x] = float(threadIdx.x);
  // Missing __syncthreads(): the neighbour may not have written yet.
  out[threadIdx.x] = values[(threadIdx.x + 1) % blockDim.x];
}

TEST(CudaEmulator, AMissingBarrierShowsAsNaN) {
  DeviceBuffer<float> out(64);
  for (int blocks : {1, 2}) {  // the two blocks run in opposite orders
    neighbour_without_barrier<<<blocks, 64, 64 * sizeof(float)>>>(out.p);
    int nan = 0;
    for (float x : out.get()) nan += std::isnan(x);
    EXPECT_GT(nan, 0) << "a read before the write went unnoticed (" << blocks << " block(s))";
  }
}

__global__ void write_one_past(int* out, int n) {
  if (threadIdx.x == 0) out[n] = 1;  // one element past the end
}

TEST(CudaEmulatorDeathTest, AKernelWritingPastItsBufferStopsWithItsName) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer<int> out(64);
  EXPECT_DEATH(write_one_past<<<1, 32>>>(out.p, 64),
               "kernel write_one_past, block \\(0, 0, 0\\), thread \\(0, 0, 0\\) accessed byte 256 of a 256-byte "
               "device allocation \\(past its end\\)");
}

TEST(CudaEmulatorDeathTest, HostCodeReadingDeviceMemoryStops) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceBuffer<float> buf(16);
  EXPECT_DEATH(
      {
        volatile float x = buf.p[3];  // fine on the CPU, a crash on a GPU
        (void)x;
      },
      "host code touched byte 12 of a 64-byte device allocation");
  EXPECT_EQ(cudaMemset(buf.p, 0, 16 * sizeof(float)), cudaSuccess) << "the runtime itself may";
  for (float x : buf.get()) EXPECT_EQ(x, 0.f);
}

}  // namespace
