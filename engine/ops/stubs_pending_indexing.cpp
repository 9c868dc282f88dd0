// TEMPORARY: declarations from ops.h whose families are being written in parallel.
// Each family file replaces its stubs; this file is deleted when all have landed.
#include <stdexcept>
#include "engine/ops/ops.h"

namespace hone::ops {
#define HONE_PENDING(sig) sig { throw std::logic_error("not implemented yet"); }
HONE_PENDING(Tensor embedding(const Tensor&, const Tensor&))
HONE_PENDING(Tensor dropout(const Tensor&, double, bool, uint64_t, uint64_t))
HONE_PENDING(Tensor dropout(const Tensor&, double, bool))
HONE_PENDING(Tensor concat(const std::vector<Tensor>&, int64_t))
HONE_PENDING(std::vector<Tensor> split(const Tensor&, const std::vector<int64_t>&, int64_t))
HONE_PENDING(std::vector<Tensor> chunk(const Tensor&, int64_t, int64_t))
HONE_PENDING(Tensor index_select(const Tensor&, int64_t, const Tensor&))
HONE_PENDING(Tensor gather(const Tensor&, int64_t, const Tensor&))
HONE_PENDING(Tensor where(const Tensor&, const Tensor&, const Tensor&))
HONE_PENDING(Tensor masked_fill(const Tensor&, const Tensor&, double))
}  // namespace hone::ops
