#include "engine/nn/module.h"

#include <stdexcept>

#include "engine/autograd/grad_mode.h"

namespace hone::nn {

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  if (value.defined() && !value.requires_grad()) value.requires_grad_(true);
  if (value.defined()) value.storage()->mark_parameter();  // autocast may keep its 16-bit copy
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, value);
  return value;
}

void Module::eval_subtrees(const std::vector<std::string>& prefixes, const std::string& path) {
  for (auto& [n, child] : children_) {
    const std::string p = path.empty() ? n : path + "." + n;
    bool frozen = false;
    for (const std::string& pre : prefixes)
      if (p == pre || (p.size() > pre.size() && p.compare(0, pre.size(), pre) == 0 && p[pre.size()] == '.'))
        frozen = true;
    if (frozen)
      child->train(false);
    else
      child->eval_subtrees(prefixes, p);
  }
}

void Module::replace_module(const std::string& name, std::shared_ptr<Module> m) {
  for (auto& [n, child] : children_)
    if (n == name) {
      child = std::move(m);
      return;
    }
  throw std::invalid_argument("Module: no child module named '" + name + "'");
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [n, child] : children_) {
    out.emplace_back(n, child);
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(n + "." + sub, std::move(m));
  }
  return out;
}

void Module::add_module(const std::string& name, std::shared_ptr<Module> m) {
  if (name.empty()) throw std::invalid_argument("Module::add_module: empty child name");
  if (!m) throw std::invalid_argument("Module::add_module: null module for '" + name + "'");
  for (const auto& [n, child] : children_)
    if (n == name) throw std::invalid_argument("Module::add_module: there is already a child named '" + name + "'");
  for (const auto* list : {&params_, &buffers_})
    for (const auto& [n, t] : *list)
      if (n == name)
        throw std::invalid_argument("Module::add_module: '" + name + "' already names a parameter or buffer");
  children_.emplace_back(name, std::move(m));
}

std::shared_ptr<Module> Module::remove_module(const std::string& name) {
  for (auto it = children_.begin(); it != children_.end(); ++it)
    if (it->first == name) {
      std::shared_ptr<Module> m = std::move(it->second);
      children_.erase(it);
      return m;
    }
  throw std::invalid_argument("Module: no child module named '" + name + "'");
}

const Tensor& Module::param(const std::string& name) const {
  for (const auto& [n, t] : params_)
    if (n == name) return t;
  throw std::logic_error("Module: no parameter named " + name);
}

void Module::collect(const std::string& prefix, bool buffers,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : buffers ? buffers_ : params_)
    if (t.defined()) out.emplace_back(prefix + n, t);
  for (const auto& [n, child] : children_) child->collect(prefix + n + ".", buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto* list : {&params_, &buffers_})
    for (auto& [n, t] : *list)
      if (t.device() != device) t.set_data_(t.detach().to(device));
  for (auto& [n, child] : children_) child->to(device);
}

Device Module::device() const {
  const Tensor* t = first_tensor();
  return t ? t->device() : Device::cpu();
}

const Tensor* Module::first_tensor() const {
  for (const auto* list : {&params_, &buffers_})
    if (!list->empty()) return &list->front().second;
  for (const auto& [n, child] : children_)
    if (const Tensor* t = child->first_tensor()) return t;
  return nullptr;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
}

Tensor* Module::find_local(const std::string& name, bool buffers) {
  for (auto& [n, t] : buffers ? buffers_ : params_)
    if (n == name) return &t;
  return nullptr;
}

void Module::set_parameter(const std::string& dotted, const Tensor& value) {
  // Child names may contain dots themselves ("h.3"): match whole child-name prefixes.
  for (auto& [n, child] : children_)
    if (dotted.size() > n.size() && dotted.compare(0, n.size(), n) == 0 && dotted[n.size()] == '.')
      return child->set_parameter(dotted.substr(n.size() + 1), value);
  Tensor* slot = find_local(dotted, false);
  const bool is_param = slot != nullptr;
  if (!slot) slot = find_local(dotted, true);
  if (!slot) throw std::invalid_argument("no parameter or buffer named '" + dotted + "'");
  if (slot->shape() != value.shape())
    throw std::invalid_argument("parameter '" + dotted + "': shape " + shape_str(value.shape()) +
                                " does not match the model's " + shape_str(slot->shape()));
  // Copy into the existing tensor so that optimizers and tied weights keep seeing it.
  NoGradGuard no_grad;
  slot->copy_(value);
  (void)is_param;
}

}  // namespace hone::nn
