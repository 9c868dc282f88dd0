// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_): the L2 norm over every
// parameter's gradient together; when it exceeds max_norm all gradients are scaled by
// max_norm / (norm + 1e-6). Returns the norm before clipping (what the progress line shows).
#pragma once
#include <vector>

#include "engine/core/tensor.h"

namespace hone {

double global_grad_norm(const std::vector<Tensor>& params);
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// The clipping alone, given the norm global_grad_norm() returned (no second pass over the grads).
void clip_grads_to_norm(const std::vector<Tensor>& params, double norm, double max_norm);

}  // namespace hone
