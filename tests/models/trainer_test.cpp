// The trainer core: gradient accumulation normalised by target count, LR schedules, atomic
// checkpoints and bit-exact resume, on a tiny GPT-2 with data generated in the test.
#include "engine/train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "kernels/philox.h"
#include "models/gpt2/gpt2.h"

#if defined(HONE_CUDA_EMULATED)
#include "cuda_emu/counters.h"
#endif

namespace hone {
namespace {

namespace fs = std::filesystem;

models::Gpt2Config tiny_config(double dropout) {
  models::Gpt2Config c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.n_positions = 32;
  c.vocab_size = 50;
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = dropout;
  return c;
}

// Batches of random tokens; some targets are -100 so micro-batches carry different counts.
class SyntheticTask : public TrainTask {
 public:
  SyntheticTask(models::Gpt2& m, int64_t batch, int64_t T, uint64_t seed) : m_(m), batch_(batch), T_(T), seed_(seed) {}
  nn::Module& model() override { return m_; }
  TrainBatch next_batch() override { return make(position_++); }
  TrainBatch make(int64_t index) const {
    std::vector<int64_t> x(batch_ * T_), y(batch_ * T_);
    int64_t count = 0;
    for (int64_t i = 0; i < batch_ * T_; ++i) {
      const uint64_t k = uint64_t(index * batch_ * T_ + i);
      x[i] = int64_t(philox::uniform(seed_, 0, 2 * k) * 50) % 50;
      const float u = philox::uniform(seed_, 0, 2 * k + 1);
      // Row-dependent ignore rate: micro-batches end up with different target counts.
      const bool ignore = u < 0.1 + 0.6 * double((i / T_) % 4) / 4.0;
      y[i] = ignore ? -100 : (x[i] * 7 + 3) % 50;
      count += !ignore;
    }
    TrainBatch b;
    b.inputs = Tensor::from_vector(x, {batch_, T_});
    b.targets = Tensor::from_vector(y, {batch_, T_});
    b.count = count;
    b.work = batch_ * T_;
    return b;
  }
  Tensor mean_loss(const TrainBatch& b) override {
    expected_grads.push_back(ops::expected_loss_grad());
    return m_.loss(b.inputs, b.targets);
  }
  std::vector<double> expected_grads;  // ops::expected_loss_grad() at each mean_loss
  std::map<std::string, double> evaluate() override {
    NoGradGuard g;
    const TrainBatch b = make(100000);
    return {{"loss", m_.loss(b.inputs, b.targets).item()}};
  }
  int64_t data_position() const override { return position_; }
  void restore_data_position(int64_t p) override { position_ = p; }

 private:
  models::Gpt2& m_;
  int64_t batch_, T_;
  uint64_t seed_;
  int64_t position_ = 0;
};

// Serves one fixed batch of 32 rows as 4 micro-batches of 8 (or whole).
class SplitTask : public SyntheticTask {
 public:
  SplitTask(models::Gpt2& m, const TrainBatch& whole, int64_t parts)
      : SyntheticTask(m, 1, 1, 0), whole_(whole), parts_(parts) {}
  TrainBatch next_batch() override {
    const int64_t rows = whole_.inputs.size(0) / parts_;
    TrainBatch b;
    b.inputs = whole_.inputs.narrow(0, next_ * rows, rows).contiguous();
    b.targets = whole_.targets.narrow(0, next_ * rows, rows).contiguous();
    const auto t = b.targets.to_vector<int64_t>();
    b.count = std::count_if(t.begin(), t.end(), [](int64_t v) { return v != -100; });
    b.work = b.targets.numel();
    next_ = (next_ + 1) % parts_;
    return b;
  }

