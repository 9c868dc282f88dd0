// Harness entries for the norm family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_norm_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
