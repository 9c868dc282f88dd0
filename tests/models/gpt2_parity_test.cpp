// GPT-2 parity with Hugging Face transformers: small random-weight models written by
// tests/fixtures/gpt2/make_fixtures.py (torch 1.13, transformers 4.40.2, float32), loaded with
// load_gpt2, must reproduce HF's logits, loss, every parameter gradient and a 10-step AdamW loss
// curve. A regression in any op on the path (embedding, layer norm, Conv1D, attention, GELU,
// cross-entropy, their backwards, AdamW) or in the model's wiring or the loaders shows here.
// Also: `hone logits` / `hone grads` end to end, and corrupt model folders.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/io/checkpoint.h"
#include "models/gpt2/gpt2.h"
#include "models/gpt2/gpt2_loader.h"
#include "parity_util.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
using test::compare;
using test::Diff;
using test::read_json;
using test::write_text;

const fs::path kFixtures = fs::path(HONE_SOURCE_DIR) / "tests" / "fixtures" / "gpt2";
const char* kTempPrefix = "hone_gpt2_parity_";

std::vector<fs::path> fixture_dirs() { return test::fixture_dirs_with(kFixtures, "curve.json"); }

std::string strip_prefix(const std::string& key) {
  return key.rfind("transformer.", 0) == 0 ? key.substr(12) : key;
}

constexpr double kLogitsTol = 1e-4;  // relative to max(1, max|expected|)
constexpr double kLossTol = 1e-5;    // absolute
constexpr double kGradTol = 1e-4;    // relative to the tensor's max|expected|
constexpr double kCurveTol = 1e-4;   // absolute, each step's loss

void check_logits(const Tensor& logits, const fs::path& dir, const std::string& tag) {
  const Tensor expected = io::load_npy((dir / "logits.npy").string());
  const Diff d = compare(logits, expected, tag + " logits");
  const double tol = kLogitsTol * std::max(1.0, d.max_ref);
  EXPECT_LE(d.max_abs, tol) << tag << ": logits differ from transformers' (max |expected| " << d.max_ref << ")";
  std::printf("[parity] %-24s %-6s logits   max abs err %.3g (max |expected| %.3g, tol %.3g)\n",
              dir.filename().c_str(), tag.c_str(), d.max_abs, d.max_ref, tol);
}

// Compares gradients named by the checkpoint's keys (as grads.safetensors holds them) with
// `actual`, keyed the same way. Both sets of names must agree.
void check_grads(const io::StateDict& actual, const fs::path& dir, const std::string& tag) {
  const io::StateDict expected = io::load_safetensors((dir / "grads.safetensors").string());
  test::expect_same_names(actual, expected, tag);
  double worst_rel = 0, worst_abs = 0;
  std::string worst;
  for (const auto& [key, e] : expected) {
    auto it = actual.find(key);
    if (it == actual.end()) continue;
    ASSERT_TRUE(it->second.defined()) << tag << ": no gradient for " << key;
    const Diff d = compare(it->second, e, tag + " grad " + key);
    const double tol = kGradTol * std::max(d.max_ref, 1e-6);
    EXPECT_LE(d.max_abs, tol) << tag << ": gradient of " << key << " differs (max |expected| " << d.max_ref << ")";
    if (d.rel() > worst_rel) worst_rel = d.rel(), worst_abs = d.max_abs, worst = key;
  }
  std::printf("[parity] %-24s %-6s grads    %zu tensors, worst relative err %.3g (%s, abs %.3g)\n",
              dir.filename().c_str(), tag.c_str(), expected.size(), worst_rel, worst.c_str(), worst_abs);
}

TEST(Gpt2Parity, FixturesPresent) {
  const auto dirs = fixture_dirs();
  ASSERT_GE(dirs.size(), 3u) << kFixtures << ": run tests/fixtures/gpt2/make_fixtures.py";
  bool bin = false, untied = false;
  for (const auto& d : dirs) {
    bin |= fs::exists(d / "pytorch_model.bin");
    untied |= !read_json(d / "config.json").value("tie_word_embeddings", true);
  }
  EXPECT_TRUE(bin) << "no fixture covers pytorch_model.bin";
  EXPECT_TRUE(untied) << "no fixture covers an untied head";
}

