// The command line end to end, as a user runs it: fine-tune a small random-init GPT-2 with the
// real GPT-2 BPE on tiny shakespeare, watch the val loss fall, stop, resume, export, reload.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/device.h"
#include "engine/io/checkpoint.h"
#include "tests/tools/cli_run.h"

namespace fs = std::filesystem;

namespace hone {
namespace {

using testing_cli::hone_binary;
using testing_cli::run;

fs::path shared_data() {
  if (const char* d = std::getenv("HONE_DATA")) return d;
  return fs::path(HONE_SOURCE_DIR) / ".." / "shared" / "data";
}

std::vector<nlohmann::json> read_metrics(const fs::path& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

class FinetuneCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(hone_binary())) GTEST_SKIP() << "hone binary not built at " << hone_binary();
    const fs::path tok = shared_data() / "tokenizers" / "gpt2";
    text_ = shared_data() / "text" / "tinyshakespeare" / "input.txt";
    if (!fs::exists(tok / "encoder.json") || !fs::exists(text_))
      GTEST_SKIP() << "shared data not found at " << shared_data() << " (set HONE_DATA)";
    dir_ = fs::temp_directory_path() / ("hone-finetune-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    for (const char* f : {"encoder.json", "vocab.bpe"}) fs::copy_file(tok / f, dir_ / "model" / f);
    std::ofstream(dir_ / "model" / "config.json")
        << R"({"model_type":"gpt2","n_layer":2,"n_head":2,"n_embd":32,"n_positions":64,"vocab_size":50257,)"
        << R"("resid_pdrop":0.1,"embd_pdrop":0.1,"attn_pdrop":0.1})";
    std::ofstream(dir_ / "recipe.yaml") << "model: " << (dir_ / "model").string() << "\ninit: random\n"
                                        << "data:\n  train: " << text_.string() << "\n  val_fraction: 0.02\n"
                                        << "seq_len: 32\nbatch_size: 4\nsteps: 24\neval_every: 8\neval_batches: 2\n"
                                        << "save_every: 8\noptimizer:\n  lr: 3e-3\nschedule:\n  warmup_steps: 2\n"
                                        << "out_dir: " << (dir_ / "run").string() << "\n";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_, text_;
};

TEST_F(FinetuneCli, TrainsStopsResumesExportsAndReloads) {
  const std::string hone = hone_binary().string();
  const std::string recipe = (dir_ / "recipe.yaml").string();
  std::string out;
  ASSERT_EQ(run(hone + " finetune " + recipe + " stop_after=12", &out), 0) << out;
  EXPECT_NE(out.find("stopped after step 12"), std::string::npos) << out;
  ASSERT_EQ(run(hone + " finetune " + recipe + " resume=true", &out), 0) << out;
  EXPECT_NE(out.find("resumed from step 8"), std::string::npos) << out;

  // The val loss fell: first evaluation vs last.
  std::vector<double> val;
  int train_steps = 0;
  for (const auto& m : read_metrics(dir_ / "run")) {
    if (m.value("split", "") == "val") val.push_back(m.at("loss").get<double>());
    if (m.contains("grad_norm")) ++train_steps;
  }
  EXPECT_EQ(train_steps, 24) << "each step logged exactly once across stop and resume";
  ASSERT_GE(val.size(), 3u);
  EXPECT_LT(val.back(), val.front() - 0.5) << "val loss did not fall";

  // Export an HF folder and reload it: same logits as the run itself.
  const std::string exported = (dir_ / "export").string();
  ASSERT_EQ(run(hone + " export " + (dir_ / "run").string() + " --out " + exported, &out), 0) << out;
  EXPECT_TRUE(fs::exists(fs::path(exported) / "config.json"));
  EXPECT_TRUE(fs::exists(fs::path(exported) / "model.safetensors"));
  const auto sd = io::load_safetensors((fs::path(exported) / "model.safetensors").string());
  EXPECT_TRUE(sd.count("transformer.h.0.attn.c_attn.weight")) << "HF names expected";
  io::save_npy((dir_ / "x.npy").string(), Tensor::from_vector<int64_t>({464, 3290, 286, 262, 5043, 13}, {1, 6}));
  ASSERT_EQ(run(hone + " logits --model " + (dir_ / "run").string() + " --input " + (dir_ / "x.npy").string() +
                    " --out " + (dir_ / "a.npy").string(), &out), 0) << out;
  ASSERT_EQ(run(hone + " logits --model " + exported + " --input " + (dir_ / "x.npy").string() + " --out " +
                    (dir_ / "b.npy").string(), &out), 0) << out;
  EXPECT_EQ(io::load_npy((dir_ / "a.npy").string()).to_vector<float>(),
            io::load_npy((dir_ / "b.npy").string()).to_vector<float>());
  ASSERT_EQ(run(hone + " generate --model " + exported + " --prompt ROMEO: --max-tokens 5 --seed 3", &out), 0) << out;
  EXPECT_EQ(out.rfind("ROMEO:", 0), 0u) << out;
}

TEST_F(FinetuneCli, BadRecipesFailBeforeTraining) {
  const std::string hone = hone_binary().string();
  const std::string recipe = (dir_ / "recipe.yaml").string();
  std::string out;
  EXPECT_EQ(run(hone + " finetune " + recipe + " optimiser.lr=1", &out), 2);
  EXPECT_NE(out.find("did you mean 'optimizer.lr'"), std::string::npos) << out;
  EXPECT_EQ(run(hone + " finetune " + recipe + " steps=many", &out), 2);
  EXPECT_NE(out.find("'steps' expects an integer"), std::string::npos) << out;
  std::ofstream(dir_ / "bad.yaml") << "model: [1, 2\n";
  EXPECT_NE(run(hone + " finetune " + (dir_ / "bad.yaml").string(), &out), 0);
  EXPECT_NE(out.find("bad.yaml"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_ / "run" / "checkpoints")) << "nothing written for a bad recipe";
}

}  // namespace
}  // namespace hone

