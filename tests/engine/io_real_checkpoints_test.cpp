// The real pre-trained CIFAR-10 ResNets in ../shared/data (or $HONE_DATA): each legacy .th file
// (old PyTorch, {'state_dict': ..., 'best_prec1': ...}, keys prefixed 'module.', storages saved
// on cuda:0) must give exactly the tensors of the safetensors conversion beside it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "engine/io/checkpoint.h"
#include "engine/io/load_report.h"

namespace hone::io {
namespace {

std::string resnet_dir() {
  const char* env = std::getenv("HONE_DATA");
  const std::string data = env && *env ? env : std::string(HONE_SOURCE_DIR) + "/../shared/data";
  return data + "/weights/resnet-cifar10";
}

TEST(IoRealCheckpoints, CifarResnetLegacyTorchMatchesSafetensors) {
  const std::string dir = resnet_dir();
  if (!std::filesystem::is_directory(dir))
    GTEST_SKIP() << "no real checkpoints at " << dir
                 << " (set HONE_DATA to the shared data folder to run this test)";
  int compared = 0;
  for (const char* stem : {"resnet20-12fca82f", "resnet32-d509ac18", "resnet44-014dd654",
                           "resnet56-4bfd9763"}) {
    SCOPED_TRACE(stem);
    const std::string th = dir + "/" + stem + ".th", st = dir + "/" + stem + ".safetensors";
    if (!std::filesystem::exists(th) || !std::filesystem::exists(st)) continue;
    const StateDict from_torch = strip_prefixes(load_torch(th), {"module."});
    const StateDict from_st = strip_prefixes(load_safetensors(st), {"module."});
    ASSERT_EQ(from_torch.size(), from_st.size());
    for (const auto& [name, t] : from_torch) {
      SCOPED_TRACE(name);
      auto it = from_st.find(name);
      ASSERT_NE(it, from_st.end());
      const Tensor& s = it->second;
      ASSERT_EQ(t.dtype(), s.dtype());
      ASSERT_EQ(t.shape(), s.shape());
      EXPECT_TRUE(t.device().is_cpu());
      const Tensor a = t.contiguous(), b = s.contiguous();
      EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0) << "values differ";
    }
    EXPECT_EQ(from_torch.count("conv1.weight"), 1u);
    EXPECT_EQ(from_torch.at("linear.weight").shape(), (Shape{10, 64}));
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << "no resnet .th/.safetensors pairs in " << dir;
}

}  // namespace
}  // namespace hone::io
