// Tests of the autograd engine itself, in the spirit of micrograd's test_engine.py: small
// expressions whose gradients are known in closed form, computed in float64.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/ops/ops.h"

namespace hone {
namespace {

Tensor scalar64(double v, bool grad = true) {
  Tensor t = Tensor::full({}, v, DType::F64);
  if (grad) t.requires_grad_(true);
  return t;
}

double grad_of(const Tensor& t) { return t.grad().item(); }

TEST(Autograd, MicrogradSanityCheck) {
  // x = -4; z = 2x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x
  Tensor x = scalar64(-4.0);
  Tensor z = ops::add(ops::add(ops::mul(x, 2.0), 2.0), x);
  Tensor q = ops::add(ops::relu(z), ops::mul(z, x));
  Tensor h = ops::relu(ops::mul(z, z));
  Tensor y = ops::add(ops::add(h, q), ops::mul(q, x));
  y.backward();
  EXPECT_DOUBLE_EQ(y.item(), -20.0);
  EXPECT_DOUBLE_EQ(grad_of(x), 46.0);
}

TEST(Autograd, TensorUsedTwiceAccumulatesBothPaths) {
  Tensor x = scalar64(3.0);
  Tensor y = ops::mul(x, x);  // dy/dx = 2x
  y.backward();
  EXPECT_DOUBLE_EQ(grad_of(x), 6.0);
}

TEST(Autograd, SharedSubgraphRunsOnceWithSummedGradient) {
  Tensor x = scalar64(2.0);
  Tensor s = ops::exp(x);              // shared
  Tensor y = ops::add(ops::mul(s, 3.0), ops::mul(s, s));  // 3e^x + e^{2x}
  y.backward();
  EXPECT_NEAR(grad_of(x), 3 * std::exp(2.0) + 2 * std::exp(4.0), 1e-9);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = scalar64(1.5);
  ops::mul(x, 4.0).backward();
  ops::mul(x, 4.0).backward();
  EXPECT_DOUBLE_EQ(grad_of(x), 8.0);
  x.zero_grad();
  ops::mul(x, 4.0).backward();
  EXPECT_DOUBLE_EQ(grad_of(x), 4.0);
}

// A leaf's first gradient is its own memory: add's backward hands the same tensor to both inputs;
// accumulating into one gradient must not change another.
TEST(Autograd, LeafGradientsNeverShareMemory) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_(true);
  Tensor b = Tensor::from_vector(std::vector<double>{4, 5, 6}, {3}).requires_grad_(true);
  Tensor c = Tensor::from_vector(std::vector<double>{7, 8, 9}, {3}).requires_grad_(true);
  ops::sum(ops::add(a, b)).backward();  // both get the same gradient tensor
  ops::sum(ops::mul(c, 2.0)).backward();
  EXPECT_NE(a.grad().storage(), b.grad().storage());
  ops::sum(ops::mul(a, 10.0)).backward();  // accumulates into a's gradient only
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{11, 11, 11}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(c.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
  ops::sum(ops::mul(c, 2.0)).backward();
  EXPECT_EQ(c.grad().to_vector<double>(), (std::vector<double>{4, 4, 4}));
}

// A gradient nothing else holds (a backward's fresh result) becomes the leaf's .grad as it is, not
// a copy of it (a copy of every parameter per backward otherwise); one still held elsewhere (the
// node's own input gradient, passed through, or one it keeps) is copied.
TEST(Autograd, LeafKeepsAFreshGradientWithoutACopy) {
  Tensor w = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_(true);
  const void* fresh = nullptr;
  Tensor out = Tensor::from_vector(std::vector<double>{0}, {});
  record("FreshGradient", out, {w}, [&fresh](const Tensor&) -> std::vector<Tensor> {
    Tensor g = Tensor::full({3}, 5.0, DType::F64);
    fresh = g.data_ptr();
    return {g};
  });
  out.backward();
  EXPECT_EQ(w.grad().data_ptr(), fresh) << "the fresh gradient was copied";
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{5, 5, 5}));

  Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_(true);
  Tensor kept = Tensor::full({3}, 2.0, DType::F64);
  Tensor out2 = Tensor::from_vector(std::vector<double>{0}, {});
  record("KeptGradient", out2, {v}, [kept](const Tensor&) -> std::vector<Tensor> { return {kept}; });
  out2.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_NE(v.grad().data_ptr(), kept.data_ptr()) << "a gradient the node still holds must be copied";
  out2.backward();
  EXPECT_EQ(v.grad().to_vector<double>(), (std::vector<double>{4, 4, 4}));
  EXPECT_EQ(kept.to_vector<double>(), (std::vector<double>{2, 2, 2})) << "accumulating changed the node's tensor";
}

