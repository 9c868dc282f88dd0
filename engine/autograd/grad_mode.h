// Whether differentiable ops record the graph. Off inside a NoGradGuard (evaluation, optimizer
// updates, and every backward computation: gradients of gradients are not supported).
#pragma once

namespace hone {

bool grad_mode_enabled();
void set_grad_mode(bool enabled);

class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_mode_enabled()) { set_grad_mode(false); }
  ~NoGradGuard() { set_grad_mode(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace hone