TEST(Gpt2Parity, LogitsAndLoss) {
  for (const auto& dir : fixture_dirs()) {
    SCOPED_TRACE(dir.string());
    const auto loaded = models::load_gpt2(dir.string());
    EXPECT_TRUE(loaded.report.unexpected.empty()) << loaded.report.summary();
    auto& model = *loaded.model;
    model.eval();
    const Tensor ids = io::load_npy((dir / "inputs.npy").string());
    const Tensor targets = io::load_npy((dir / "targets.npy").string());
    NoGradGuard no_grad;
    check_logits(model.forward(ids), dir, "model");
    const double loss = model.loss(ids, targets).item();
    const double expected = read_json(dir / "curve.json")["loss"].get<double>();
    EXPECT_NEAR(loss, expected, kLossTol);
    std::printf("[parity] %-24s model  loss     %.7f vs %.7f, err %.3g\n", dir.filename().c_str(), loss, expected,
                std::abs(loss - expected));
  }
}

TEST(Gpt2Parity, Gradients) {
  for (const auto& dir : fixture_dirs()) {
    SCOPED_TRACE(dir.string());
    const auto loaded = models::load_gpt2(dir.string());
    auto& model = *loaded.model;
    model.eval();
    const Tensor ids = io::load_npy((dir / "inputs.npy").string());
    const Tensor targets = io::load_npy((dir / "targets.npy").string());
    model.loss(ids, targets).backward();
    // hone's names are HF's without "transformer."; the head keeps "lm_head.".
    const io::StateDict expected = io::load_safetensors((dir / "grads.safetensors").string());
    std::map<std::string, std::string> key_of;
    for (auto& [k, t] : expected) key_of[strip_prefix(k)] = k;
    check_grads(test::grads_keyed_as(model.named_parameters(), key_of), dir, "model");
  }
}

// One fixture's logits, loss and every gradient on `device` under `autocast` (F32: off), against
// transformers' float32, with tolerances relative to the largest expected magnitude.
struct Tol {
  DType autocast;
  double logits, loss, grads;
};

void check_fixture_on(const fs::path& dir, const Device& device, const Tol& tol) {
  SCOPED_TRACE(dir.string() + " on " + device.str() + " " + dtype_name(tol.autocast));
  const auto loaded = models::load_gpt2(dir.string());
  auto& model = *loaded.model;
  model.to(device);
  model.eval();
  const Tensor ids = io::load_npy((dir / "inputs.npy").string());
  const Tensor targets = io::load_npy((dir / "targets.npy").string());
  Tensor logits, loss;
  {
    AutocastGuard autocast(tol.autocast);
    {
      NoGradGuard no_grad;
      logits = model.forward(ids);
    }
    loss = model.loss(ids, targets);
  }
  EXPECT_EQ(logits.device(), device);
  EXPECT_EQ(logits.dtype(), tol.autocast) << "the head's matmul runs in the autocast dtype";
  EXPECT_EQ(loss.dtype(), DType::F32) << "the loss is computed in float32";
  const Diff dl = compare(logits, io::load_npy((dir / "logits.npy").string()), "logits");
  EXPECT_LE(dl.max_abs, tol.logits * std::max(1.0, dl.max_ref));
  const double expected_loss = read_json(dir / "curve.json")["loss"].get<double>();
  EXPECT_NEAR(loss.item(), expected_loss, tol.loss);
  loss.backward();
  const io::StateDict expected = io::load_safetensors((dir / "grads.safetensors").string());
  std::map<std::string, std::string> key_of;
  for (auto& [k, t] : expected) key_of[strip_prefix(k)] = k;
  const io::StateDict grads = test::grads_keyed_as(model.named_parameters(), key_of);
  double worst = 0;
  std::string worst_key;
  for (const auto& [key, e] : expected) {
    const Tensor& g = grads.at(key);
    ASSERT_TRUE(g.defined()) << key;
    EXPECT_EQ(g.dtype(), DType::F32) << key << ": master weights get float32 gradients";
    EXPECT_EQ(g.device(), device) << key;
    const Diff d = compare(g, e, key);
    EXPECT_LE(d.rel(), tol.grads) << "gradient of " << key;
    if (d.rel() > worst) worst = d.rel(), worst_key = key;
  }
  std::printf("[parity] %-24s %-6s %-8s logits err %.3g (rel), loss err %.3g, worst grad rel err %.3g (%s)\n",
              dir.filename().c_str(), device.str().c_str(), dtype_name(tol.autocast),
              dl.max_abs / std::max(1.0, dl.max_ref), std::abs(loss.item() - expected_loss), worst, worst_key.c_str());
}

// About 3x the worst errors measured on the CPU over the fixtures (see the [parity] lines).
const Tol kBf16Tol{DType::BF16, 3e-2, 7e-3, 7.5e-2}, kF16Tol{DType::F16, 4e-3, 5e-4, 8e-3};