 private:
  TrainBatch whole_;
  int64_t parts_, next_ = 0;
};

TEST(Trainer, FourMicroBatchesOfEightEqualOneBatchOf32) {
  models::Gpt2 a(tiny_config(0.0), 7), b(tiny_config(0.0), 7);
  SyntheticTask source(a, 32, 12, 99);
  const TrainBatch whole = source.make(0);
  SplitTask accum(a, whole, 4), single(b, whole, 1);
  TrainerOptions o;
  o.steps = 1;
  o.lr = 1e-3;
  o.quiet = true;
  o.clip_grad_norm = 0;
  TrainerOptions oa = o;
  oa.grad_accum = 4;
  Trainer ta(accum, oa), tb(single, o);
  const double la = ta.train_step(0), lb = tb.train_step(0);
  EXPECT_NEAR(la, lb, 1e-6);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const auto ga = pa[i].second.grad().to_vector<float>(), gb = pb[i].second.grad().to_vector<float>();
    const auto va = pa[i].second.to_vector<float>(), vb = pb[i].second.to_vector<float>();
    for (size_t k = 0; k < ga.size(); ++k) {
      ASSERT_NEAR(ga[k], gb[k], 1e-6 + 1e-5 * std::fabs(gb[k])) << pa[i].first << "[" << k << "] gradient";
      ASSERT_NEAR(va[k], vb[k], 1e-6) << pa[i].first << "[" << k << "] after the update";
    }
  }
}

TEST(Trainer, ScheduleValues) {
  TrainerOptions o;
  o.steps = 100;
  o.lr = 1.0;
  o.warmup_steps = 10;
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 0), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 9), 1.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 10), 1.0);
  EXPECT_NEAR(scheduled_lr(o, 55), 0.1 + 0.9 * 0.5, 1e-12);  // halfway through the cosine
  EXPECT_NEAR(scheduled_lr(o, 100), 0.1, 1e-12);
  o.decay = "linear";
  EXPECT_NEAR(scheduled_lr(o, 55), 0.1 + 0.9 * 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr(o, 32), 0.1 + 0.9 * (1 - 22.0 / 90), 1e-12);
  o.decay = "constant";
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 80), 1.0);
}

