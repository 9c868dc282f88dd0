// LoRA (Hu et al. 2021, "Low-Rank Adaptation of Large Language Models") as PEFT users know it:
// a frozen layer W plus a trainable low-rank update, y = base(x) + dropout(x) A^T B^T * alpha/r,
// with A [r, in] Kaiming-uniform (a = sqrt(5)), B [out, r] zero, so that at initialisation the
// model computes exactly what the base model computes.
//
// inject_lora swaps every matching Linear / Conv1D (GPT-2, [in, out]) / Conv2d in the module tree
// for a LoraWrapper. The wrapper keeps the checkpoint's parameter names: it registers the base
// layer's own weight/bias tensors (the same Tensor objects) as "weight"/"bias" and adds children
// "lora_A" and "lora_B", so "h.3.attn.c_attn.weight" stays where it was and
// "h.3.attn.c_attn.lora_A.weight" / ".lora_B.weight" appear beside it (PEFT's names, minus the
// adapter name). Everything else in the model is frozen.
//
// How the adapters reach the models' forward passes. The models keep typed pointers to their
// layers (Gpt2Attention::c_attn_ is a shared_ptr<nn::Conv1D>) and call the layer's non-virtual
// forward directly, so a wrapper put into the tree is not what they call. inject_lora therefore
// also points the base layer's weight slot at the effective weight W + delta_weight(), an
// autograd expression of lora_A and lora_B: the base layer's own forward then computes
// x (W + s B A)^T, which equals LoRA's output (up to float rounding), and backward reaches A and
// B. Two consequences, both enforced or documented here:
//   * the effective weights must be rebuilt after every change of A/B and before every forward
//     that will be backpropagated (each backward frees the expression's graph): call
//     sync_lora(model) before each training forward (each micro-batch) and after optimizer steps,
//     loads and resumes. A forgotten sync in training fails loudly ("backward through the graph a
//     second time"); in evaluation it would use the previous step's adapters.
//   * LoRA dropout acts on the input of the low-rank path only, which no weight can express:
//     inject_lora refuses dropout > 0 (LoraWrapper::forward implements it, for callers that route
//     through the wrapper).
// LoraWrapper::forward is the literal LoRA computation (base output from the original weight plus
// the low-rank path, with dropout in training mode); it is what a layer-level forward hook
// should call once the layers offer one.
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
  double dropout = 0.0;
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

class LoraWrapper : public Module {
 public:
  enum class Kind { Linear, Conv1D, Conv2d };

  // `base` must be an nn::Linear, nn::Conv1D or nn::Conv2d (groups 1); `seed` draws A.
  LoraWrapper(std::shared_ptr<Module> base, int64_t rank, double alpha, double dropout, uint64_t seed);

  // y = base(x) + dropout(x) A^T B^T * scaling() in the base layer's layout (for Conv2d:
  // conv_B(conv_A(dropout(x))) with A using the base's kernel/stride/padding/dilation, B 1x1).
  Tensor forward(const Tensor& x) const;
  // The low-rank term alone (what forward adds to the base output).
  Tensor lora_delta(const Tensor& x) const;
  // scaling() * B A, shaped like the base weight ([out, in], Conv1D's [in, out], or
  // [out, in, kh, kw]); differentiable in A and B.
  Tensor delta_weight() const;

  Kind kind() const { return kind_; }
  int64_t rank() const { return rank_; }
  double scaling() const { return alpha_ / double(rank_); }
  const std::shared_ptr<Module>& base() const { return base_; }
  const Tensor& base_weight() const { return param("weight"); }  // the original W (frozen)
  const Tensor& lora_A() const { return a_->weight(); }
  const Tensor& lora_B() const { return b_->weight(); }

  // Points the base layer's weight slot at base_weight() + delta_weight() (see above), or back at
  // the original weight. merge() folds delta_weight() into the original weight and restores it.
  void sync();
  void restore_base();
  void merge();

 private:
  Tensor base_forward(const Tensor& x, const Tensor& weight) const;

  std::shared_ptr<Module> base_;
  Kind kind_;
  int64_t rank_;
  double alpha_, dropout_;
  bool has_bias_ = false;
  ops::Conv2dArgs conv_args_;  // the base's (Conv2d only)
  std::shared_ptr<LoraFactor> a_, b_;
};

// Wraps every matching Linear / Conv1D / Conv2d and freezes every other parameter (afterwards only
// lora_A/lora_B require grad). Returns the number of wrapped modules. Throws std::invalid_argument
// when a pattern matches no adaptable module (listing the closest module paths), when the model
// already has adapters, for a grouped Conv2d, rank < 1, or dropout > 0 (see above).
int64_t inject_lora(Module& model, const LoraConfig& config);

// Every wrapper in the tree with its module path, in tree order.
std::vector<std::pair<std::string, std::shared_ptr<LoraWrapper>>> lora_modules(const Module& model);

// Rebuilds every wrapped layer's effective weight from the current A and B (see above). Cheap
// (one r-rank product per wrapped layer); a no-op for a model without adapters.
void sync_lora(Module& model);

// Adapter-only save, PEFT's layout: dir/adapter_model.safetensors with keys
// "base_model.model.<path>.lora_A.weight" / ".lora_B.weight", and dir/adapter_config.json
// {"r", "lora_alpha", "lora_dropout", "target_modules", "peft_type": "LORA", ...}. Creates dir.
void save_lora_adapters(const Module& model, const std::string& dir, const LoraConfig& config);

// Injects adapters per dir/adapter_config.json into `model` (which must have none yet) and loads
// dir/adapter_model.safetensors into them. The modules wrapped are exactly those the file has
// tensors for (PEFT's "transformer." prefix of GPT-2 paths is accepted). Errors name the file and
// the tensor. Returns the saved config (its dropout is kept in the result, not applied).
LoraConfig load_lora_adapters(Module& model, const std::string& dir);

// Folds delta_weight() into every wrapped layer's weight and puts the original layers back into
// the tree: the model then has exactly its original parameter names and shapes (for export).
// The merged weights stay frozen (requires_grad false), as after PEFT's merge_and_unload.
void merge_lora(Module& model);

}  // namespace hone::nn