// Mixed precision (autocast bf16 / f16, float32 master weights) against transformers' float32:
// the logits, loss and gradients stay within the 16-bit tolerances.
TEST(Gpt2Parity, MixedPrecision) {
  for (const Tol& tol : {kBf16Tol, kF16Tol})
    for (const auto& dir : fixture_dirs()) check_fixture_on(dir, Device::cpu(), tol);
}

// The same fixtures on the GPU (tools/device-check.sh runs this): float32 within 1e-4 like the
// CPU, and bf16 / f16 within the same tolerances as on the CPU.
TEST(Gpt2Parity, OnCuda) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: GPT-2 parity on the GPU is skipped";
  for (const Tol& tol : {Tol{DType::F32, kLogitsTol, kLossTol, kGradTol}, kBf16Tol, kF16Tol})
    for (const auto& dir : fixture_dirs()) check_fixture_on(dir, Device::cuda(0), tol);
}

TEST(Gpt2Parity, AdamWCurve) {
  for (const auto& dir : fixture_dirs()) {
    SCOPED_TRACE(dir.string());
    const nlohmann::json curve = read_json(dir / "curve.json");
    const std::vector<double> expected = curve["losses"].get<std::vector<double>>();
    ASSERT_EQ(expected.size(), 11u);
    const auto loaded = models::load_gpt2(dir.string());
    auto& model = *loaded.model;
    model.eval();  // dropout off, as in the reference
    // The reference decayed the same parameters (its names with "transformer.").
    AdamW opt = test::adamw_as_in_curve(model.named_parameters(), curve, strip_prefix);
    const Tensor ids = io::load_npy((dir / "inputs.npy").string());
    const Tensor targets = io::load_npy((dir / "targets.npy").string());
    const double worst = test::run_adamw_curve(opt, [&] { return model.loss(ids, targets); }, expected, kCurveTol);
    std::printf("[parity] %-24s model  curve    %.6f -> %.6f over 10 steps, worst step err %.3g\n",
                dir.filename().c_str(), expected.front(), expected.back(), worst);
  }
}

TEST(Gpt2Parity, CliLogitsAndGrads) {
  HONE_PARITY_REQUIRE_HONE_BINARY(hone);
  test::TempDir tmp(kTempPrefix, "cli");
  for (const auto& dir : fixture_dirs()) {
    SCOPED_TRACE(dir.string());
    const std::string name = dir.filename().string();
    const fs::path logits = tmp.path / (name + "_logits.npy"), grads = tmp.path / (name + "_grads.safetensors");
    const fs::path log = tmp.path / (name + ".log");
    using test::quoted;
    const std::string common = " --model " + quoted(dir) + " --input " + quoted(dir / "inputs.npy");
    const std::string cmd1 = quoted(hone) + " logits" + common + " --out " + quoted(logits) + " 2>" + quoted(log);
    ASSERT_EQ(std::system(cmd1.c_str()), 0) << cmd1;
    check_logits(io::load_npy(logits.string()), dir, "cli");
    const std::string cmd2 = quoted(hone) + " grads" + common + " --targets " + quoted(dir / "targets.npy") +
                             " --out " + quoted(grads) + " 2>>" + quoted(log);
    ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
    check_grads(io::load_safetensors(grads.string()), dir, "cli");
    ASSERT_NO_FATAL_FAILURE(
        test::expect_loss_metadata(grads, read_json(dir / "curve.json")["loss"].get<double>(), kLossTol));
  }
}

// ---- corrupt model folders --------------------------------------------------------------------

// A temporary copy of a fixture's model files.
struct FolderCopy : test::FolderCopy {
  FolderCopy(const std::string& fixture_name, const std::string& tag)
      : test::FolderCopy(test::fixture_dir(kFixtures, fixture_name), kTempPrefix, tag) {}
};

// load_gpt2 must throw std::runtime_error whose message contains every one of `needles`.
std::string expect_load_error(const fs::path& folder, const std::vector<std::string>& needles) {
  return test::expect_refusal([&] { models::load_gpt2(folder.string()); }, needles, "[parity] error", folder,
                              ": load_gpt2 accepted a corrupt folder");
}

const char* kTied = "tiny_gelu_new_tied";

