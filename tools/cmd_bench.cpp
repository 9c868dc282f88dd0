// `hone bench gpt2 [--batch B] [--seq T] [--steps N] [--warmup W] [--device D] [--precision P]`:
// full training steps of GPT-2 124M (random init; forward, backward, AdamW), timed. On CUDA the
// defaults are llm.c's measurement (B=16, T=1024, bf16); the summary gives tokens/s, achieved
// TFLOP/s, MFU against the card's datasheet peak ("unknown" for a card not in
// engine/core/device_peaks.cpp) and peak device memory. Ends with one machine-readable line:
// median_ms_per_step=<number> tokens_per_s=<number> [mfu=<fraction>]
// `--profile` (CUDA): then traces 2 more steps with CUPTI and prints where the GPU's time went
// (busy vs waiting for the host, by kind of work, top kernels; engine/core/kernel_profile.h).
// `hone bench resnet [--batch B] [--steps N] [--device D] [--precision P]`: ResNet-18 with the
// CIFAR 3x3 stem on 32x32 images (forward, backward, SGD with momentum). Ends with
// median_ms_per_step=<n> images_per_s=<n>.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "engine/autograd/autocast_mode.h"
#include "engine/core/allocator.h"
#include "engine/core/device_peaks.h"
#include "engine/core/gpu_trace.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/train/trainer.h"
#include "kernels/philox.h"
#include "models/gpt2/gpt2.h"
#include "models/resnet/resnet.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/run_device.h"

#if defined(HONE_WITH_CUDA)
#include "kernels/cuda_api.h"
#endif

