// What happened when a checkpoint was loaded into a model: which tensors were applied, which the
// model wanted but the checkpoint lacked, which the checkpoint had but the model does not know,
// and which had the wrong shape. Models print the summary so a user sees at once why a load
// went wrong (a prefix, a head of another size, a different architecture).
#pragma once
#include <string>
#include <vector>

#include "engine/io/checkpoint.h"

namespace hone::io {

struct LoadReport {
  std::vector<std::string> applied, missing, unexpected;
  // "name: checkpoint float32[768, 2304] vs model float32[2304, 768]"
  std::vector<std::string> mismatched;

  bool ok() const { return missing.empty() && mismatched.empty(); }
  // One line of counts, then one line per missing, unexpected or mismatched name (at most 20 per
  // list, then "... and N more").
  std::string summary() const;
};

// "float32[768, 2304]"
std::string describe_tensor(const Tensor& t);

// Compares names and shapes (not dtypes: loading converts between floating types) of the
// model's tensors and the checkpoint's. Each name lands in exactly one list.
LoadReport compare_state_dicts(const StateDict& model, const StateDict& checkpoint);

// Renames keys by stripping any of `prefixes` from their start, repeatedly ("module.transformer.h"
// with {"module.", "transformer."} becomes "h"). Throws std::invalid_argument when two keys end
// up with one name.
StateDict strip_prefixes(const StateDict& sd, const std::vector<std::string>& prefixes);

}  // namespace hone::io
