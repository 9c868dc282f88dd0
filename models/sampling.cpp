#include "models/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/philox.h"

namespace hone::models {

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, uint64_t draw) {
  if (o.temperature <= 0) return int32_t(std::max_element(logits, logits + vocab) - logits);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  // Candidates sorted by logit (stable: ties keep the lower id first, reproducibly).
  int64_t keep = vocab;
  if (o.top_k > 0 && o.top_k < vocab) {
    keep = o.top_k;
    std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  } else {
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  }
  const double mx = logits[order[0]];
  std::vector<double> p(keep);
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += p[i] = std::exp((double(logits[order[i]]) - mx) / o.temperature);
  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  if (o.top_p < 1.0) {
    double acc = 0;
    int64_t n = 0;
    while (n < keep) {
      acc += p[n] / sum;
      ++n;
      if (acc >= o.top_p) break;
    }
    keep = n;
    sum = 0;
    for (int64_t i = 0; i < keep; ++i) sum += p[i];
  }
  const double u = double(philox::uniform(o.seed, 0, draw)) * sum;
  double acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return order[i];
  }
  return order[keep - 1];
}

}  // namespace hone::models
