// Harness entries for the loss family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_loss_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
