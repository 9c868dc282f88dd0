#include "models/gpt2/generate.h"

#include "engine/autograd/grad_mode.h"

namespace hone::models {

std::vector<int32_t> generate(const Gpt2& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                              const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt has no tokens");
  NoGradGuard no_grad;
  const int64_t vocab = model.config().vocab_size, limit = model.config().n_positions;
  if (int64_t(prompt.size()) >= limit)
    throw std::invalid_argument("generate: the prompt has " + std::to_string(prompt.size()) +
                                " tokens; the model's context is " + std::to_string(limit));
  Gpt2KvCache cache;
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  Tensor logits = model.forward(Tensor::from_vector(ids, {1, int64_t(ids.size())}), &cache);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < o.max_new_tokens && cache.length() < limit; ++i) {
    // The last position's logits as float32 on the host, whatever the model's device and precision.
    const std::vector<float> last = logits.select(1, logits.size(1) - 1).to_vector<float>();  // [V]
    const int32_t next = sample_token(last.data(), vocab, o.sampling, uint64_t(i));
    if (next == o.stop_token) break;
    out.push_back(next);
    if (on_token) on_token(next);
    logits = model.forward(Tensor::from_vector(std::vector<int64_t>{next}, {1, 1}), &cache);
  }
  return out;
}

}  // namespace hone::models
