// Harness entries for the dropout family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_dropout_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
