// Harness entries for the attention family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_attention_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
