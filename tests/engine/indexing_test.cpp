// Error messages and semantics of the indexing ops beyond what the op harness checks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "engine/ops/ops.h"

namespace hone {
namespace {

// Expects `f` to throw std::invalid_argument whose message contains every string in `parts`.
template <class F>
void expect_invalid(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(Embedding, OutOfRangeIdNamesTheIdItsPositionAndTheTableSize) {
  const Tensor w = Tensor::randn({7, 3}, 1);
  const Tensor ids = Tensor::from_vector<int64_t>({0, 1, 2, 3, 9, 4}, {2, 3});
  expect_invalid([&] { ops::embedding(w, ids); }, {"index 9", "[1, 1]", "7 rows"});
  const Tensor neg = Tensor::from_vector<int32_t>({0, -1}, {2});
  expect_invalid([&] { ops::embedding(w, neg); }, {"index -1", "[1]"});
}

TEST(Embedding, RejectsFloatIds) {
  expect_invalid([] { ops::embedding(Tensor::randn({4, 2}, 1), Tensor::zeros({3})); }, {"int32 or int64"});
}

TEST(Embedding, OutputShapeAppendsTheEmbeddingDim) {
  const Tensor out = ops::embedding(Tensor::randn({5, 4}, 1), Tensor::from_vector<int64_t>({1, 2, 3, 4, 0, 1}, {3, 2}));
  EXPECT_EQ(out.shape(), (Shape{3, 2, 4}));
}

TEST(Indexing, ConcatChecksShapesAndDtypes) {
  expect_invalid([] { ops::concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}, 0); }, {"input 1", "dimension 1"});
  expect_invalid([] { ops::concat({Tensor::zeros({2, 3}), Tensor::zeros({2, 3}, DType::F64)}, 0); }, {"dtype"});
  expect_invalid([] { ops::concat({}, 0); }, {"no tensors"});
}

TEST(Indexing, SplitSizesMustSumToTheDimension) {
  expect_invalid([] { ops::split(Tensor::zeros({5, 2}), {2, 2}, 0); }, {"sum to 4", "size 5"});
}

TEST(Indexing, SplitGivesViews) {
  const Tensor x = Tensor::arange(6, DType::F32);
  const auto pieces = ops::split(x, {4, 2}, 0);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[1].storage(), x.storage());
  EXPECT_EQ(pieces[1].to_vector<float>(), (std::vector<float>{4, 5}));
}

TEST(Indexing, ChunkFollowsTorch) {
  auto sizes = [](int64_t n, int64_t chunks) {
    std::vector<int64_t> s;
    for (const Tensor& t : ops::chunk(Tensor::zeros({n}), chunks, 0)) s.push_back(t.size(0));
    return s;
  };
  EXPECT_EQ(sizes(7, 3), (std::vector<int64_t>{3, 3, 1}));
  EXPECT_EQ(sizes(5, 4), (std::vector<int64_t>{2, 2, 1}));  // fewer pieces than asked, as torch
  EXPECT_EQ(sizes(2, 5), (std::vector<int64_t>{1, 1}));
  expect_invalid([] { ops::chunk(Tensor::zeros({3}), 0, 0); }, {"positive"});
}

TEST(Indexing, IndexSelectErrors) {
  const Tensor x = Tensor::zeros({3, 4});
  expect_invalid([&] { ops::index_select(x, 1, Tensor::from_vector<int64_t>({0, 4}, {2})); },
                 {"index 4", "[1]", "dimension 1 of size 4"});
  expect_invalid([&] { ops::index_select(x, 0, Tensor::zeros({2}, DType::I64).reshape({1, 2})); }, {"one-dimensional"});
  expect_invalid([&] { ops::index_select(x, 0, Tensor::zeros({2}, DType::U8)); }, {"int32 or int64"});
}

TEST(Indexing, IndexSelectWorksOnIntegerTensors) {
  const Tensor x = Tensor::from_vector<int64_t>({10, 11, 12}, {3});
  const Tensor out = ops::index_select(x, 0, Tensor::from_vector<int32_t>({2, 0, 2}, {3}));
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{12, 10, 12}));
}

TEST(Indexing, GatherErrors) {
  const Tensor x = Tensor::zeros({3, 4});
  expect_invalid([&] { ops::gather(x, 1, Tensor::zeros({3}, DType::I64)); }, {"as many dimensions"});
  expect_invalid([&] { ops::gather(x, 1, Tensor::zeros({4, 2}, DType::I64)); }, {"dimension 0"});
  expect_invalid([&] { ops::gather(x, 0, Tensor::from_vector<int64_t>({0, 1, 3, 2}, {2, 2})); },
                 {"index 3", "[1, 0]", "dimension 0 of size 3"});
}

TEST(Indexing, GatherPicksAlongTheDimension) {
  // torch.gather(tensor([[1, 2], [3, 4]]), 1, tensor([[0, 0], [1, 0]])) = [[1, 1], [4, 3]]
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  const Tensor idx = Tensor::from_vector<int64_t>({0, 0, 1, 0}, {2, 2});
  EXPECT_EQ(ops::gather(x, 1, idx).to_vector<float>(), (std::vector<float>{1, 1, 4, 3}));
}

TEST(Indexing, WhereAndMaskedFillNeedUint8Masks) {
  const Tensor a = Tensor::zeros({2, 2});
  expect_invalid([&] { ops::where(Tensor::zeros({2, 2}), a, a); }, {"uint8"});
  expect_invalid([&] { ops::masked_fill(a, Tensor::zeros({2}, DType::I64), 1.0); }, {"uint8"});
  expect_invalid([&] { ops::where(Tensor::zeros({2, 2}, DType::U8), a, Tensor::zeros({2, 2}, DType::F64)); }, {"dtype"});
  expect_invalid([&] { ops::where(Tensor::zeros({3}, DType::U8), a, a); }, {"broadcast"});
}

TEST(Indexing, MaskedFillMaskMustBroadcastToX) {
  expect_invalid([] { ops::masked_fill(Tensor::zeros({2}), Tensor::zeros({3, 2}, DType::U8), 1.0); },
                 {"does not broadcast"});
}

TEST(Indexing, MaskedFillWithMinusInfinity) {
  const Tensor x = Tensor::zeros({3});
  const Tensor m = Tensor::from_vector<uint8_t>({0, 1, 0}, {3});
  const auto v = ops::masked_fill(x, m, -std::numeric_limits<double>::infinity()).to_vector<float>();
  EXPECT_EQ(v[0], 0.0f);
  EXPECT_TRUE(std::isinf(v[1]) && v[1] < 0);
}

}  // namespace
}  // namespace hone
