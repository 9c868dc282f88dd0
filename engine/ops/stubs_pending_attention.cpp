// TEMPORARY: declarations from ops.h whose families are being written in parallel.
// Each family file replaces its stubs; this file is deleted when all have landed.
#include <stdexcept>
#include "engine/ops/ops.h"

namespace hone::ops {
#define HONE_PENDING(sig) sig { throw std::logic_error("not implemented yet"); }
HONE_PENDING(Tensor scaled_dot_product_attention(const Tensor&, const Tensor&, const Tensor&, const AttentionArgs&))
}  // namespace hone::ops
