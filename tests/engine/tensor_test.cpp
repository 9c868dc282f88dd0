// Tensors: creation, dtypes and conversion, views and strides, storage.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "engine/core/allocator.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

TEST(Tensor, CpuStorageIs64ByteAligned) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n}, DType::U8);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 64, 0u);
  }
}

TEST(Tensor, DtypeSizesAndNames) {
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_STREQ(dtype_name(DType::F16), "float16");
  EXPECT_EQ(Tensor::zeros({2, 3}, DType::I32).nbytes(), 24u);
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1).
  EXPECT_EQ(float(bf16(1.0f + 1.0f / 256)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd mantissa) and 1 + 2^-6: goes up.
  EXPECT_EQ(float(bf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  // Just above halfway rounds up.
  EXPECT_EQ(float(bf16(1.0f + 1.0f / 256 + 1.0f / 4096)), 1.0f + 1.0f / 128);
  EXPECT_TRUE(std::isnan(float(bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(float(bf16(std::numeric_limits<float>::infinity()))));
  EXPECT_EQ(bf16(-2.5f).bits, 0xC020);
}

TEST(Tensor, F16RoundsToNearestEvenIncludingSubnormals) {
  EXPECT_EQ(f16(1.0f).bits, 0x3C00);
  EXPECT_EQ(f16(65504.0f).bits, 0x7BFF);           // largest finite
  EXPECT_EQ(f16(65520.0f).bits, 0x7C00);           // rounds to inf
  EXPECT_EQ(f16(1.0f + 1.0f / 2048).bits, 0x3C00);  // tie to even (down)
  EXPECT_EQ(f16(1.0f + 3.0f / 2048).bits, 0x3C02);  // tie to even (up)
  EXPECT_EQ(f16(std::ldexp(1.0f, -24)).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(f16(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie with 0 goes to even 0
  EXPECT_EQ(f16(std::ldexp(3.0f, -25)).bits, 0x0002);  // 1.5 * 2^-24 ties to 2
  EXPECT_EQ(float(f16::from_bits(0x0001)), std::ldexp(1.0f, -24));
  EXPECT_EQ(float(f16::from_bits(0xC000)), -2.0f);
  // Every f16 value survives float and back.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const f16 h = f16::from_bits(static_cast<uint16_t>(b));
    const float f = float(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f16(f).bits, b) << std::hex << b;
  }
}

TEST(Tensor, ConversionBetweenDtypes) {
  Tensor x = Tensor::from_vector<float>({1.5f, -2.25f, 3.0f}, {3});
  EXPECT_EQ(x.to(DType::F64).to_vector<double>(), (std::vector<double>{1.5, -2.25, 3.0}));
  EXPECT_EQ(x.to(DType::I64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(x.to(DType::BF16).to(DType::F32).to_vector<float>(), x.to_vector<float>());
  const int64_t big = (int64_t(1) << 53) + 1;
  EXPECT_EQ(Tensor::from_vector<int64_t>({big}, {1}).to(DType::I64).to_vector<int64_t>()[0], big);
}

TEST(Tensor, ReshapeIsAViewWhenPossible) {
  Tensor x = Tensor::arange(12, DType::F32).reshape({3, 4});
  Tensor v = x.reshape({2, 6});
  EXPECT_EQ(v.data_ptr(), x.data_ptr());
  Tensor t = x.transpose(0, 1);
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_THROW(t.view({12}), std::invalid_argument);
  Tensor r = t.reshape({12});  // copies
  EXPECT_NE(r.data_ptr(), x.data_ptr());
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(x.reshape({-1, 2}).shape(), (Shape{6, 2}));
  EXPECT_THROW(x.reshape({5, -1}), std::invalid_argument);
}

TEST(Tensor, PermuteNarrowSelectExpand) {
  Tensor x = Tensor::arange(24, DType::F32).reshape({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  Tensor n = x.narrow(2, 1, 2);
  EXPECT_EQ(n.contiguous().to_vector<float>(),
            (std::vector<float>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}));
  EXPECT_EQ(x.select(1, 2).to_vector<float>(), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  Tensor e = Tensor::from_vector<float>({1, 2}, {2, 1}).expand({2, 3});
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  EXPECT_EQ(e.contiguous().to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
  EXPECT_THROW(x.expand({2, 5, 4}), std::invalid_argument);
  EXPECT_THROW(x.narrow(0, 1, 5), std::out_of_range);
  EXPECT_THROW(x.permute({0, 0, 1}), std::invalid_argument);
}

TEST(Tensor, ViewsShareStorageAndSeeWrites) {
  Tensor x = Tensor::zeros({2, 3});
  Tensor row = x.select(0, 1);
  row.fill_(7.0);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 0, 0, 7, 7, 7}));
  Tensor col = x.narrow(1, 2, 1);
  col.copy_(Tensor::scalar(-1.0));
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 0, -1, 7, 7, -1}));
}

TEST(Tensor, VersionCounterIsSharedByViews) {
  Tensor x = Tensor::zeros({4});
  Tensor v = x.narrow(0, 0, 2);
  const uint64_t before = x.storage()->version();
  v.fill_(1.0);
  EXPECT_GT(x.storage()->version(), before);
}

TEST(Tensor, RandomTensorsAreReproducible) {
  Tensor a = Tensor::randn({1000}, 7), b = Tensor::randn({1000}, 7), c = Tensor::randn({1000}, 8);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  const double m = ops::mean(a).item(), v = ops::var(a).item();
  EXPECT_NEAR(m, 0.0, 0.1);
  EXPECT_NEAR(v, 1.0, 0.15);
}

TEST(Tensor, ItemNeedsExactlyOneValue) {
  EXPECT_DOUBLE_EQ(Tensor::scalar(2.5).item(), 2.5);
  EXPECT_THROW(Tensor::zeros({2}).item(), std::invalid_argument);
}

TEST(Tensor, CudaTensorsWithoutADevice) {
  if (cuda_available()) {
    Tensor x = Tensor::from_vector<float>({1, 2, 3}, {3});
    Tensor g = x.to(Device::cuda());
    EXPECT_TRUE(g.device().is_cuda());
    EXPECT_EQ(g.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
    const auto stats = cuda_memory_stats(0);
    EXPECT_GE(stats.peak_allocated_bytes, 12u);
  } else {
    EXPECT_THROW(Tensor::empty({3}, DType::F32, Device::cuda()), std::runtime_error);
  }
}

TEST(Tensor, DeviceParsing) {
  EXPECT_TRUE(Device::parse("cpu").is_cpu());
  EXPECT_EQ(Device::parse("cuda:1").index, 1);
  EXPECT_THROW(Device::parse("tpu"), std::invalid_argument);
}

}  // namespace
}  // namespace hone
