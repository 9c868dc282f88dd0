// Generation: the KV cache gives the same logits as recomputing the whole prefix; sampling is
// reproducible from its seed and degenerates to greedy where it should.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "models/gpt2/generate.h"
#include "models/gpt2/gpt2.h"
#include "models/sampling.h"

namespace hone {
namespace {

models::Gpt2Config small() {
  models::Gpt2Config c;
  c.n_layer = 2;
  c.n_head = 3;
  c.n_embd = 24;
  c.n_positions = 40;
  c.vocab_size = 61;
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.0;
  return c;
}

// Greedy decoding of 12 new tokens.
models::GenerateOptions greedy_12() {
  models::GenerateOptions o;
  o.max_new_tokens = 12;
  o.sampling.temperature = 0;
  return o;
}

TEST(Gpt2Generate, KvCacheMatchesFullRecompute) {
  models::Gpt2 m(small(), 5);
  m.eval();
  NoGradGuard g;
  std::vector<int64_t> ids = {3, 14, 15, 9, 26, 53, 5, 8, 9, 7};
  models::Gpt2KvCache cache;
  // Prefill 4 tokens, then feed one at a time.
  Tensor step_logits = m.forward(Tensor::from_vector(std::vector<int64_t>(ids.begin(), ids.begin() + 4), {1, 4}), &cache);
  for (size_t n = 4; n <= ids.size(); ++n) {
    const Tensor full = m.forward(Tensor::from_vector(std::vector<int64_t>(ids.begin(), ids.begin() + n), {1, int64_t(n)}));
    const auto a = full.select(1, int64_t(n) - 1).to_vector<float>();
    const auto b = step_logits.select(1, step_logits.size(1) - 1).to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << "position " << n - 1 << " logit " << i;
    EXPECT_EQ(cache.length(), int64_t(n));
    if (n < ids.size()) step_logits = m.forward(Tensor::from_vector(std::vector<int64_t>{ids[n]}, {1, 1}), &cache);
  }
}

TEST(Gpt2Generate, GreedyIsDeterministicAndTopK1IsGreedy) {
  models::Gpt2 m(small(), 6);
  m.eval();
  const models::GenerateOptions greedy = greedy_12();
  const auto a = models::generate(m, {1, 2, 3}, greedy);
  EXPECT_EQ(a, models::generate(m, {1, 2, 3}, greedy));
  EXPECT_EQ(a.size(), 12u);
  models::GenerateOptions k1 = greedy;
  k1.sampling.temperature = 0.8;
  k1.sampling.top_k = 1;
  EXPECT_EQ(models::generate(m, {1, 2, 3}, k1), a);
  models::GenerateOptions p_small = greedy;
  p_small.sampling.temperature = 1.0;
  p_small.sampling.top_p = 1e-6;  // the nucleus is the single most likely token
  EXPECT_EQ(models::generate(m, {1, 2, 3}, p_small), a);
}

// Generation reads the logits whatever their dtype and device: under bf16 autocast the greedy
// continuation still runs (and mostly agrees with float32), and on a GPU float32 greedy decoding
// gives the CPU's tokens.
TEST(Gpt2Generate, RunsUnderAutocastAndOnTheGpu) {
  models::Gpt2 m(small(), 6);
  m.eval();
  const models::GenerateOptions greedy = greedy_12();
  const auto f32 = models::generate(m, {1, 2, 3}, greedy);
  std::vector<int32_t> bf16;
  {
    AutocastGuard autocast(DType::BF16);
    bf16 = models::generate(m, {1, 2, 3}, greedy);
  }
  ASSERT_EQ(bf16.size(), f32.size());
  EXPECT_EQ(bf16[0], f32[0]) << "the first greedy token should survive bf16 rounding";
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: generation on the GPU is skipped";
  m.to(Device::cuda(0));
  EXPECT_EQ(models::generate(m, {1, 2, 3}, greedy), f32);
}

TEST(Gpt2Generate, SamplingIsReproducibleFromTheSeed) {
  models::Gpt2 m(small(), 7);
  m.eval();
  models::GenerateOptions o;
  o.max_new_tokens = 20;
  o.sampling.temperature = 1.5;
  o.sampling.seed = 11;
  const auto a = models::generate(m, {4, 5}, o);
  EXPECT_EQ(a, models::generate(m, {4, 5}, o));
  o.sampling.seed = 12;
  EXPECT_NE(a, models::generate(m, {4, 5}, o));
  int streamed = 0;
  models::generate(m, {4, 5}, o, [&](int32_t) { ++streamed; });
  EXPECT_EQ(streamed, 20);
}

TEST(Gpt2Generate, StopsAtTheContextLimitAndTheStopToken) {
  models::Gpt2 m(small(), 8);
  m.eval();
  models::GenerateOptions o;
  o.max_new_tokens = 100;
  o.sampling.temperature = 0;
  EXPECT_EQ(models::generate(m, {1, 2}, o).size(), 38u);  // 40 positions in all
  const auto first = models::generate(m, {1, 2}, o)[0];
  o.stop_token = first;
  EXPECT_TRUE(models::generate(m, {1, 2}, o).empty());
}

TEST(Sampling, TopKAndTopPKeepOnlyTheLikelyTokens) {
  const float logits[5] = {0.0f, 5.0f, 4.9f, -3.0f, 1.0f};
  models::SamplingOptions o;
  o.temperature = 1.0;
  o.top_k = 2;
  for (uint64_t d = 0; d < 200; ++d) {
    const int32_t t = models::sample_token(logits, 5, o, d);
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
  o.top_k = 0;
  o.top_p = 0.5;  // token 1 alone has p ~ 0.5: the nucleus is {1} or {1, 2}
  for (uint64_t d = 0; d < 200; ++d) {
    const int32_t t = models::sample_token(logits, 5, o, d);
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
}

}  // namespace
}  // namespace hone