namespace hone {
namespace {

TEST_F(FinetuneCli, TheRunsRecipeYamlReproducesTheRun) {
  const std::string hone = hone_binary().string();
  std::string out;
  ASSERT_EQ(run(hone + " finetune " + (dir_ / "recipe.yaml").string() + " steps=4 eval_every=0 save_every=0", &out), 0) << out;
  const fs::path saved = dir_ / "run" / "recipe.yaml";
  ASSERT_TRUE(fs::exists(saved));
  EXPECT_GT(fs::file_size(saved), 100u) << "recipe.yaml is (nearly) empty";
  // Every resolved key is there and the file is a valid recipe on its own.
  ASSERT_EQ(run(hone + " finetune " + saved.string() + " out_dir=" + (dir_ / "again").string(), &out), 0) << out;
  const auto a = read_metrics(dir_ / "run"), b = read_metrics(dir_ / "again");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].contains("grad_norm")) {
      EXPECT_EQ(a[i].at("loss"), b[i].at("loss")) << "step " << i + 1;
    }
}

}  // namespace
}  // namespace hone

namespace hone {
namespace {

// `precision: bf16|fp16` from a recipe override: the run trains under autocast, fp16 logs its
// loss scale and marks the steps an overflow skipped; an unknown precision is refused up front.
TEST_F(FinetuneCli, MixedPrecisionFromTheRecipe) {
  const std::string hone = hone_binary().string();
  const std::string recipe = (dir_ / "recipe.yaml").string();
  std::string out;
  const std::string common = " steps=6 eval_every=3 save_every=0";
  ASSERT_EQ(run(hone + " finetune " + recipe + common + " precision=bf16 out_dir=" + (dir_ / "bf16").string(), &out), 0) << out;
  for (const auto& m : read_metrics(dir_ / "bf16")) EXPECT_FALSE(m.contains("loss_scale")) << m.dump();
  ASSERT_EQ(run(hone + " finetune " + recipe + common + " precision=fp16 loss_scale.init=1e12 out_dir=" +
                    (dir_ / "fp16").string(), &out), 0) << out;
  EXPECT_NE(out.find("loss scale"), std::string::npos) << "the progress line shows the scale: " << out;
  int skipped = 0, steps = 0;
  double last_scale = 0;
  for (const auto& m : read_metrics(dir_ / "fp16")) {
    if (!m.contains("grad_norm")) continue;
    ++steps;
    skipped += m.value("skipped", false);
    last_scale = m.at("loss_scale").get<double>();
  }
  EXPECT_EQ(steps, 6);
  EXPECT_GT(skipped, 0) << "a scale of 1e12 overflows float16";
  EXPECT_EQ(last_scale, 1e12 / double(1 << skipped));
  EXPECT_EQ(run(hone + " finetune " + recipe + " precision=fp8", &out), 2);
  EXPECT_NE(out.find("precision 'fp8' is not one of fp32, bf16, fp16"), std::string::npos) << out;
}

}  // namespace
}  // namespace hone

