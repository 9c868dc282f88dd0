// `hone logits` and `hone grads`: forward outputs and parameter gradients for checking against
// any peer. Gradients are named with the checkpoint's own keys and kept in its layout.
#include <cstdio>
#include <filesystem>

#include "engine/autograd/grad_mode.h"
#include "engine/io/checkpoint.h"
#include "engine/ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace hone::cli {

namespace {

Tensor load_ids(const std::string& path, const char* what) {
  const Tensor x = io::load_npy(path);
  if (x.dtype() != DType::I64 && x.dtype() != DType::I32)
    throw std::runtime_error(path + ": " + what + " must be int32 or int64, got " + dtype_name(x.dtype()));
  if (x.dim() != 2) throw std::runtime_error(path + ": " + what + " must be [B, T], got " + shape_str(x.shape()));
  return x.to(DType::I64);
}

// Whether the folder's checkpoint stores GPT-2 under "transformer." (HF) or bare names (hone run).
bool uses_transformer_prefix(const std::string& weights_path) {
  for (auto& [k, t] : io::load_checkpoint(weights_path))
    if (k.rfind("transformer.", 0) == 0) return true;
  return false;
}

}  // namespace

int cmd_logits(int argc, char** argv) {
  const Args a = parse("logits", argc, argv, {"model", "input", "out"});
  const auto m = open_gpt2(a.str("model"), false);
  const Tensor ids = load_ids(a.str("input"), "--input");
  NoGradGuard no_grad;
  const Tensor logits = m.model->forward(ids);
  io::save_npy(a.str("out"), logits.to(DType::F32).contiguous());
  std::fprintf(stderr, "logits %s -> %s\n", shape_str(logits.shape()).c_str(), a.str("out").c_str());
  return 0;
}

int cmd_grads(int argc, char** argv) {
  const Args a = parse("grads", argc, argv, {"model", "input", "targets", "out"});
  const auto m = open_gpt2(a.str("model"), false);
  const Tensor ids = load_ids(a.str("input"), "--input");
  const Tensor targets = load_ids(a.str("targets"), "--targets");
  if (targets.shape() != ids.shape())
    throw std::runtime_error(a.str("targets") + ": shape " + shape_str(targets.shape()) + " differs from --input's " +
                             shape_str(ids.shape()));
  const Tensor loss = m.model->loss(ids, targets);  // eval mode: dropout off
  loss.backward();
  const bool prefixed = uses_transformer_prefix(m.weights_path);
  io::StateDict grads;
  for (auto& [name, p] : m.model->named_parameters()) {
    const std::string key = prefixed && name.rfind("lm_head.", 0) != 0 ? "transformer." + name : name;
    grads[key] = p.grad().defined() ? p.grad().contiguous() : Tensor::zeros(p.shape());
  }
  io::save_safetensors(a.str("out"), grads, {{"loss", std::to_string(loss.item())}});
  std::fprintf(stderr, "loss %.6f; %zu gradients -> %s\n", loss.item(), grads.size(), a.str("out").c_str());
  return 0;
}

}  // namespace hone::cli
