// Harness entries for the embedding family.
#include "engine/ops/ops.h"
#include "op_harness.h"

namespace hone::test {

void add_embedding_cases(std::vector<OpCase>& cases) {}

}  // namespace hone::test
