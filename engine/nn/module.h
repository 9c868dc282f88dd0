// Module: a node of the model tree with named parameters, buffers and children, as in
// torch.nn.Module. Parameter names are the path through the tree ("h.3.attn.c_attn.weight"),
// which is also the name the checkpoint uses: models register children under the checkpoint's
// names, so loading, `inspect` and `grads` need no translation table.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace hone::nn {

class Module {
 public:
  virtual ~Module() = default;

  // Every parameter below this module, depth first in registration order.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  // Training mode (dropout active) for this module and all below it.
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // The model's layer groups, as name prefixes ordered from the input to the output (embeddings
  // or stem first, the head last), used by layer freezing, gradual unfreezing and layer-wise LR
  // decay. Empty for models without a natural layering.
  // Each group is a list of prefixes (GPT-2's embeddings are "wte" and "wpe").
  virtual std::vector<std::vector<std::string>> layer_groups() const { return {}; }
  // Puts the subtrees whose path equals or starts with one of `prefixes` (followed by '.') in
  // eval mode, leaving the rest as they are (frozen BatchNorm keeps its running statistics).
  void eval_subtrees(const std::vector<std::string>& prefixes, const std::string& path = "");

  // Moves every parameter and buffer below this module to `device` in place (the tensors keep
  // their identity, so tied weights, hooks and typed pointers stay valid; gradients are
  // dropped). Call before creating an optimizer.
  void to(Device device);
  // The device of the first parameter (or buffer); the CPU for a module without any.
  Device device() const;

  // Replaces the value of a registered parameter/buffer (same shape required): used by loaders.
  void set_parameter(const std::string& dotted_name, const Tensor& value);

  // The direct children, in registration order, under their registered names.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // Every module below this one (not this one itself), depth first in registration order, with
  // its dotted path from here ("h.3.attn.c_attn"): the prefixes of named_parameters().
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;

  // Attaches `m` as a new child `name` of this module from outside it (adapters such as LoRA's
  // lora_A / lora_B, which then appear in named_parameters() as "<path>.<name>.<param>").
  // Throws std::invalid_argument if `name` is empty or already names a child, parameter or buffer.
  void add_module(const std::string& name, std::shared_ptr<Module> m);
  // Detaches and returns the child `name`; throws std::invalid_argument if there is none.
  std::shared_ptr<Module> remove_module(const std::string& name);

  // A forward hook: layers that support it (Linear, Conv1D, Conv2d) end their forward with
  // `return forward_hook() ? forward_hook()(x, y) : y`, so the hook sees the layer's input and
  // output and its result replaces the output, whoever calls the layer (models keep typed
  // pointers to their layers). Empty by default; set_forward_hook({}) removes it. One hook per
  // module: whoever installs one owns it (LoRA refuses a layer that already has one).
  using ForwardHook = std::function<Tensor(const Tensor& input, const Tensor& output)>;
  void set_forward_hook(ForwardHook h) { forward_hook_ = std::move(h); }
  const ForwardHook& forward_hook() const { return forward_hook_; }

 protected:
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  // Swaps the registered child `name` for another module (a new classification head, a LoRA
  // wrapper); throws if there is no such child.
  void replace_module(const std::string& name, std::shared_ptr<Module> m);
  // Looks up this module's own parameter by name (after set_parameter may have replaced it).
  const Tensor& param(const std::string& name) const;

 private:
  void collect(const std::string& prefix, bool buffers, std::vector<std::pair<std::string, Tensor>>& out) const;
  const Tensor* first_tensor() const;  // depth first; nullptr when the subtree holds none
  Tensor* find_local(const std::string& name, bool buffers);

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  ForwardHook forward_hook_;
};

}  // namespace hone::nn
