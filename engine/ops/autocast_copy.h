// Autocast's copies of parameters.
//
// Under bf16/f16 autocast each matmul reads its float32 weight (and bias) in 16 bits. A parameter
// does not change between two optimizer steps (nor between the micro-batches of an accumulated
// step, nor ever while frozen), so casting it for every forward is a pass over the weights that
// buys nothing: its 16-bit copy is kept with the parameter's storage (Storage::autocast_copy) and
// reused while the storage's version is the one it was made at. Any view of the parameter (GPT-2's
// Conv1D reads W^T, the tied head wte^T) reads the same view of the copy. On CUDA, AdamW writes the
// new copy in the pass that writes the new weights (engine/optim/optimizer.cpp), so a bf16
// training step casts no weight at all.
//
// Sound because every write to a parameter bumps its storage's version (copy_, fill_, the in-place
// ops and the optimizers do; it is also what autograd's saved-tensor check relies on).
#pragma once
#include "engine/core/tensor.h"

namespace hone::ops {

// True when `t` is a float32 view of a parameter's storage: autocast casts it through the copy.
bool casts_through_autocast_copy(const Tensor& t);

// `t` (a float32 view of a parameter) in `dtype`: the same view of the storage's current copy,
// made (or remade) first when there is none in `dtype` at the storage's version. Recorded for
// autograd as ops::cast_keep_layout is (the gradient goes back to float32 in t's layout).
Tensor cast_through_autocast_copy(const Tensor& t, DType dtype);

// For an optimizer that writes the copy along with the parameter: the copy's element for p's
// element 0 when p's storage has a copy that is current (call before bumping p's version), with
// its dtype; nullptr when there is none or it is stale.
void* current_autocast_copy(const Tensor& p, DType* dtype);
// After such a write (and the version bump): the copy holds p's storage's values again. Also bumps
// the copy's own version (a graph that saved its old values must not read the new ones).
void mark_autocast_copy_written(const Tensor& p);

}  // namespace hone::ops
