// The autograd graph, define-by-run (micrograd's idea at tensor granularity).
//
// Every differentiable op whose inputs require grad creates one Node for its result. The Node
// knows, for each input, where that input's gradient must go (an Edge: the producing Node, or
// the leaf tensor that accumulates it) and holds a backward function that maps the gradient of
// the result to the gradients of the inputs. Tensors the backward needs are kept as
// SavedTensor: detached (so a Node never owns its own output's history: no reference cycles)
// and stamped with the storage version, so that an in-place write after the save is reported
// instead of silently giving wrong gradients.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hone {

struct Edge {
  std::shared_ptr<Node> fn;          // gradient flows into this node, or
  std::shared_ptr<TensorImpl> leaf;  // accumulates into this leaf's .grad
  bool active() const { return fn || leaf; }
};

class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  // The saved value; throws if it was modified in place since it was saved.
  Tensor unpack(const std::string& node_name) const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;                 // "MulBackward", shown in errors
  std::vector<Edge> next;           // one per op input
  BackwardFn backward;              // returns one gradient per input (undefined = none)
  bool released = false;            // saved tensors freed by a backward without retain_graph
  Shape output_shape;               // to create a zero/ones upstream gradient
  DType output_dtype = DType::F32;
  // Its backward only relays the gradient in another layout or dtype (a permute, a cast): a
  // backward that writes its input's gradient straight into the leaf behind it may skip it
  // (take_leaf_grad_behind).
  bool only_relays = false;
};

// True when grad mode is on and any input requires grad: the op must record a Node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `output` as the result of an op on `inputs` with the given backward. The backward
// runs with grad mode off and must return exactly inputs.size() gradients, each with its
// input's shape (or undefined).
void record(const std::string& name, Tensor& output, const std::vector<Tensor>& inputs,
            BackwardFn backward);

// For a backward function while it runs: the gradient input `input` already has, handed over when
// nothing else holds it and it is dense: the one waiting for the input's node (other consumers of
// that input ran first), or for a leaf its .grad so far (a tied weight's other use). The caller
// must return, as input `input`'s gradient, that tensor with its own gradient added in place (a
// fused kernel does the add while it writes: no separate accumulation pass). Undefined when there
// is none or it is shared.
Tensor take_pending_grad(size_t input);

// For a backward function while it runs: whether its node may run again (the backward keeps the
// graph: retain_graph). A backward may hand out, or change in place, a tensor it saved only when
// not: the node is then released right after it. True outside a backward.
bool backward_may_run_again();

// For a backward function while it runs: the .grad of the leaf behind input `input` when only
// relaying nodes (Node::only_relays: permutes, casts) lie between, each consumed by this backward
// alone, and that .grad is held by nothing else, dense with `shape` and `dtype`, and the leaf is
// contiguous (so its .grad's layout is its storage's). The caller adds its gradient for the input
// into it, in place, in the leaf's layout and dtype (a weight-gradient GEMM with beta = 1: gradient
// accumulation without a pass of its own); the relaying nodes are then skipped and what the
// backward returns for that input is ignored. Undefined (nothing taken) otherwise.
Tensor take_leaf_grad_behind(size_t input, const Shape& shape, DType dtype);

// Runs backward from `roots` with upstream gradients `grads` (same length).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph);

}  // namespace hone
