// Autoregressive generation with a KV cache: the prompt is run once, then each new token costs
// one position of attention over the cache (linear in the context, not quadratic).
#pragma once
#include <functional>
#include <vector>

#include "models/gpt2/gpt2.h"
#include "models/sampling.h"

namespace hone::models {

struct GenerateOptions {
  int64_t max_new_tokens = 100;
  SamplingOptions sampling;
  int32_t stop_token = -1;  // e.g. <|endoftext|>; not emitted
};

// Calls on_token for every new token as soon as it is chosen; returns all new tokens.
std::vector<int32_t> generate(const Gpt2& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace hone::models
