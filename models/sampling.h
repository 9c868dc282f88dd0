// Choosing the next token from logits: temperature, top-k, top-p (nucleus), greedy at
// temperature 0. Random draws come from a Philox stream (seed, counter), so a seed reproduces a
// generation exactly.
#pragma once
#include <cstdint>
#include <vector>

namespace hone::models {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: no top-k cut
  double top_p = 1.0;        // 1: no nucleus cut
  uint64_t seed = 1234;
};

// `logits` of one position (vocabulary size); `draw` is the index of this draw in the stream.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, uint64_t draw);

}  // namespace hone::models
