// `hone logits` and `hone grads`: forward outputs and parameter gradients for checking against
// any peer. Gradients are named with the checkpoint's own keys and kept in its layout.
//   GPT-2: --input ids [B, T] -> logits [B, T, V]; --targets [B, T] (-100 ignored).
//   BERT classifier: --input ids [B, T] (+ --attention-mask, --token-type-ids [B, T]) -> logits
//   [B, num_labels]; --targets labels [B].
// Both take --device cpu|cuda[:N] and --precision fp32|bf16|fp16 (autocast; outputs and
// gradients are written as float32).
#include <cstdio>
#include <filesystem>
#include <map>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/io/checkpoint.h"
#include "engine/ops/ops.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/model_source.h"
#include "tools/run_device.h"

namespace hone::cli {

namespace {

Tensor load_int(const std::string& path, const char* what, int64_t dims) {
  const Tensor x = io::load_npy(path);
  if (x.dtype() != DType::I64 && x.dtype() != DType::I32)
    throw std::runtime_error(path + ": " + what + " must be int32 or int64, got " + dtype_name(x.dtype()));
  if (x.dim() != dims)
    throw std::runtime_error(path + ": " + what + " must have " + std::to_string(dims) + " dims, got " + shape_str(x.shape()));
  return x.to(DType::I64);
}

// A model behind one interface for these two commands.
struct AnyModel {
  std::shared_ptr<nn::Module> module;
  std::function<Tensor()> logits;
  std::function<Tensor(const Tensor& targets)> loss;
  std::map<std::string, std::string> checkpoint_key;  // our parameter name -> checkpoint key
  int64_t target_dims = 2;
};

AnyModel open_any(const Args& a) {
  const std::string folder = a.str("model");
  const Device device = device_flag(a);
  AnyModel m;
  const Tensor ids = load_int(a.str("input"), "--input", 2);
  if (model_type_of(folder) == "gpt2") {
    auto g = open_gpt2(folder, false);
    auto model = g.model;
    place_model(*model, device);
    m.module = model;
    m.logits = [model, ids] { return model->forward(ids); };
    m.loss = [model, ids](const Tensor& t) { return model->loss(ids, t); };
    bool prefixed = false;
    for (auto& [k, t] : io::load_checkpoint(g.weights_path)) prefixed = prefixed || k.rfind("transformer.", 0) == 0;
    for (auto& [name, p] : model->named_parameters())
      m.checkpoint_key[name] = prefixed && name.rfind("lm_head.", 0) != 0 ? "transformer." + name : name;
    return m;
  }
  auto b = open_bert(folder, false);
  auto model = b.model;
  place_model(*model, device);
  models::BertInputs in;
  in.input_ids = ids;
  if (a.has("attention-mask")) in.attention_mask = load_int(a.str("attention-mask"), "--attention-mask", 2);
  if (a.has("token-type-ids")) in.token_type_ids = load_int(a.str("token-type-ids"), "--token-type-ids", 2);
  for (const Tensor* t : {&in.attention_mask, &in.token_type_ids})
    if (t->defined() && t->shape() != ids.shape())
      throw std::runtime_error("--attention-mask and --token-type-ids must match --input's shape " + shape_str(ids.shape()));
  m.module = model;
  m.logits = [model, in] { return model->logits(in); };
  m.loss = [model, in](const Tensor& t) {
    const Tensor logits = model->logits(in);
    return ops::cross_entropy(logits, t.to(logits.device()));
  };
  m.target_dims = 1;
  for (auto& [name, p] : model->named_parameters()) m.checkpoint_key[name] = name;
  for (const std::string& k : b.checkpoint_keys) {
    const std::string name = models::bert_parameter_name(k);
    if (!name.empty() && m.checkpoint_key.count(name)) m.checkpoint_key[name] = k;
  }
  return m;
}

}  // namespace

int cmd_logits(int argc, char** argv) {
  const Args a = parse("logits", argc, argv,
                       {"model", "input", "out", "attention-mask", "token-type-ids", "device", "precision"});
  AnyModel m = open_any(a);
  NoGradGuard no_grad;
  AutocastGuard autocast(precision_flag(a));
  const Tensor logits = m.logits();
  io::save_npy(a.str("out"), logits.to(DType::F32).contiguous());
  std::fprintf(stderr, "logits %s -> %s\n", shape_str(logits.shape()).c_str(), a.str("out").c_str());
  return 0;
}

int cmd_grads(int argc, char** argv) {
  const Args a = parse("grads", argc, argv,
                       {"model", "input", "targets", "out", "attention-mask", "token-type-ids", "device", "precision"});
  AnyModel m = open_any(a);
  const Tensor targets = load_int(a.str("targets"), "--targets", m.target_dims);
  Tensor loss;
  {
    AutocastGuard autocast(precision_flag(a));  // the forward only, as in training
    loss = m.loss(targets);                     // eval mode: dropout off
  }
  loss.backward();
  io::StateDict grads;
  for (auto& [name, p] : m.module->named_parameters())
    grads[m.checkpoint_key.at(name)] = p.grad().defined() ? p.grad().contiguous() : Tensor::zeros(p.shape());
  io::save_safetensors(a.str("out"), grads, {{"loss", std::to_string(loss.item())}});
  std::fprintf(stderr, "loss %.6f; %zu gradients -> %s\n", loss.item(), grads.size(), a.str("out").c_str());
  return 0;
}

}  // namespace hone::cli
