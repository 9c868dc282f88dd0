// LoRA (Hu et al. 2021, "Low-Rank Adaptation of Large Language Models") as PEFT users know it:
// a frozen layer W plus a trainable low-rank update,
//   y = base(x) + dropout(x) A^T B^T * alpha/r,
// with A [r, in] Kaiming-uniform (a = sqrt(5)), B [out, r] zero, so that at initialisation the
// model computes exactly what the base model computes.
//
// How it reaches the models. The models keep typed pointers to their layers (Gpt2Attention::c_attn_
// is a shared_ptr<nn::Conv1D>) and call the layer's forward directly, so LoRA does not replace
// modules in the tree: it attaches to the layer itself.
//   * The layer's forward hook (Module::set_forward_hook) is set to y + lora_delta(x): Linear,
//     Conv1D and Conv2d end their forward with it, so every caller gets the adapted output, with
//     dropout on the adapter's input while the layer is in training mode. Nothing needs to be
//     re-synchronised after optimizer steps, loads or resumes: A and B are read at each forward.
//   * lora_A and lora_B are registered as children of the layer (Module::add_module), each holding
//     one parameter "weight": the names become "<path>.lora_A.weight" / "<path>.lora_B.weight"
//     (PEFT's names, minus the adapter name) while the layer's own "<path>.weight" / "<path>.bias"
//     stay exactly where they were, so checkpoint loading by the original names keeps working.
// merge_lora folds (alpha/r) B A into the layer's weight and removes the hook and the adapter
// children: the model then has exactly its original parameter set and names (for export).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "engine/ops/ops.h"

namespace hone::nn {

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0.0;  // on the adapter's input, in training mode only (PEFT's lora_dropout)
  // Over module paths ("h.3.attn.c_attn"), full match: a regex (ECMAScript), or a glob (* and ?)
  // when the pattern has no regex metacharacter other than * ? . ("*.attn.c_attn", "*query").
  std::vector<std::string> target_patterns;
  uint64_t seed = 1234;
};

// A factor of the low-rank update: one parameter "weight" (A [r, in] / [r, in, kh, kw], or B
// [out, r] / [out, r, 1, 1]).
class LoraFactor : public Module {
 public:
  explicit LoraFactor(Tensor weight) { register_parameter("weight", std::move(weight)); }
  const Tensor& weight() const { return param("weight"); }
};

// The adapter of one Linear / Conv1D (GPT-2, [in, out]) / Conv2d (groups 1) layer. Constructing
// it draws A (from `seed`) and zeroes B without touching the layer; attach() puts it on the layer
// (children lora_A / lora_B, forward hook), detach() takes it off again, merge() folds it in.
// The layer owns the hook, which owns the adapter; the adapter refers back to the layer weakly.
// Create it with std::make_shared (attach() hands the hook a shared_ptr to the adapter).
class LoraAdapter : public std::enable_shared_from_this<LoraAdapter> {
 public:
  enum class Kind { Linear, Conv1D, Conv2d };

  // Throws std::invalid_argument when `layer` is not a Linear / Conv1D / Conv2d, is a grouped
  // Conv2d, already has a forward hook or a child/parameter named lora_A / lora_B; for rank < 1 or
  // dropout outside [0, 1).
  LoraAdapter(const std::shared_ptr<Module>& layer, int64_t rank, double alpha, double dropout, uint64_t seed);

  // Registers lora_A / lora_B under the layer (in the layer's training mode) and installs the
  // forward hook y -> y + lora_delta(x). Throws (leaving the layer as it was) if it cannot.
  void attach();
  // Removes the hook and the lora_A / lora_B children; the layer's weight is left as it is.
  void detach();
  // Folds delta_weight() into the layer's weight (no autograd; the weight keeps its
  // requires_grad) and detaches.
  void merge();
  bool attached() const { return attached_; }

  // The low-rank term alone, what the hook adds to the layer's output: for Linear / Conv1D
  // s * (dropout(x) A^T) B^T; for Conv2d s * conv_B(conv_A(dropout(x))) with A using the layer's
  // stride/padding/dilation and B 1x1. Dropout is active only while the layer is in training mode.
  Tensor lora_delta(const Tensor& x) const;
  // s * B A shaped like the layer's weight ([out, in], Conv1D's [in, out], or [out, in, kh, kw]);
  // differentiable in A and B.
  Tensor delta_weight() const;

  // The adapter attached to `layer` (through its forward hook), or nullptr.
  static std::shared_ptr<LoraAdapter> of(const Module& layer);

  Kind kind() const { return kind_; }
  int64_t rank() const { return rank_; }
  double alpha() const { return alpha_; }
  double dropout() const { return dropout_; }
  double scaling() const { return alpha_ / double(rank_); }
  std::shared_ptr<Module> layer() const;         // throws if the layer no longer exists
  Tensor base_weight() const;                    // the layer's own "weight" (same tensor)
  const Tensor& lora_A() const { return a_->weight(); }
  const Tensor& lora_B() const { return b_->weight(); }

 private:
  std::weak_ptr<Module> layer_;
  Kind kind_;
  int64_t rank_;
  double alpha_, dropout_;
  Shape weight_shape_;
  ops::Conv2dArgs conv_args_;  // the layer's (Conv2d only)
  std::shared_ptr<LoraFactor> a_, b_;
  bool attached_ = false;
};

// Attaches an adapter to every matching Linear / Conv1D / Conv2d and freezes every other parameter
// (afterwards only lora_A/lora_B require grad). Returns the number of adapted layers. Throws
// std::invalid_argument, leaving the model untouched, when a pattern matches no adaptable module
// (listing the closest module paths), when the model already has adapters, for a grouped Conv2d,
// a layer that already has a forward hook, rank < 1 or dropout outside [0, 1).
int64_t inject_lora(Module& model, const LoraConfig& config);

// Every attached adapter with its layer's module path, in tree order.
std::vector<std::pair<std::string, std::shared_ptr<LoraAdapter>>> lora_modules(const Module& model);

// Adapter-only save, PEFT's layout: dir/adapter_model.safetensors with keys
// "base_model.model.<path>.lora_A.weight" / ".lora_B.weight", and dir/adapter_config.json
// {"r", "lora_alpha", "lora_dropout", "target_modules", "peft_type": "LORA", ...}. Creates dir.
void save_lora_adapters(const Module& model, const std::string& dir, const LoraConfig& config);

// Injects adapters per dir/adapter_config.json into `model` (which must have none yet) and loads
// dir/adapter_model.safetensors into them. The layers adapted are exactly those the file has
// tensors for (PEFT's "transformer." prefix of GPT-2 paths is accepted); the config's dropout is
// applied (in training mode only). Errors name the file and the tensor; a failed load leaves the
// model untouched. Returns the saved config.
LoraConfig load_lora_adapters(Module& model, const std::string& dir);

// Folds every adapter into its layer's weight and removes the hooks and adapter children: the
// model then has exactly its original parameter names and shapes (for export). The merged
// weights stay frozen (requires_grad false), as after PEFT's merge_and_unload.
void merge_lora(Module& model);

}  // namespace hone::nn
