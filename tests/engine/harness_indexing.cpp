// Harness entries for the indexing family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_indexing_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
