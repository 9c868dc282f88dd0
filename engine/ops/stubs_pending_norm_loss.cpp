// TEMPORARY: declarations from ops.h whose families are being written in parallel.
// Each family file replaces its stubs; this file is deleted when all have landed.
#include <stdexcept>
#include "engine/ops/ops.h"

namespace hone::ops {
#define HONE_PENDING(sig) sig { throw std::logic_error("not implemented yet"); }
HONE_PENDING(Tensor softmax(const Tensor&, int64_t))
HONE_PENDING(Tensor log_softmax(const Tensor&, int64_t))
HONE_PENDING(Tensor layer_norm(const Tensor&, const Shape&, const Tensor&, const Tensor&, double))
HONE_PENDING(Tensor cross_entropy(const Tensor&, const Tensor&, int64_t, double))
}  // namespace hone::ops
