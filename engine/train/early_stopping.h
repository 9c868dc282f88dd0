// Early stopping on any evaluation metric (min or max) with patience and min-delta, as HF's
// EarlyStoppingCallback: an evaluation improves when it beats the best so far by more than
// min_delta; after `patience` evaluations without improvement, training stops.
#pragma once
#include <cstdint>
#include <string>

namespace hone {

struct EarlyStoppingConfig {
  std::string metric;          // empty: disabled
  std::string mode = "min";    // min or max
  int64_t patience = 3;
  double min_delta = 0.0;
};

class EarlyStopping {
 public:
  explicit EarlyStopping(EarlyStoppingConfig c);
  bool enabled() const { return !c_.metric.empty(); }
  // Records one evaluation; returns true when it is a new best.
  bool update(double value);
  bool should_stop() const { return bad_ >= c_.patience; }
  double best() const { return best_; }
  bool has_best() const { return has_best_; }
  int64_t evaluations_without_improvement() const { return bad_; }
  const EarlyStoppingConfig& config() const { return c_; }
  void restore(double best, bool has_best, int64_t bad) { best_ = best, has_best_ = has_best, bad_ = bad; }

 private:
  EarlyStoppingConfig c_;
  double best_ = 0;
  bool has_best_ = false;
  int64_t bad_ = 0;
};

}  // namespace hone