namespace hone {
namespace {

// `device: cuda`: without a device the run is refused up front with a clear line; with one, a
// bf16 run trains on the GPU, its checkpoint resumes on the CPU, and `hone logits --device cuda`
// agrees with the CPU's logits.
TEST_F(FinetuneCli, CudaDeviceFromTheRecipe) {
  const std::string hone = hone_binary().string();
  const std::string recipe = (dir_ / "recipe.yaml").string();
  std::string out;
  if (!cuda_available()) {
    EXPECT_EQ(run(hone + " finetune " + recipe + " device=cuda", &out), 2);
    EXPECT_TRUE(out.find("no CUDA device is visible") != std::string::npos ||
                out.find("this hone build has no CUDA support") != std::string::npos) << out;
    EXPECT_FALSE(fs::exists(dir_ / "run" / "checkpoints")) << "nothing written for a refused device";
    EXPECT_EQ(run(hone + " finetune " + recipe + " device=gpu", &out), 2);
    EXPECT_NE(out.find("device 'gpu' is not one of cpu, cuda, cuda:N"), std::string::npos) << out;
    GTEST_SKIP() << "no CUDA device: the GPU fine-tuning run is skipped (the refusal was checked)";
  }
  ASSERT_EQ(run(hone + " finetune " + recipe + " steps=8 stop_after=4 save_every=4 device=cuda precision=bf16", &out), 0)
      << out;
  EXPECT_NE(out.find("device: cuda:0"), std::string::npos) << out;
  EXPECT_NE(out.find("peak device memory"), std::string::npos) << out;
  ASSERT_EQ(run(hone + " finetune " + recipe + " steps=8 save_every=4 resume=true device=cpu precision=bf16", &out), 0)
      << out;
  EXPECT_NE(out.find("resumed from step 4"), std::string::npos) << out;
  io::save_npy((dir_ / "x.npy").string(), Tensor::from_vector<int64_t>({464, 3290, 286, 262, 5043, 13}, {1, 6}));
  const std::string common = " logits --model " + (dir_ / "run").string() + " --input " + (dir_ / "x.npy").string();
  ASSERT_EQ(run(hone + common + " --out " + (dir_ / "cpu.npy").string(), &out), 0) << out;
  ASSERT_EQ(run(hone + common + " --device cuda --out " + (dir_ / "gpu.npy").string(), &out), 0) << out;
  const auto a = io::load_npy((dir_ / "cpu.npy").string()).to_vector<float>();
  const auto b = io::load_npy((dir_ / "gpu.npy").string()).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  EXPECT_LT(worst, 1e-3) << "float32 logits on the GPU vs the CPU";

  // Gradients on the GPU (float32) against the CPU's, every parameter, named as in the checkpoint.
  const std::string grads = " grads --model " + (dir_ / "run").string() + " --input " + (dir_ / "x.npy").string() +
                            " --targets " + (dir_ / "x.npy").string();
  ASSERT_EQ(run(hone + grads + " --out " + (dir_ / "g_cpu.safetensors").string(), &out), 0) << out;
  ASSERT_EQ(run(hone + grads + " --device cuda --out " + (dir_ / "g_gpu.safetensors").string(), &out), 0) << out;
  const auto g_cpu = io::load_safetensors((dir_ / "g_cpu.safetensors").string());
  const auto g_gpu = io::load_safetensors((dir_ / "g_gpu.safetensors").string());
  ASSERT_EQ(g_cpu.size(), g_gpu.size());
  for (const auto& [name, t] : g_cpu) {
    ASSERT_TRUE(g_gpu.count(name)) << name;
    const auto a = t.to(DType::F64).to_vector<double>(), b = g_gpu.at(name).to(DType::F64).to_vector<double>();
    ASSERT_EQ(a.size(), b.size()) << name;
    double diff = 0, scale = 1e-6;
    for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::abs(a[i] - b[i])), scale = std::max(scale, std::abs(a[i]));
    EXPECT_LT(diff / scale, 1e-3) << "gradient of " << name << " on the GPU vs the CPU";
  }

  // Generation on the GPU under bf16 autocast: the prompt comes back, followed by new text (the
  // captured output also holds stderr's device and attention-path lines).
  ASSERT_EQ(run(hone + " generate --model " + (dir_ / "run").string() +
                    " --prompt ROMEO: --max-tokens 5 --seed 3 --device cuda --precision bf16", &out), 0) << out;
  EXPECT_NE(out.find("device: cuda:0"), std::string::npos) << out;
  const size_t prompt = out.find("ROMEO:");
  ASSERT_NE(prompt, std::string::npos) << out;
  EXPECT_GT(out.size(), prompt + std::string("ROMEO:").size() + 1) << out;
}

}  // namespace
}  // namespace hone
