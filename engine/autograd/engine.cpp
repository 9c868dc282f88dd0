// The backward pass: a topological order of the graph above the roots, then each node's
// backward once, with gradients summed where a tensor was used more than once.
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/ops/ops.h"

namespace hone {

namespace {
thread_local bool g_grad_mode = true;
thread_local DType g_autocast_dtype = DType::F32;
}

bool grad_mode_enabled() { return g_grad_mode; }
void set_grad_mode(bool enabled) { g_grad_mode = enabled; }

DType autocast_dtype() { return g_autocast_dtype; }
void set_autocast_dtype(DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw std::invalid_argument(std::string("autocast: dtype must be bf16, f16 or f32 (off), got ") + dtype_name(dtype));
  g_autocast_dtype = dtype;
}

DType autocast_dtype_for(const std::string& precision) {
  if (precision == "fp32") return DType::F32;
  if (precision == "bf16") return DType::BF16;
  if (precision == "fp16") return DType::F16;
  throw std::invalid_argument("precision '" + precision + "' is not one of fp32, bf16, fp16");
}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  tensor_ = t.detach();
  version_ = t.storage()->version();
}

Tensor SavedTensor::unpack(const std::string& node_name) const {
  if (tensor_.defined() && tensor_.storage()->version() != version_)
    throw std::runtime_error(
        "autograd: a tensor needed by " + node_name + " to compute gradients was modified by an "
        "in-place operation after it was saved (saved at version " + std::to_string(version_) +
        ", now version " + std::to_string(tensor_.storage()->version()) +
        "); use an out-of-place op or clone() the tensor before changing it");
  return tensor_;
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const std::string& name, Tensor& output, const std::vector<Tensor>& inputs,
            BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward = std::move(backward);
  node->output_shape = output.shape();
  node->output_dtype = output.dtype();
  node->next.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      if (in.grad_fn())
        e.fn = in.grad_fn();
      else
        e.leaf = in.impl_ptr();
    }
    node->next.push_back(std::move(e));
  }
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
}

namespace {

// True when g's storage is held by g's impl alone and holds exactly g's elements, densely.
bool owns_dense_storage(const Tensor& g) {
  return g.storage().use_count() == 1 && g.is_contiguous() && g.offset() == 0 && g.storage()->nbytes() == g.nbytes();
}

// True when `g` is the only way to its memory and that memory is exactly g's elements: a gradient
// a backward function just computed, which the leaf may then keep as its .grad without a copy.
bool sole_dense_owner(const Tensor& g) { return g.impl_ptr().use_count() == 1 && owns_dense_storage(g); }

void accumulate_leaf(TensorImpl* leaf, Tensor g) {
  if (!leaf->grad) {
    // Own the memory: `g` may alias another gradient (add's backward passes its gradient through,
    // to both inputs) or a tensor a node still holds; then it is copied. A fresh gradient (every
    // weight gradient of a GEMM, say) is kept as it is: no copy of every parameter per backward.
    if (sole_dense_owner(g)) {
      leaf->grad = g.impl_ptr();
      return;
    }
    Tensor c = g.contiguous();
    leaf->grad = (c.same(g) ? g.clone() : c).impl_ptr();
    return;
  }
  Tensor acc(leaf->grad);
  ops::add_(acc, g);
}

// The node whose backward runs on this thread, and the gradients waiting for nodes (take_pending_grad).
struct RunningNode {
  Node* node = nullptr;
  std::unordered_map<Node*, Tensor>* waiting = nullptr;
  std::vector<char>* leaf_taken = nullptr;    // per input: its leaf's .grad was handed over
  std::vector<char>* taken_behind = nullptr;  // per input: the .grad of the leaf behind it (take_leaf_grad_behind)
  const std::unordered_map<Node*, int>* pending = nullptr;  // edges into each node
  bool retain_graph = false;                                // whether this node may run again
};
thread_local RunningNode t_running;

// A leaf's .grad handed to a backward that adds into it, when nothing else holds it and it is dense;
// marks `taken`. Its version moves: anything derived from its old values is stale.
Tensor hand_over_leaf_grad(const TensorImpl& leaf, char& taken) {
  if (!leaf.grad || leaf.grad.use_count() != 1) return Tensor();  // (checked before g adds a holder)
  Tensor g(leaf.grad);
  if (!owns_dense_storage(g)) return Tensor();
  taken = 1;
  g.bump_version();
  return g;
}

}  // namespace

bool backward_may_run_again() { return t_running.node == nullptr || t_running.retain_graph; }

Tensor take_pending_grad(size_t input) {
  const RunningNode& r = t_running;
  if (!r.node || input >= r.node->next.size()) return Tensor();
  // A leaf's gradient so far; the engine makes what the backward returns the new one.
  if (const std::shared_ptr<TensorImpl>& leaf = r.node->next[input].leaf)
    return hand_over_leaf_grad(*leaf, (*r.leaf_taken)[input]);
  if (!r.node->next[input].fn) return Tensor();
  auto it = r.waiting->find(r.node->next[input].fn.get());
  if (it == r.waiting->end() || !sole_dense_owner(it->second)) return Tensor();
  Tensor g = std::move(it->second);
  r.waiting->erase(it);
  g.bump_version();  // the taker writes into it: anything derived from its old values is stale
  return g;
}