TEST(Gpt2ParityCorrupt, ConfigDisagreesWithTensorShapes) {
  FolderCopy f(kTied, "shapes");
  models::Gpt2Config wrong = models::Gpt2Config::from_json_file((f.path / "config.json").string());
  wrong.n_embd += 4;  // 28, still divisible by n_head 4
  f.edit_config([&](nlohmann::json& j) { j["n_embd"] = wrong.n_embd; });
  // The weights file the tensor came from, and the config file.
  const std::string msg = expect_load_error(f.path, {(f.path / "model.safetensors").string(), (f.path / "config.json").string()});
  // The message names one checkpoint tensor, with its stored shape and the shape the config implies.
  const io::StateDict sd = io::load_safetensors((f.path / "model.safetensors").string());
  std::map<std::string, Tensor> implied;
  for (auto& [n, t] : models::Gpt2(wrong).named_parameters()) implied[n] = t;
  bool named = false;
  for (const auto& [key, t] : sd) {
    if (msg.find("'" + key + "'") == std::string::npos) continue;
    named = true;
    EXPECT_NE(msg.find(shape_str(t.shape())), std::string::npos) << msg;
    ASSERT_TRUE(implied.count(strip_prefix(key))) << key;
    EXPECT_NE(msg.find(shape_str(implied[strip_prefix(key)].shape())), std::string::npos) << msg;
  }
  EXPECT_TRUE(named) << "no tensor named in: " << msg;
}

TEST(Gpt2ParityCorrupt, MissingWeightsFile) {
  FolderCopy f(kTied, "noweights");
  fs::remove(f.path / "model.safetensors");
  expect_load_error(f.path, {f.path.string()});
}

TEST(Gpt2ParityCorrupt, MissingConfig) {
  FolderCopy f(kTied, "noconfig");
  fs::remove(f.path / "config.json");
  expect_load_error(f.path, {(f.path / "config.json").string()});
}

TEST(Gpt2ParityCorrupt, TruncatedSafetensors) {
  FolderCopy f(kTied, "truncst");
  const fs::path w = f.path / "model.safetensors";
  fs::resize_file(w, fs::file_size(w) / 2);
  expect_load_error(f.path, {w.string()});
}

TEST(Gpt2ParityCorrupt, TruncatedTorchBin) {
  FolderCopy f("torchbin_one_layer", "truncbin");
  const fs::path w = f.path / "pytorch_model.bin";
  fs::resize_file(w, fs::file_size(w) - 4096);
  expect_load_error(f.path, {w.string()});
}

TEST(Gpt2ParityCorrupt, EmbdNotDivisibleByHeads) {
  FolderCopy f(kTied, "heads");
  f.edit_config([](nlohmann::json& j) { j["n_head"] = 5; });  // n_embd 24
  expect_load_error(f.path, {(f.path / "config.json").string(), "24", "5", "divisible"});
}

TEST(Gpt2ParityCorrupt, UnknownActivation) {
  FolderCopy f(kTied, "act");
  f.edit_config([](nlohmann::json& j) { j["activation_function"] = "swishy_gelu"; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "swishy_gelu"});
}

TEST(Gpt2ParityCorrupt, ConfigNotJson) {
  FolderCopy f(kTied, "notjson");
  write_text(f.path / "config.json", "n_embd = 24\nn_head: 4 {\n");
  expect_load_error(f.path, {(f.path / "config.json").string(), "JSON"});
}

TEST(Gpt2ParityCorrupt, ConfigWrongType) {
  FolderCopy f(kTied, "type");
  f.edit_config([](nlohmann::json& j) { j["n_layer"] = "two"; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "n_layer"});
}

}  // namespace
}  // namespace hone

namespace hone {
namespace {

TEST(Gpt2Config, UnsupportedArchitectureKeysAreRefusedAndNInnerIsHonoured) {
  const fs::path dir = fs::temp_directory_path() / ("hone-gpt2-config-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "config.json").string();
  std::ofstream(path) << R"({"model_type":"gpt2","n_layer":1,"n_head":2,"n_embd":8,"scale_attn_by_inverse_layer_idx":true})";
  try {
    models::Gpt2Config::from_json_file(path);
    ADD_FAILURE() << "accepted scale_attn_by_inverse_layer_idx";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("scale_attn_by_inverse_layer_idx"), std::string::npos) << e.what();
  }
  std::ofstream(path) << R"({"model_type":"gpt2","n_layer":1,"n_head":2,"n_embd":8,"n_inner":20,"vocab_size":11,"n_positions":4})";
  const models::Gpt2 m(models::Gpt2Config::from_json_file(path));
  for (auto& [name, t] : m.named_parameters())
    if (name == "h.0.mlp.c_fc.weight") {
      EXPECT_EQ(t.shape(), (Shape{8, 20}));
    }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hone
