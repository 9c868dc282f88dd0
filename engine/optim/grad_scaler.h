// Dynamic loss scaling for float16 mixed precision (the algorithm of PyTorch's GradScaler).
//
// float16 keeps only 5 exponent bits: gradients below ~6e-8 flush to zero. Multiplying the
// loss by a large scale S lifts the whole backward into float16's range; the float32 master
// gradients are divided by S again before clipping and the optimizer step. When a step's
// gradients overflow (inf/NaN after unscaling), the step is skipped and S halves; after
// `growth_interval` clean steps in a row, S doubles, so S tracks the largest scale that fits.
// bfloat16 has float32's exponent range and needs none of this.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace hone {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16, as PyTorch
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  double scale() const { return scale_; }
  // loss x scale, to call backward() on.
  Tensor scale_loss(const Tensor& loss) const;
  // Divides the gradient of every parameter in `params` that has one by the scale, in place.
  void unscale(const std::vector<Tensor>& params) const;
  // After each optimizer step: `found_inf` (the unscaled gradients were not all finite, so the
  // step was skipped) backs the scale off; growth_interval clean steps in a row grow it.
  void update(bool found_inf);

  int64_t growth_tracker() const { return growth_tracker_; }  // clean steps since the last change
  int64_t skipped_steps() const { return skipped_; }          // overflowing steps so far

  // For checkpoints: restoring these three resumes the exact scale sequence.
  struct State {
    double scale;
    int64_t growth_tracker, skipped;
  };
  State state() const { return {scale_, growth_tracker_, skipped_}; }
  void load_state(const State& s);

 private:
  GradScalerOptions o_;
  double scale_;
  int64_t growth_tracker_ = 0, skipped_ = 0;
};

}  // namespace hone