TEST(Trainer, WeightDecaySkipsBiasesNormsAndEmbeddings) {
  models::Gpt2 m(tiny_config(0.0));
  for (auto& [name, p] : m.named_parameters()) {
    const bool expect = name.find("c_attn.weight") != std::string::npos || name.find("c_proj.weight") != std::string::npos ||
                        name.find("c_fc.weight") != std::string::npos;
    EXPECT_EQ(default_weight_decay(name, p), expect) << name;
  }
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("hone-trainer-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

TEST(Trainer, InterruptedAndResumedRunReproducesTheLossCurveBitForBit) {
  TrainerOptions o;
  o.steps = 8;
  o.grad_accum = 2;
  o.lr = 3e-3;
  o.warmup_steps = 2;
  o.save_every = 3;
  o.quiet = true;

  // Uninterrupted.
  manual_seed(5);
  models::Gpt2 m1(tiny_config(0.1), 3);
  SyntheticTask t1(m1, 4, 10, 11);
  TrainerOptions o1 = o;
  o1.out_dir = fresh_dir("full").string();
  const TrainSummary full = Trainer(t1, o1).run();
  ASSERT_EQ(full.losses.size(), 8u);

  // Interrupted after 5 steps (last checkpoint at step 3), then resumed in a fresh process-like
  // state: new model with different init, generator at another offset.
  const std::string dir = fresh_dir("resumed").string();
  {
    manual_seed(5);
    models::Gpt2 m2(tiny_config(0.1), 3);
    SyntheticTask t2(m2, 4, 10, 11);
    TrainerOptions o2 = o;
    o2.out_dir = dir;
    o2.stop_after = 5;
    const TrainSummary part = Trainer(t2, o2).run();
    ASSERT_EQ(part.losses.size(), 5u);
  }
  manual_seed(999);
  default_generator().offset = 12345;
  models::Gpt2 m3(tiny_config(0.1), 42);
  SyntheticTask t3(m3, 4, 10, 11);
  TrainerOptions o3 = o;
  o3.out_dir = dir;
  o3.resume = true;
  const TrainSummary rest = Trainer(t3, o3).run();
  ASSERT_EQ(rest.first_step, 3);
  ASSERT_EQ(rest.losses.size(), 5u);
  for (size_t i = 0; i < rest.losses.size(); ++i)
    EXPECT_EQ(rest.losses[i], full.losses[3 + i]) << "step " << 3 + i + 1;  // exact equality
  EXPECT_EQ(rest.final_eval.at("loss"), full.final_eval.at("loss"));

  // metrics.jsonl holds each step once.
  std::ifstream f(fs::path(dir) / "metrics.jsonl");
  std::string line;
  int train_lines = 0;
  while (std::getline(f, line)) train_lines += line.find("\"grad_norm\"") != std::string::npos;
  EXPECT_EQ(train_lines, 8);
  fs::remove_all(o1.out_dir);
  fs::remove_all(dir);
}

TEST(Trainer, CrashDuringCheckpointWriteLeavesThePreviousOneUsable) {
  const std::string dir = fresh_dir("crash").string();
  TrainerOptions o;
  o.steps = 2;
  o.quiet = true;
  o.out_dir = dir;
  models::Gpt2 m(tiny_config(0.0), 3);
  SyntheticTask t(m, 2, 8, 1);
  Trainer(t, o).run();  // checkpoint at step 2, `latest` points to it
  // A crash while writing step 3's files: a partial directory and a stray temp file.
  const fs::path partial = fs::path(dir) / "checkpoints" / "step-0000003";
  fs::create_directories(partial);
  std::ofstream(partial / "model.safetensors.tmp") << "garbage";
  std::ifstream latest(fs::path(dir) / "checkpoints" / "latest");
  std::string name;
  std::getline(latest, name);
  EXPECT_EQ(name, "step-0000002");
  models::Gpt2 m2(tiny_config(0.0), 9);
  SyntheticTask t2(m2, 2, 8, 1);
  TrainerOptions o2 = o;
  o2.steps = 3;
  o2.resume = true;
  Trainer tr(t2, o2);
  EXPECT_EQ(tr.load_latest_checkpoint(), 2);
  fs::remove_all(dir);
}

// ---- mixed precision ---------------------------------------------------------------------------

TrainSummary run_tiny(const std::string& precision, double init_scale, const std::string& out_dir = "",
                      int64_t steps = 12, int64_t stop_after = 0, bool resume = false, Device device = Device::cpu()) {
  manual_seed(5);
  models::Gpt2 m(tiny_config(0.0), 3);
  m.to(device);
  SyntheticTask t(m, 4, 10, 11);
  TrainerOptions o;
  o.steps = steps;
  o.lr = 3e-3;
  o.warmup_steps = 2;
  o.quiet = true;
  o.precision = precision;
  o.loss_scale.init_scale = init_scale;
  o.out_dir = out_dir;
  o.save_every = out_dir.empty() ? 0 : 2;
  o.stop_after = stop_after;
  o.resume = resume;
  return Trainer(t, o).run();
}

// The Trainer tells the loss the gradient its backward will get (ops::LossGradScaleGuard: on CUDA the
// cross-entropy forms that one in its forward): each micro-batch's weight (its share of the step's
// targets) times the loss scale.
TEST(Trainer, TellsTheLossTheGradientItsBackwardWillGet) {
  for (const std::string precision : {"fp32", "fp16"}) {
    manual_seed(5);
    models::Gpt2 m(tiny_config(0.0), 3);
    SyntheticTask t(m, 4, 10, 11);
    TrainerOptions o;
    o.steps = 1;
    o.grad_accum = 3;
    o.quiet = true;
    o.precision = precision;
    o.loss_scale.init_scale = 1024;
    Trainer(t, o).run();
    ASSERT_EQ(t.expected_grads.size(), 3u) << precision;
    int64_t total = 0;
    std::vector<int64_t> counts;
    for (int64_t i = 0; i < 3; ++i) counts.push_back(t.make(i).count), total += counts.back();
    const double scale = precision == "fp16" ? 1024 : 1;
    for (size_t i = 0; i < 3; ++i)
      EXPECT_DOUBLE_EQ(t.expected_grads[i], scale * double(counts[i]) / double(total)) << precision << " " << i;
    EXPECT_EQ(ops::expected_loss_grad(), 1.0) << "the scope ends with the forward";
  }
}

TEST(Trainer, Bf16AndFp16TrackTheFloat32LossCurve) {
  const TrainSummary f32 = run_tiny("fp32", 65536);
  ASSERT_EQ(f32.losses.size(), 12u);
  ASSERT_LT(f32.losses.back(), f32.losses.front() - 0.1) << "the reference run must learn something";
  // About 4x the largest per-step differences measured (bf16 3.8e-4, fp16 2.1e-5).
  for (const auto& [precision, tol] : {std::pair<std::string, double>{"bf16", 1.5e-3}, {"fp16", 1e-4}}) {
    const TrainSummary r = run_tiny(precision, 65536);
    ASSERT_EQ(r.losses.size(), f32.losses.size());
    double worst = 0;
    for (size_t i = 0; i < r.losses.size(); ++i) worst = std::max(worst, std::abs(r.losses[i] - f32.losses[i]));
    EXPECT_LE(worst, tol) << precision;
    EXPECT_GT(worst, 0.0) << precision << ": the run should not be bit-identical to float32";
    EXPECT_NEAR(r.final_eval.at("loss"), f32.final_eval.at("loss"), tol) << precision;
    std::printf("[mixed] %s: worst step loss difference from fp32 %.3g over 12 steps\n", precision.c_str(), worst);
  }
}

TEST(Trainer, Fp16OverflowSkipsTheStepAndBacksOffTheScale) {
  manual_seed(5);
  models::Gpt2 m(tiny_config(0.0), 3);
  SyntheticTask t(m, 4, 10, 11);
  TrainerOptions o;
  o.steps = 40;
  o.lr = 3e-3;
  o.quiet = true;
  o.precision = "fp16";
  o.loss_scale.init_scale = std::ldexp(1.0, 40);  // far beyond float16's range: the first steps overflow
  o.loss_scale.growth_interval = 1000;
  Trainer tr(t, o);
  std::vector<float> before;
  for (auto& [n, p] : m.named_parameters())
    for (float v : p.to_vector<float>()) before.push_back(v);
  tr.train_step(0);
  ASSERT_TRUE(tr.last_step_skipped()) << "2^40 times the loss must overflow float16 in the backward";
  EXPECT_EQ(tr.loss_scale(), std::ldexp(1.0, 39));
  std::vector<float> after;
  for (auto& [n, p] : m.named_parameters()) {
    EXPECT_FALSE(p.grad().defined() && std::isnan(p.grad().to_vector<float>()[0])) << n << ": gradients are cleared";
    for (float v : p.to_vector<float>()) after.push_back(v);
  }
  EXPECT_EQ(before, after) << "a skipped step leaves the weights alone";
  int skipped = 1;
  int64_t step = 1;
  while (tr.last_step_skipped() && step < 40) skipped += (tr.train_step(step++), tr.last_step_skipped());
  EXPECT_FALSE(tr.last_step_skipped()) << "the scale should come down into range within 40 steps";
  EXPECT_EQ(tr.loss_scale(), std::ldexp(1.0, 40 - skipped));
  std::printf("[mixed] fp16 from scale 2^40: %d skipped steps, then scale 2^%d\n", skipped, 40 - skipped);
}

TEST(Trainer, Fp16RunResumesBitForBitWithTheLossScale) {
  const std::string full_dir = fresh_dir("fp16-full").string(), dir = fresh_dir("fp16-resumed").string();
  const double scale = std::ldexp(1.0, 24);  // a few skipped steps before the checkpoint
  const TrainSummary full = run_tiny("fp16", scale, full_dir, 10);
  run_tiny("fp16", scale, dir, 10, /*stop_after=*/5);
  const TrainSummary rest = run_tiny("fp16", scale, dir, 10, 0, /*resume=*/true);
  ASSERT_EQ(rest.first_step, 4);
  for (size_t i = 0; i < rest.losses.size(); ++i) EXPECT_EQ(rest.losses[i], full.losses[4 + i]) << "step " << 5 + i;
  std::ifstream f(fs::path(full_dir) / "metrics.jsonl");
  std::string line;
  int skipped = 0, scaled = 0;
  while (std::getline(f, line)) skipped += line.find("\"skipped\":true") != std::string::npos,
                                 scaled += line.find("\"loss_scale\"") != std::string::npos;
  EXPECT_GT(skipped, 0) << "metrics.jsonl marks skipped steps";
  EXPECT_EQ(scaled, 10) << "every step logs its loss scale";
  fs::remove_all(full_dir);
  fs::remove_all(dir);
}

// The same run on the GPU (tools/device-check.sh runs this): float32 follows the CPU's loss curve
// to reduction-order differences, bf16/fp16 to their own precision; a checkpoint written from
// the GPU resumes on the CPU (checkpoints are device-independent).
TEST(Trainer, CudaRunTracksTheCpuRunAndItsCheckpointResumesOnTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: the GPU training run is skipped";
  for (const auto& [precision, tol] : {std::pair<std::string, double>{"fp32", 1e-4}, {"bf16", 2e-2}, {"fp16", 2e-3}}) {
    const TrainSummary cpu = run_tiny(precision, 65536);
    const TrainSummary gpu = run_tiny(precision, 65536, "", 12, 0, false, Device::cuda(0));
    ASSERT_EQ(gpu.losses.size(), cpu.losses.size());
    double worst = 0;
    for (size_t i = 0; i < cpu.losses.size(); ++i) worst = std::max(worst, std::abs(gpu.losses[i] - cpu.losses[i]));
    EXPECT_LE(worst, tol) << precision;
    std::printf("[cuda] %s: worst step loss difference GPU vs CPU %.3g over 12 steps\n", precision.c_str(), worst);
  }
  const std::string dir = fresh_dir("cuda-resume").string();
  const TrainSummary full = run_tiny("fp32", 65536, "", 10);
  run_tiny("fp32", 65536, dir, 10, /*stop_after=*/5, false, Device::cuda(0));
  const TrainSummary rest = run_tiny("fp32", 65536, dir, 10, 0, /*resume=*/true, Device::cpu());
  ASSERT_EQ(rest.first_step, 4);
  for (size_t i = 0; i < rest.losses.size(); ++i) EXPECT_NEAR(rest.losses[i], full.losses[4 + i], 1e-4) << "step " << 5 + i;
  fs::remove_all(dir);
}

// The tiny GPT-2 on the GPU with a trainer in `precision`, dropout, gradient accumulation and
// clipping on: the step whose costs the emulator tests below count.
struct TinyCudaRun {
  std::unique_ptr<models::Gpt2> model;
  std::unique_ptr<SyntheticTask> task;
  std::unique_ptr<Trainer> trainer;
  explicit TinyCudaRun(const std::string& precision) {
    manual_seed(5);
    model = std::make_unique<models::Gpt2>(tiny_config(0.1), 3);
    model->to(Device::cuda(0));
    task = std::make_unique<SyntheticTask>(*model, 4, 10, 11);
    TrainerOptions o;
    o.steps = 8;
    o.grad_accum = 2;
    o.clip_grad_norm = 1e-3;  // always clips
    o.quiet = true;
    o.precision = precision;
    trainer = std::make_unique<Trainer>(*task, o);
  }
};

// Issue #4's rule for the GPU: a training step makes the host wait for the device only to read the
// values it logs, the step's loss and its gradient norm (each one stream synchronisation, then two
// copies to the host: the value and the device's index-error record, which costs no further wait),
// with dropout, gradient accumulation and clipping on, in every precision; and once the allocator's
// cache is warm (three steps) a step neither cudaMallocs nor frees (kernels' scratch is stream-ordered
// cudaMallocAsync, served from the device's pool), and it uploads nothing from pageable memory (such a
// copy may synchronise with the stream). The CUDA emulator counts the runtime calls that wait
// (tests/cuda_emu/include/cuda_emu/counters.h).
TEST(Trainer, CudaStepWaitsForTheDeviceOnlyToReadTheLoggedLossAndNorm) {
#if !defined(HONE_CUDA_EMULATED)
  GTEST_SKIP() << "counting the host's waits for the device needs the CUDA emulator (build-emu)";
#else
  if (const char* c = std::getenv("HONE_CUDA_CACHING"); c && std::string(c) == "0")
    GTEST_SKIP() << "HONE_CUDA_CACHING=0: every free waits (ctest runs this case again with the cache on)";
  for (const std::string precision : {"fp32", "bf16", "fp16"}) {
    const TinyCudaRun run(precision);
    Trainer& tr = *run.trainer;
    const int64_t kWarm = 3;  // steps until the allocator's cache holds a block for every request
    for (int64_t step = 0; step < kWarm; ++step) tr.train_step(step);
    const emu::HostWaits before = emu::host_waits();
    const auto launches_before = emu::launches();
    const int64_t steps = 3;
    for (int64_t step = kWarm; step < kWarm + steps; ++step) tr.train_step(step);
    const emu::HostWaits after = emu::host_waits();
    // The kernels a step launches (the table for bf16, the training precision of GPUs): a measure
    // of what the step costs beyond its GEMMs, which run in (emulated) cuBLASLt.
    uint64_t launched = 0;
    for (const auto& [kernel, n] : emu::launches()) {
      const uint64_t d = n - (launches_before.count(kernel) ? launches_before.at(kernel) : 0);
      launched += d;
      if (d && precision == "bf16") std::printf("  %6.1f per step  %s\n", double(d) / double(steps), kernel.c_str());
    }
    const uint64_t sync = after.synchronize - before.synchronize, d2h = after.device_to_host - before.device_to_host,
                   frees = after.free - before.free, h2d = after.host_to_device - before.host_to_device,
                   mallocs = after.malloc - before.malloc, pool = after.malloc_async - before.malloc_async;
    std::printf(
        "[waits] %s, %lld steps: %llu synchronisations, %llu copies to the host, %llu frees, %llu cudaMallocs; "
        "%llu copies from pageable host memory, %llu cudaMallocAsyncs, %llu kernel launches\n",
        precision.c_str(), (long long)steps, (unsigned long long)sync, (unsigned long long)d2h,
        (unsigned long long)frees, (unsigned long long)mallocs, (unsigned long long)h2d, (unsigned long long)pool,
        (unsigned long long)launched);
    EXPECT_EQ(sync, uint64_t(2 * steps)) << precision;
    EXPECT_EQ(d2h, uint64_t(4 * steps)) << precision;
    EXPECT_EQ(frees, 0u) << precision;
    EXPECT_EQ(mallocs, 0u) << precision;
    // The step's uploads (token ids and targets, the optimizer's and the clipping's tensor tables)
    // all go through the page-locked ring: none from pageable memory, which may wait for the stream.
    EXPECT_EQ(h2d, 0u) << precision << ": copies to the device from pageable host memory";
    EXPECT_GT(after.host_to_device_pinned - before.host_to_device_pinned, 0u) << precision;
  }
#endif
}

// The GEMMs of a GPU training step are laid out for the tensor-core kernels: every matrix starts
// on a 16-byte boundary and its leading dimension is a multiple of 16 bytes (cuBLASLt runs anything
// else on kernels several times slower; for GPT-2 the 50257-way head is a quarter of the step's
// FLOPs). The tiny model's 50-token vocabulary is misaligned in every precision, as GPT-2's is: the
// logits and their gradient must be padded, and the head's weight copies and gradients laid out
// so that the vocabulary is not their leading dimension. The emulated cuBLASLt records each call.
TEST(Trainer, CudaStepGemmsAreAlignedForTensorCores) {
#if !defined(HONE_CUDA_EMULATED)
  GTEST_SKIP() << "reading the GEMMs' layouts needs the CUDA emulator (build-emu)";
#else
  for (const std::string precision : {"fp32", "bf16", "fp16"}) {
    const TinyCudaRun run(precision);
    Trainer& tr = *run.trainer;
    const size_t before = emu::gemm_calls().size();
    tr.train_step(0);
    const std::vector<emu::GemmCall> calls = emu::gemm_calls();
    ASSERT_GT(calls.size(), before + 8) << precision << ": the step's GEMMs were not recorded";
    for (size_t i = before; i < calls.size(); ++i) {
      const emu::GemmCall& c = calls[i];
      EXPECT_EQ(c.misaligned(), "") << precision << ": GEMM m=" << c.m << " n=" << c.n << " k=" << c.k
                                    << " batch=" << c.batch << " lda=" << c.lda << " ldb=" << c.ldb << " ldd=" << c.ldd
                                    << " epilogue=" << c.epilogue;
    }
  }
#endif
}

// cuBLASLt's heuristic is asked once per GEMM configuration (kernels/cuda/gemm.cpp keeps the prepared
// calls): a second step, with the same shapes, asks it nothing.
TEST(Trainer, CudaStepAsksCublasLtsHeuristicOnlyOnItsFirstStep) {
#if !defined(HONE_CUDA_EMULATED)
  GTEST_SKIP() << "counting cuBLASLt's heuristic queries needs the CUDA emulator (build-emu)";
#else
  for (const std::string precision : {"fp32", "bf16"}) {
    const TinyCudaRun run(precision);
    Trainer& tr = *run.trainer;
    tr.train_step(0);  // asks for the configurations no earlier test in this process used
    const uint64_t after_first = emu::heuristic_queries();
    const size_t calls_before = emu::gemm_calls().size();
    tr.train_step(1);
    EXPECT_GT(emu::gemm_calls().size(), calls_before + 8) << precision << ": the second step ran no GEMMs";
    EXPECT_EQ(emu::heuristic_queries(), after_first) << precision << ": the second step asked cuBLASLt's heuristic";
  }
#endif
}

// Under bf16/f16 autocast each weight is cast once (engine/ops/autocast_copy.h) and AdamW writes
// its new 16-bit copy in the pass that writes the new weights: after the first step a step casts
// no weight. The copy each forward reads is then the one AdamW wrote (not a new cast), and it holds
// exactly the new weights in 16 bits.
TEST(Trainer, CudaAdamWWritesTheWeightsAutocastCopies) {
#if !defined(HONE_CUDA_EMULATED)
  GTEST_SKIP() << "the CUDA training step runs on the CUDA emulator here (build-emu)";
#else
  for (const std::string precision : {"bf16", "fp16"}) {
    const DType dt = precision == "bf16" ? DType::BF16 : DType::F16;
    const TinyCudaRun run(precision);
    Trainer& tr = *run.trainer;
    tr.train_step(0);
    std::vector<std::pair<std::string, const Storage*> > copies;
    for (const auto& [n, p] : run.model->named_parameters()) {
      const AutocastCopy& c = p.storage()->autocast_copy();
      if (c.data) copies.emplace_back(n, c.data.get());
    }
    // Every matmul weight and bias (the tied wte through the head's transposed view); the norms
    // and wpe run in float32.
    EXPECT_EQ(copies.size(), size_t(2 * 8 + 1)) << precision;
    tr.train_step(1);
    for (const auto& [n, p] : run.model->named_parameters()) {
      const AutocastCopy& c = p.storage()->autocast_copy();
      if (!c.data) continue;
      bool kept = false;
      for (const auto& [cn, cs] : copies) kept |= cn == n && cs == c.data.get();
      EXPECT_TRUE(kept) << precision << ": " << n << " was cast again instead of reading AdamW's copy";
      EXPECT_EQ(c.version, p.storage()->version()) << precision << ": " << n << "'s copy is current";
      const Tensor copy = Tensor::make_view(c.data, p.offset(), p.shape(), p.strides(), dt);
      EXPECT_EQ(copy.to(DType::F32).to_vector<float>(), p.to(dt).to(DType::F32).to_vector<float>())
          << precision << ": " << n << "'s copy holds the new weights";
    }
  }
  const TinyCudaRun fp32("fp32");
  fp32.trainer->train_step(0);
  for (const auto& [n, p] : fp32.model->named_parameters())
    EXPECT_FALSE(p.storage()->autocast_copy().data) << n << ": float32 training keeps no 16-bit copy";
#endif
}

TEST(Trainer, RejectsAnUnknownPrecision) {
  models::Gpt2 m(tiny_config(0.0), 3);
  SyntheticTask t(m, 2, 8, 1);
  TrainerOptions o;
  o.precision = "fp8";
  try {
    Trainer tr(t, o);
    FAIL() << "precision fp8 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hone
