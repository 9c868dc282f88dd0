// `hone bench gpt2 --batch B --seq T [--steps N] [--warmup W]`: full training steps of GPT-2
// 124M (random init; forward, backward, AdamW), timed. Ends with one machine-readable line:
// median_ms_per_step=<number> tokens_per_s=<number>
// `hone bench resnet [--batch B] [--steps N]`: ResNet-18 with the CIFAR 3x3 stem on 32x32 images
// (forward, backward, SGD with momentum). Ends with median_ms_per_step=<n> images_per_s=<n>.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "engine/optim/adamw.h"
#include "engine/train/trainer.h"
#include "kernels/philox.h"
#include "models/gpt2/gpt2.h"
#include "engine/optim/optimizer.h"
#include "models/resnet/resnet.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace hone::cli {

namespace {

int bench_resnet(const Args& a) {
  const int64_t B = a.integer("batch", 32), steps = a.integer("steps", 5), warmup = a.integer("warmup", 1);
  models::ResNetConfig c = models::ResNetConfig::from_name("resnet18", 10);
  c.stem = "cifar";
  manual_seed(1);
  models::ResNet model(c, 1);
  model.train(true);
  std::vector<ParamSpec> specs;
  for (auto& [n, p] : model.named_parameters()) specs.push_back({n, p, 1.0, 5e-4});
  OptimizerConfig oc;
  oc.kind = "sgd";
  oc.momentum = 0.9;
  auto opt = Optimizer::create(oc, specs);
  const Tensor x = Tensor::randn({B, 3, 32, 32}, 3);
  std::vector<int64_t> y(B);
  for (int64_t i = 0; i < B; ++i) y[i] = i % 10;
  const Tensor labels = Tensor::from_vector(y, {B});
  std::printf("ResNet-18 (CIFAR stem) %.1fM parameters, batch %ld of 3x32x32, %ld timed steps after %ld warm-up\n",
              double(model.parameter_count()) / 1e6, long(B), long(steps), long(warmup));
  std::vector<double> ms;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    opt->zero_grad();
    const Tensor loss = ops::cross_entropy(model.forward(x), labels);
    loss.backward();
    opt->step(0.1);
    const double l = loss.item();
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("step %ld%s: %.1f ms, loss %.4f, %.0f images/s\n", long(s + 1), s < warmup ? " (warm-up)" : "", dt, l,
                double(B) / dt * 1e3);
    std::fflush(stdout);
    if (s >= warmup) ms.push_back(dt);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("median_ms_per_step=%.3f images_per_s=%.1f\n", median, double(B) / median * 1e3);
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  const Args a = parse("bench", argc, argv, {"batch", "seq", "steps", "warmup", "layers", "device"});
  if (a.positional.size() == 1 && a.positional[0] == "resnet") {
    if (a.str("device", "cpu") != "cpu") throw std::invalid_argument("--device: only cpu is available yet");
    return bench_resnet(a);
  }
  if (a.positional.size() != 1 || a.positional[0] != "gpt2")
    throw std::invalid_argument("expected a model to benchmark: gpt2 or resnet");
  if (a.str("device", "cpu") != "cpu") throw std::invalid_argument("--device: only cpu is available yet");
  const int64_t B = a.integer("batch", 4), T = a.integer("seq", 256), steps = a.integer("steps", 5),
                warmup = a.integer("warmup", 1);
  models::Gpt2Config c;  // GPT-2 124M: 12 layers, 12 heads, 768 wide, 1024 positions, 50257 tokens
  c.n_layer = a.integer("layers", 12);
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.0;  // as llm.c and the PyTorch script measure
  if (T > c.n_positions) throw std::invalid_argument("--seq must be <= 1024");
  manual_seed(1);
  models::Gpt2 model(c, 1);
  model.train(true);
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (auto& [n, p] : model.named_parameters()) {
    params.push_back(p);
    decay.push_back(default_weight_decay(n, p));
  }
  AdamW opt(params, decay, AdamWConfig{6e-4, 0.9, 0.95, 1e-8, 0.1});
  std::vector<int64_t> x(B * T), y(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    x[i] = int64_t(philox::uniform(7, 0, 2 * i) * 50257) % 50257;
    y[i] = int64_t(philox::uniform(7, 0, 2 * i + 1) * 50257) % 50257;
  }
  const Tensor ids = Tensor::from_vector(x, {B, T}), targets = Tensor::from_vector(y, {B, T});
  const double n_params = double(model.parameter_count());
  // FLOPs of a training step: 6 per parameter per token (forward 2, backward 4) plus attention's
  // 12 * layers * width * T per token (the PaLM / llm.c accounting).
  const double flops = double(B * T) * (6.0 * n_params + 12.0 * double(c.n_layer * c.n_embd * T));
  std::printf("GPT-2 %.1fM parameters, batch %ld x seq %ld, %ld timed steps after %ld warm-up\n", n_params / 1e6,
              long(B), long(T), long(steps), long(warmup));
  std::vector<double> ms;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    const Tensor loss = model.loss(ids, targets);
    loss.backward();
    opt.step();
    const double l = loss.item();
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("step %ld%s: %.1f ms, loss %.4f, %.0f tokens/s, %.1f GFLOP/s\n", long(s + 1), s < warmup ? " (warm-up)" : "",
                dt, l, double(B * T) / dt * 1e3, flops / dt / 1e6);
    std::fflush(stdout);
    if (s >= warmup) ms.push_back(dt);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("median %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s\n", median, double(B * T) / median * 1e3,
              flops / median / 1e6);
  std::printf("median_ms_per_step=%.3f tokens_per_s=%.1f\n", median, double(B * T) / median * 1e3);
  return 0;
}

}  // namespace hone::cli