namespace hone::cli {

namespace {

struct BenchSetup {
  Device device;
  DType autocast = DType::F32;
  int64_t steps = 5, warmup = 1;
  int64_t profile_steps = 0;  // traced after the timed ones (--profile)
};

// Traces s.profile_steps more steps and prints the kernel profile (engine/core/kernel_profile.h).
// A tracer failure is reported, not fatal: the timings above stand.
void profile_steps(const BenchSetup& s, const std::function<Tensor()>& step) {
  if (s.profile_steps == 0) return;
  try {
    GpuTrace trace;
    trace.start();
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < s.profile_steps; ++i) (void)step().item();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const std::vector<GpuActivity> activity = trace.stop();
    std::printf(
        "%s", format_kernel_profile(summarize_gpu_activity(activity), s.profile_steps, ms / double(s.profile_steps), 25)
                  .c_str());
  } catch (const std::exception& e) {
    std::printf("[profile] failed: %s\n", e.what());
  }
}

// Runs warmup + steps training steps; `step` returns the loss tensor after backward and the
// optimizer step. Reading the loss synchronises with the device, so each time is a whole step.
std::vector<double> time_steps(const BenchSetup& s, const std::function<Tensor()>& step,
                               const std::function<void(int64_t, double, double)>& report) {
  std::vector<double> ms;
  for (int64_t i = 0; i < s.warmup + s.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double loss = step().item();
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    report(i, dt, loss);
    std::fflush(stdout);
    if (i >= s.warmup) ms.push_back(dt);
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

void print_device_memory(const Device& d) {
  if (!d.is_cuda()) return;
  std::printf("%s\n", cuda_peak_memory_text(d.index).c_str());
#if defined(HONE_WITH_CUDA)
  // HONE_GEMM_AUTOTUNE=1: what timing the heuristic's candidates changed.
  const kernels::cuda::GemmAutotuneStats t = kernels::cuda::gemm_autotune_stats();
  if (t.timed > 0)
    std::printf(
        "[gemm] autotune: %lld configurations timed, %lld took another algorithm than the heuristic's first "
        "(%.1f us less per call of each, summed)\n",
        (long long)t.timed, (long long)t.changed, t.saved_us_per_call);
#endif
}

const char* precision_name(DType autocast) {
  return autocast == DType::BF16 ? "bf16" : autocast == DType::F16 ? "fp16" : "fp32";
}

BenchSetup setup_from(const Args& a) {
  BenchSetup s;
  s.device = device_flag(a);
  // On a GPU the default is the precision people train in; on the CPU float32.
  s.autocast = autocast_dtype_of(a.str("precision", s.device.is_cuda() ? "bf16" : "fp32"), "--precision");
  s.steps = a.integer("steps", s.device.is_cuda() ? 10 : 5);
  s.warmup = a.integer("warmup", s.device.is_cuda() ? 3 : 1);
  if (s.steps < 1 || s.warmup < 0) throw std::invalid_argument("--steps must be >= 1 and --warmup >= 0");
  if (a.has("tf32")) set_allow_tf32(true);
  if (a.has("profile")) {
    if (!s.device.is_cuda()) throw std::invalid_argument("--profile traces GPU kernels: use it with --device cuda");
    if (const std::string why = GpuTrace::unavailable_reason(); !why.empty())
      throw std::invalid_argument("--profile: GPU tracing is unavailable: " + why);
    s.profile_steps = 2;
  }
  if (s.device.is_cuda()) {
    std::printf("device: %s (%s), precision %s%s\n", s.device.str().c_str(), device_name(s.device).c_str(),
                precision_name(s.autocast), allow_tf32() ? ", tf32 on" : "");
    cuda_reset_peak_memory(s.device.index);
  }
  return s;
}

int bench_resnet(const Args& a) {
  const BenchSetup s = setup_from(a);
  const int64_t B = a.integer("batch", s.device.is_cuda() ? 256 : 32);
  models::ResNetConfig c = models::ResNetConfig::from_name("resnet18", 10);
  c.stem = "cifar";
  manual_seed(1);
  models::ResNet model(c, 1);
  model.to(s.device);
  model.train(true);
  std::vector<ParamSpec> specs;
  for (auto& [n, p] : model.named_parameters()) specs.push_back({n, p, 1.0, 5e-4});
  OptimizerConfig oc;
  oc.kind = "sgd";
  oc.momentum = 0.9;
  auto opt = Optimizer::create(oc, specs);
  const Tensor x = Tensor::randn({B, 3, 32, 32}, 3).to(s.device);
  std::vector<int64_t> y(B);
  for (int64_t i = 0; i < B; ++i) y[i] = i % 10;
  const Tensor labels = Tensor::from_vector(y, {B}).to(s.device);
  std::printf("ResNet-18 (CIFAR stem) %.1fM parameters, batch %ld of 3x32x32, %ld timed steps after %ld warm-up\n",
              double(model.parameter_count()) / 1e6, long(B), long(s.steps), long(s.warmup));
  const std::function<Tensor()> step = [&] {
    opt->zero_grad();
    Tensor loss;
    {
      AutocastGuard autocast(s.autocast);
      loss = ops::cross_entropy(model.forward(x), labels);
    }
    loss.backward();
    opt->step(0.1);
    return loss;
  };
  const auto ms = time_steps(s, step, [&](int64_t i, double dt, double loss) {
    std::printf("step %ld%s: %.1f ms, loss %.4f, %.0f images/s\n", long(i + 1), i < s.warmup ? " (warm-up)" : "", dt,
                loss, double(B) / dt * 1e3);
  });
  const double median = ms[ms.size() / 2];
  print_device_memory(s.device);
  for (const std::string& line : ops::cuda_conv_algorithms()) std::printf("[cudnn] %s\n", line.c_str());
  profile_steps(s, step);
  std::printf("median_ms_per_step=%.3f images_per_s=%.1f\n", median, double(B) / median * 1e3);
  return 0;
}

int bench_gpt2(const Args& a) {
  const BenchSetup s = setup_from(a);
  const int64_t B = a.integer("batch", s.device.is_cuda() ? 16 : 4), T = a.integer("seq", s.device.is_cuda() ? 1024 : 256);
  models::Gpt2Config c;  // GPT-2 124M: 12 layers, 12 heads, 768 wide, 1024 positions, 50257 tokens
  c.n_layer = a.integer("layers", 12);
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.0;  // as llm.c and the PyTorch script measure
  if (T > c.n_positions) throw std::invalid_argument("--seq must be <= 1024");
  manual_seed(1);
  models::Gpt2 model(c, 1);
  model.to(s.device);
  model.train(true);
  std::vector<ParamSpec> specs;
  for (auto& [n, p] : model.named_parameters()) specs.push_back({n, p, 1.0, default_weight_decay(n, p) ? 0.1 : 0.0});
  OptimizerConfig oc;
  oc.beta2 = 0.95;
  auto opt = Optimizer::create(oc, specs);
  std::vector<int64_t> x(B * T), y(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    x[i] = int64_t(philox::uniform(7, 0, 2 * i) * 50257) % 50257;
    y[i] = int64_t(philox::uniform(7, 0, 2 * i + 1) * 50257) % 50257;
  }
  const Tensor ids = Tensor::from_vector(x, {B, T}).to(s.device), targets = Tensor::from_vector(y, {B, T}).to(s.device);
  const double n_params = double(model.parameter_count());
  // FLOPs of a training step: 6 per parameter per token (forward 2, backward 4) plus attention's
  // 12 * layers * width * T per token (the PaLM / llm.c accounting).
  const double flops = double(B * T) * (6.0 * n_params + 12.0 * double(c.n_layer * c.n_embd * T));
  std::printf("GPT-2 %.1fM parameters, batch %ld x seq %ld, %ld timed steps after %ld warm-up\n", n_params / 1e6,
              long(B), long(T), long(s.steps), long(s.warmup));
  const std::function<Tensor()> step = [&] {
    opt->zero_grad();
    Tensor loss;
    {
      AutocastGuard autocast(s.autocast);
      loss = model.loss(ids, targets);
    }
    loss.backward();
    opt->step(6e-4);
    return loss;
  };
  const auto ms =
      time_steps(s, step, [&](int64_t i, double dt, double loss) {
        std::printf("step %ld%s: %.1f ms, loss %.4f, %.0f tokens/s, %.1f GFLOP/s\n", long(i + 1),
                    i < s.warmup ? " (warm-up)" : "", dt, loss, double(B * T) / dt * 1e3, flops / dt / 1e6);
      });
  const double median = ms[ms.size() / 2];
  const double achieved_tflops = flops / median / 1e9;
  std::printf("median %.1f ms/step, %.0f tokens/s, %.1f GFLOP/s\n", median, double(B * T) / median * 1e3,
              flops / median / 1e6);
  std::string mfu_field;
  if (s.device.is_cuda()) {
    const MatmulPrecision mp = s.autocast != DType::F32 ? MatmulPrecision::BF16
                               : allow_tf32()           ? MatmulPrecision::TF32
                                                        : MatmulPrecision::FP32;
    const std::string name = device_name(s.device);
    if (const auto peak = gpu_peak_flops(name, mp)) {
      const double mfu = achieved_tflops / peak->tflops;
      std::printf("MFU %.1f%% (%.1f TFLOP/s of the %s's %.1f TFLOP/s %s peak)\n", 100 * mfu, achieved_tflops,
                  peak->card.c_str(), peak->tflops, precision_name(s.autocast));
      char buf[48];
      std::snprintf(buf, sizeof buf, " mfu=%.4f", mfu);
      mfu_field = buf;
    } else {
      std::printf("MFU unknown (%.1f TFLOP/s achieved; no peak FLOPs known for '%s')\n", achieved_tflops, name.c_str());
      mfu_field = " mfu=unknown";
    }
    print_device_memory(s.device);
  }
  profile_steps(s, step);
  std::printf("median_ms_per_step=%.3f tokens_per_s=%.1f%s\n", median, double(B * T) / median * 1e3, mfu_field.c_str());
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  const Args a = parse("bench", argc, argv, {"batch", "seq", "steps", "warmup", "layers", "device", "precision"},
                       {"tf32", "profile"});
  if (a.positional.size() == 1 && a.positional[0] == "resnet") return bench_resnet(a);
  if (a.positional.size() == 1 && a.positional[0] == "gpt2") return bench_gpt2(a);
  throw std::invalid_argument("expected a model to benchmark: gpt2 or resnet");
}

}  // namespace hone::cli