// take_pending_grad: a backward may take the gradient already waiting for an input's node and
// return it with its own added in place; the result is what the autograd's own accumulation gives.
// A waiting gradient that something else still holds is not handed over.
TEST(Autograd, ABackwardCanAccumulateIntoTheWaitingGradient) {
  auto run = [](bool take) {
    Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_(true);
    Tensor s = ops::mul(x, 1.0);  // a non-leaf with two consumers, like the residual stream
    bool took = false;
    Tensor a = Tensor::from_vector(std::vector<double>{0, 0, 0}, {3});
    record("Consumer", a, {s}, [take, &took](const Tensor& g) -> std::vector<Tensor> {
      const Tensor mine = ops::mul(g, 10.0);
      Tensor waiting = take ? take_pending_grad(0) : Tensor();
      took = waiting.defined();
      if (!took) return {mine};
      ops::add_(waiting, mine);
      return {waiting};
    });
    const Tensor b = ops::mul(s, 3.0);  // its gradient reaches s's node first (it is recorded last)
    ops::sum(ops::add(ops::sum(a), ops::sum(b))).backward();
    return std::pair{x.grad().to_vector<double>(), took};
  };
  const auto [plain, plain_took] = run(false);
  const auto [fused, fused_took] = run(true);
  EXPECT_FALSE(plain_took);
  EXPECT_TRUE(fused_took) << "the waiting gradient was not handed over";
  EXPECT_EQ(fused, plain);
  EXPECT_EQ(plain, (std::vector<double>{13, 13, 13}));
  EXPECT_FALSE(take_pending_grad(0).defined()) << "outside a backward there is nothing to take";
}

// A tied weight (an embedding table that is also the output head): the embedding's backward adds
// its scatter into the gradient the head already gave the leaf (take_pending_grad on a leaf); the
// result is the sum of the two uses' gradients, as with two separate copies of the weight.
TEST(Autograd, TiedEmbeddingAddsIntoTheHeadsGradient) {
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 1, 3, 0}, {4});
  const Tensor init = Tensor::randn({5, 3}, 11, DType::F64);
  auto loss = [&](const Tensor& table, const Tensor& head) {
    const Tensor h = ops::embedding(table, ids);  // [4, 3]
    return ops::sum(ops::mul(ops::matmul(h, head.transpose(0, 1)), ops::matmul(h, head.transpose(0, 1))));
  };
  Tensor tied = init.clone().requires_grad_(true);
  loss(tied, tied).backward();
  Tensor a = init.clone().requires_grad_(true), b = init.clone().requires_grad_(true);
  loss(a, b).backward();
  const std::vector<double> got = tied.grad().to_vector<double>(), ga = a.grad().to_vector<double>(),
                            gb = b.grad().to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], ga[i] + gb[i], 1e-12) << "element " << i;
  EXPECT_NE(ga, std::vector<double>(ga.size(), 0.0));
  // The rows no id uses (2 and 4) keep the head's gradient alone.
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(got[size_t(2 * 3 + c)], gb[size_t(2 * 3 + c)]);
}

// take_leaf_grad_behind: a backward whose input is a cast of a transposed leaf (autocast's weight
// copy read as W^T) adds its gradient into the leaf's own .grad, in the leaf's layout and dtype;
// the cast and the transpose are skipped, and the result is what the plain path accumulates. Not
// handed over: on the first backward (no .grad yet), a wrong shape or dtype, or a relaying node with
// another consumer.
TEST(Autograd, ABackwardCanAddIntoTheLeafBehindCastsAndTransposes) {
  const Tensor init = Tensor::randn({4, 3}, 21);
  auto run = [&](bool take, Shape want_shape, bool second_consumer) {
    Tensor w = init.clone().requires_grad_(true);  // [4, 3], read as W^T [3, 4] in 16 bits
    std::vector<bool> took;
    for (int pass = 0; pass < 2; ++pass) {
      const Tensor alias = ops::cast_keep_layout(w.transpose(0, 1), DType::BF16);
      Tensor out = Tensor::from_vector(std::vector<float>{0}, {1});
      record("Consumer", out, {alias}, [&, pass](const Tensor&) -> std::vector<Tensor> {
        // d/dW^T of the op: (pass + 1) * (i + 10 j) at [i, j] of W^T, as float32 in W's layout
        // when taken, else in W^T's shape and 16 bits (the cast's backward widens it).
        std::vector<float> v(12);
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 4; ++j) v[size_t(j * 3 + i)] = float((pass + 1) * (i + 10 * j));
        const Tensor in_w_layout = Tensor::from_vector(v, {4, 3});
        Tensor acc = take ? take_leaf_grad_behind(0, want_shape, DType::F32) : Tensor();
        took.push_back(acc.defined());
        if (!acc.defined()) return {in_w_layout.transpose(0, 1).to(DType::BF16)};
        ops::add_(acc, in_w_layout);
        return {in_w_layout.transpose(0, 1).to(DType::BF16)};  // ignored: it is in the leaf's .grad already
      });
      Tensor loss = ops::sum(out);
      if (second_consumer) loss = ops::add(loss, ops::sum(ops::mul(alias, 0.0).to(DType::F32)));
      loss.backward();
    }
    return std::pair{w.grad().to_vector<float>(), took};
  };
  const auto [plain, plain_took] = run(false, {4, 3}, false);
  const auto [fused, fused_took] = run(true, {4, 3}, false);
  EXPECT_EQ(fused_took, (std::vector<bool>{false, true})) << "taken on the second backward only";
  EXPECT_EQ(fused, plain);
  EXPECT_EQ(plain[size_t(1 * 3 + 2)], 3.0f * (2 + 10 * 1)) << "both backwards' gradients, W[1, 2] = W^T[2, 1]";
  EXPECT_EQ(run(true, {3, 4}, false).second, (std::vector<bool>{false, false})) << "W^T's shape is not W's";
  EXPECT_EQ(run(true, {4, 3}, true).second, (std::vector<bool>{false, false}))
      << "the cast has another consumer: its gradient must flow";
  EXPECT_EQ(run(true, {4, 3}, true).first, plain) << "(the other consumer adds zeros)";
  EXPECT_FALSE(take_leaf_grad_behind(0, {4, 3}, DType::F32).defined()) << "outside a backward: nothing to take";
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = scalar64(1.0);
  Tensor y;
  {
    NoGradGuard guard;
    y = ops::mul(x, 2.0);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
  EXPECT_TRUE(grad_mode_enabled());
  EXPECT_THROW(y.backward(), std::runtime_error);
}

