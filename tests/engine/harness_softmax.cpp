// Harness entries for the softmax family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_softmax_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
