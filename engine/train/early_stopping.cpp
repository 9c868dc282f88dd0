#include "engine/train/early_stopping.h"

#include <cmath>
#include <stdexcept>

namespace hone {

EarlyStopping::EarlyStopping(EarlyStoppingConfig c) : c_(std::move(c)) {
  if (c_.mode != "min" && c_.mode != "max")
    throw std::invalid_argument("early_stopping.mode must be min or max, got '" + c_.mode + "'");
  if (c_.patience < 1) throw std::invalid_argument("early_stopping.patience must be >= 1");
  if (c_.min_delta < 0) throw std::invalid_argument("early_stopping.min_delta must be >= 0");
}

bool EarlyStopping::update(double v) {
  if (std::isnan(v)) {
    ++bad_;
    return false;
  }
  const bool better = !has_best_ || (c_.mode == "min" ? v < best_ - c_.min_delta : v > best_ + c_.min_delta);
  if (better) {
    best_ = v;
    has_best_ = true;
    bad_ = 0;
    return true;
  }
  ++bad_;
  return false;
}

}  // namespace hone
