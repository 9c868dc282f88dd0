// Reference dropout: the mask straight from the definition, one philox::uniform per element.
#include "kernels/dropout.h"

namespace hone::kernels::ref {

void dropout(int64_t n, double p, uint64_t seed, uint64_t offset, const double* x, double* y) {
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = philox::uniform(seed, offset, static_cast<uint64_t>(i)) >= p;
    y[i] = keep ? x[i] / (1.0 - p) : 0.0;
  }
}

}  // namespace hone::kernels::ref
