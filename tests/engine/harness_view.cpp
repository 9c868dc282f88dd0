// Harness entries for the view family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_view_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