TEST(Autograd, DetachCutsTheGraphButSharesMemory) {
  Tensor x = scalar64(2.0);
  Tensor y = ops::mul(x, x);
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.data_ptr(), y.data_ptr());
  // z = y * detach(y): only the first factor carries gradient: dz/dx = 2x * y = 16
  Tensor z = ops::mul(y, d);
  z.backward();
  EXPECT_DOUBLE_EQ(grad_of(x), 16.0);
}

TEST(Autograd, BackwardWithExplicitUpstreamGradient) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.requires_grad_(true);
  Tensor y = ops::mul(x, x);
  y.backward(Tensor::from_vector<double>({1, 10, 100}, {3}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 40, 600}));
}

TEST(Autograd, NonScalarBackwardWithoutGradientIsAnError) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  x.requires_grad_(true);
  EXPECT_THROW(ops::mul(x, 2.0).backward(), std::invalid_argument);
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAClearError) {
  Tensor x = scalar64(2.0);
  Tensor y = ops::exp(ops::mul(x, x));
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = scalar64(2.0);
  Tensor y = ops::mul(x, x);
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_DOUBLE_EQ(grad_of(x), 8.0);
}

TEST(Autograd, SavedTensorsAreFreedAfterBackward) {
  Tensor x = scalar64(2.0);
  Tensor y = ops::exp(x);
  const std::weak_ptr<Storage> saved_storage = y.storage();  // exp saves its output
  Tensor z = ops::mul(y, 3.0);
  y = Tensor();  // the graph still holds exp's output
  EXPECT_FALSE(saved_storage.expired());
  z.backward();
  EXPECT_TRUE(saved_storage.expired()) << "backward without retain_graph must free saved tensors";
}

TEST(Autograd, InPlaceChangeOfASavedTensorIsReported) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.requires_grad_(true);
  Tensor y = ops::exp(x);  // saves y
  Tensor z = ops::sum(y);
  {
    NoGradGuard guard;
    y.fill_(0.0);
  }
  try {
    z.backward();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("modified by an in-place operation"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expBackward"), std::string::npos) << e.what();
  }
}

TEST(Autograd, InPlaceWriteToALeafThatRequiresGradIsRefused) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  x.requires_grad_(true);
  EXPECT_THROW(x.fill_(1.0), std::runtime_error);
  NoGradGuard guard;
  x.fill_(1.0);  // allowed under no-grad (optimizer updates)
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{1, 1}));
}

TEST(Autograd, ViewsPropagateGradients) {
  Tensor x = Tensor::arange(6, DType::F64).reshape({2, 3});
  x.requires_grad_(true);
  // sum of (x^T narrowed to its middle row) * [10, 20]
  Tensor y = x.transpose(0, 1).narrow(0, 1, 1).reshape({2});
  ops::sum(ops::mul(y, Tensor::from_vector<double>({10, 20}, {2}))).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 10, 0, 0, 20, 0}));
}

TEST(Autograd, ExpandSumsGradientsOverBroadcastDims) {
  Tensor b = Tensor::from_vector<double>({1, 2, 3}, {3});
  b.requires_grad_(true);
  Tensor x = Tensor::ones({4, 3}, DType::F64);
  ops::sum(ops::add(x, b)).backward();
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{4, 4, 4}));
}

TEST(Autograd, IntegerTensorsCannotRequireGrad) {
  Tensor i = Tensor::arange(3);
  EXPECT_THROW(i.requires_grad_(true), std::invalid_argument);
}

TEST(Autograd, UnusedBranchWithoutGradientDoesNotBlockOthers) {
  // y depends on x through two nodes; one of them receives no gradient.
  Tensor x = scalar64(1.0);
  Tensor a = ops::mul(x, 2.0);
  Tensor b = ops::mul(a, 3.0);  // unused
  (void)b;
  ops::mul(a, 5.0).backward();
  EXPECT_DOUBLE_EQ(grad_of(x), 10.0);
}

}  // namespace
}  // namespace hone