Tensor take_leaf_grad_behind(size_t input, const Shape& shape, DType dtype) {
  const RunningNode& r = t_running;
  if (!r.node || input >= r.node->next.size() || !r.node->next[input].fn) return Tensor();
  std::shared_ptr<TensorImpl> leaf;
  for (Node* n = r.node->next[input].fn.get(); n;) {
    const auto it = r.pending->find(n);
    if (!n->only_relays || n->next.size() != 1 || it == r.pending->end() || it->second != 1 || r.waiting->count(n))
      return Tensor();
    if (n->next[0].leaf) leaf = n->next[0].leaf;
    n = n->next[0].fn.get();
  }
  if (!leaf || !leaf->grad || leaf->strides != contiguous_strides(leaf->shape) || leaf->grad->shape != shape ||
      leaf->grad->dtype != dtype)
    return Tensor();
  return hand_over_leaf_grad(*leaf, (*r.taken_behind)[input]);
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph) {
  NoGradGuard no_grad;  // gradients are computed with ops, without recording them
  AutocastGuard no_autocast(DType::F32);  // each backward computes in the dtype its forward saved

  // Count, for each node, how many edges from other nodes point at it, so that a node runs only
  // after every gradient flowing into it has arrived (Kahn's algorithm).
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (const Tensor& r : roots)
    if (r.grad_fn() && seen.insert(r.grad_fn().get()).second) stack.push_back(r.grad_fn().get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.fn) continue;
      pending[e.fn.get()]++;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }

  std::unordered_map<Node*, Tensor> grad_of;
  std::vector<Node*> ready;
  auto add_grad = [&](Node* n, const Tensor& g) {
    auto it = grad_of.find(n);
    if (it == grad_of.end())
      grad_of.emplace(n, g);
    else
      it->second = ops::add(it->second, g);
  };
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    if (!r.requires_grad())
      throw std::runtime_error("backward: tensor " + r.str() +
                               " does not require grad and has no grad_fn");
    if (r.grad_fn())
      add_grad(r.grad_fn().get(), grads[i]);
    else
      accumulate_leaf(r.impl(), grads[i]);
  }
  for (const Tensor& r : roots)
    if (r.grad_fn() && pending[r.grad_fn().get()] == 0) ready.push_back(r.grad_fn().get());
  std::unordered_set<Node*> done;

  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    if (!done.insert(n).second) continue;  // a root listed twice
    auto git = grad_of.find(n);
    if (git == grad_of.end()) {
      // No gradient reached this node (every path into it carried none): nothing to compute,
      // but the nodes below still wait for it.
      for (const Edge& e : n->next)
        if (e.fn && --pending[e.fn.get()] == 0) ready.push_back(e.fn.get());
      continue;
    }
    Tensor g = std::move(git->second);
    grad_of.erase(git);
    if (n->released || !n->backward)
      throw std::runtime_error(
          "autograd: trying to backward through the graph a second time (" + n->name +
          "'s saved tensors were freed by the first backward); pass retain_graph=true to the "
          "first backward if you need to run it twice");
    std::vector<Tensor> input_grads;
    std::vector<char> leaf_taken(n->next.size(), 0), taken_behind(n->next.size(), 0);
    {
      // take_pending_grad's view of this node; restored after (a backward may itself run a backward).
      const RunningNode outer = t_running;
      t_running = {n, &grad_of, &leaf_taken, &taken_behind, &pending, retain_graph};
      try {
        input_grads = n->backward(g);
      } catch (...) {
        t_running = outer;
        throw;
      }
      t_running = outer;
    }
    g = Tensor();  // done with: a gradient passed through (a view's, say) is then no longer shared
    if (input_grads.size() != n->next.size())
      throw std::logic_error(n->name + " returned " + std::to_string(input_grads.size()) +
                             " gradients for " + std::to_string(n->next.size()) + " inputs");
    if (!retain_graph) {
      n->backward = nullptr;  // frees the saved tensors
      n->released = true;
    }
    for (size_t i = 0; i < n->next.size(); ++i) {
      const Edge& e = n->next[i];
      // Added into the leaf behind the relaying nodes already: they get no gradient (and so pass
      // none on) but still count down, so that the nodes below them run when due.
      if (taken_behind[i]) input_grads[i] = Tensor();
      if (e.leaf && input_grads[i].defined()) {
        if (leaf_taken[i])
          e.leaf->grad = input_grads[i].impl_ptr();  // the backward added into the leaf's own gradient
        else
          accumulate_leaf(e.leaf.get(), std::move(input_grads[i]));
      }
      const Tensor& gi = input_grads[i];
      if (!e.fn) continue;
      if (gi.defined()) add_grad(e.fn.get(), gi);
      if (--pending[e.fn.get()] == 0) ready.push_back(e.fn.get());
    }
  }
}

}  // namespace hone
