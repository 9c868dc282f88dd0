// ResNet parity with PyTorch/torchvision (torch 1.13, torchvision 0.14, float32), from the fixtures
// written by tests/fixtures/resnet/make_fixtures.py:
//  - torchvision ResNet-18 and ResNet-50 (ImageNet stem, 7 classes) with weights and inputs from a
//    formula both sides compute bit for bit (see the script's docstring and formula_value below),
//  - a random CIFAR ResNet-20 saved as a torch zip .pth whose conv weights are overlapping views
//    into shared storages,
// must reproduce eval-mode logits (running statistics), train-mode logits (batch statistics), the
// cross-entropy loss and every parameter gradient (in full or as a summary), every BatchNorm's
// running statistics after that training forward, and (ResNet-20) a 5-step SGD loss curve.
// The real pre-trained CIFAR-10 ResNet-20 of ../shared/data ($HONE_DATA) loaded from .th and from
// .safetensors must give bit-identical logits on 8 MNIST images, matching PyTorch's; checkpoints
// that do not fit the architecture are refused naming the file and the tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/device.h"
#include "engine/io/checkpoint.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#if defined(HONE_WITH_CUDA)
#include "kernels/cuda_api.h"
#endif
#include "models/resnet/resnet.h"
#include "models/resnet/resnet_loader.h"
#include "parity_util.h"
#include "scoped_env.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
using test::compare;
using test::Diff;

const fs::path kFixtures = fs::path(HONE_SOURCE_DIR) / "tests" / "fixtures" / "resnet";

constexpr double kLogitsTol = 1e-4;   // relative to max(1, max|expected|)
constexpr double kLossTol = 1e-5;     // absolute
constexpr double kGradTol = 1e-4;     // relative to the tensor's max|expected gradient|
constexpr double kRunningTol = 1e-5;  // relative to max(1, max|expected|)
constexpr double kCurveTol = 1e-4;    // absolute, each step's loss

// ---- the formula (keep identical to make_fixtures.py) ----------------------------------------

uint32_t fnv1a32(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// u in [-0.5, 0.5) for element i of tensor `key`: exact in double.
double formula_u(uint32_t seed, uint64_t i) {
  uint32_t x = seed + uint32_t(i * 0x9E3779B9ull);
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return double(x >> 8) * 0x1p-24 - 0.5;
}

// Each value is one correctly rounded double operation on the exact u, then rounded to float.
Tensor formula_value(const std::string& key, const Shape& shape, int64_t fc_in = 0) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (key.ends_with("num_batches_tracked")) return Tensor::full(shape, 3, DType::I64);
  const std::string leaf = key.substr(key.rfind('.') + 1);
  double a = 0, b = 0;  // value = u * a, or (1 + u) * a when b is set: exact steps, no fma to differ
  if (key == "input") a = 4.0;
  else if (shape.size() == 4) a = std::sqrt(24.0 / double(shape[0] * shape[2] * shape[3]));
  else if (shape.size() == 2) a = std::sqrt(4.0 / double(shape[1]));
  else if (fc_in > 0) a = std::sqrt(4.0 / double(fc_in));
  else if (key.ends_with("bn3.weight")) a = 0.125, b = 1.0;
  else if (leaf == "weight" || leaf == "running_var") a = 1.0, b = 1.0;
  else if (leaf == "bias" || leaf == "running_mean") a = 0.5;
  else throw std::runtime_error("formula: no rule for " + key);
  const uint32_t seed = fnv1a32(key);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double u = formula_u(seed, uint64_t(i));
    v[size_t(i)] = b != 0 ? float((1.0 + u) * a) : float(u * a);
  }
  return Tensor::from_vector(v, shape);
}

void set_formula_weights(models::ResNet& model) {
  const std::string head = model.head_name();
  int64_t fc_in = 0;
  for (auto& [n, t] : model.named_parameters())
    if (n == head + ".weight") fc_in = t.size(1);
  ASSERT_GT(fc_in, 0);
  std::vector<std::pair<std::string, Tensor>> all = model.named_parameters();
  for (auto& nb : model.named_buffers()) all.push_back(nb);
  for (auto& [n, t] : all) model.set_parameter(n, formula_value(n, t.shape(), n == head + ".bias" ? fc_in : 0));
}

// ---- fixtures -----------------------------------------------------------------------------------

nlohmann::json read_json(const fs::path& p) {
  return test::read_json(p, "run tests/fixtures/resnet/make_fixtures.py");
}

fs::path fixture(const std::string& name) { return test::fixture_dir(kFixtures, name, "meta.json"); }

// Compares logits-like values relative to max(1, max|expected|); returns the relative error.
double check_scaled(const Tensor& actual, const Tensor& expected, double tol, const std::string& what) {
  const Diff d = compare(actual, expected, what);
  const double scale = std::max(1.0, d.max_ref);
  EXPECT_LE(d.max_abs, tol * scale) << what << " differs from PyTorch's (max |expected| " << d.max_ref << ")";
  return d.max_abs / scale;
}

const Tensor& get(const io::StateDict& sd, const std::string& key) {
  auto it = sd.find(key);
  if (it == sd.end()) throw std::runtime_error("expected.safetensors has no '" + key + "'");
  return it->second;
}

struct Errors {
  double eval = 0, train = 0, loss = 0, grad_full = 0, grad_summary = 0, running = 0;
  std::string worst_full, worst_summary, worst_running;
  int full = 0, summarised = 0, bns = 0;
};

// The model (weights and running statistics as the fixture's reference started from) against
// expected.safetensors: eval logits, then one training forward + backward.
Errors check_model(models::ResNet& model, const Tensor& x, const fs::path& dir, int64_t tracked_after) {
  const io::StateDict ex = io::load_safetensors((dir / "expected.safetensors").string());
  const nlohmann::json meta = read_json(dir / "meta.json");
  const std::string tag = dir.filename().string();
  Errors err;
  model.eval();
  {
    NoGradGuard no_grad;
    err.eval = check_scaled(model.forward(x), get(ex, "logits.eval"), kLogitsTol, tag + " eval logits");
  }
  model.train();
  for (Tensor p : model.parameters()) p.zero_grad();
  const Tensor logits = model.forward(x);
  const Tensor loss = ops::cross_entropy(logits, get(ex, "labels").to(x.device()));
  loss.backward();
  err.train = check_scaled(logits.detach(), get(ex, "logits.train"), kLogitsTol, tag + " train logits");
  err.loss = std::abs(loss.item() - meta["loss"].get<double>());
  EXPECT_LE(err.loss, kLossTol) << tag << ": loss " << loss.item() << " vs " << meta["loss"].get<double>();

  // Every parameter's gradient, in full or as its summary.
  std::set<std::string> seen;
  for (auto& [name, p] : model.named_parameters()) {
    SCOPED_TRACE(name);
    const Tensor g = p.grad();
    EXPECT_TRUE(g.defined()) << tag << ": no gradient for " << name;
    if (!g.defined()) continue;
    if (ex.count("grad." + name)) {
      seen.insert("grad." + name);
      const Diff d = compare(g, get(ex, "grad." + name), tag + " grad " + name);
      const double rel = d.rel();
      EXPECT_LE(d.max_abs, kGradTol * std::max(d.max_ref, 1e-12)) << tag << ": gradient of " << name;
      if (rel > err.grad_full) err.grad_full = rel, err.worst_full = name;
      ++err.full;
      continue;
    }
    const std::string key = "gsum." + name;
    if (!ex.count(key)) {
      ADD_FAILURE() << tag << ": the fixture has no gradient of " << name;
      continue;
    }
    seen.insert(key);
    const std::vector<double> s = get(ex, key).to_vector<double>();
    const std::vector<double> a = g.to_vector<double>();
    EXPECT_EQ(s.size(), 67u) << key;
    if (s.size() != 67u) continue;
    double sum = 0, abs_sum = 0, max_abs = 0;
    for (double v : a) sum += v, abs_sum += std::abs(v), max_abs = std::max(max_abs, std::abs(v));
    // The signed sum may cancel: its error is measured against sum |g|.
    double rel = std::abs(sum - s[0]) / std::max(s[1], 1e-30);
    rel = std::max(rel, std::abs(abs_sum - s[1]) / std::max(s[1], 1e-30));
    rel = std::max(rel, std::abs(max_abs - s[2]) / std::max(s[2], 1e-30));
    const size_t n = a.size();
    for (size_t j = 0; j < 64; ++j) rel = std::max(rel, std::abs(a[(j * n) / 64] - s[3 + j]) / std::max(s[2], 1e-30));
    EXPECT_LE(rel, kGradTol) << tag << ": gradient summary of " << name << " (sum " << sum << " vs " << s[0]
                             << ", sum|g| " << abs_sum << " vs " << s[1] << ", max|g| " << max_abs << " vs " << s[2]
                             << ")";
    if (rel > err.grad_summary) err.grad_summary = rel, err.worst_summary = name;
    ++err.summarised;
  }
  for (const auto& [k, t] : ex)
    if ((k.rfind("grad.", 0) == 0 || k.rfind("gsum.", 0) == 0) && !seen.count(k))
      ADD_FAILURE() << tag << ": the fixture's " << k << " matches no hone parameter";

  // Every BatchNorm's buffers after the one training forward.
  std::set<std::string> bn_expected, bn_seen;
  for (const auto& [k, t] : ex)
    if (k.rfind("running_mean.", 0) == 0) bn_expected.insert(k.substr(13));
  for (auto& [name, b] : model.named_buffers()) {
    const size_t dot = name.rfind('.');
    const std::string bn = name.substr(0, dot), leaf = name.substr(dot + 1);
    bn_seen.insert(bn);
    if (!bn_expected.count(bn)) continue;
    if (leaf == "num_batches_tracked") {
      EXPECT_EQ(int64_t(b.item()), tracked_after) << tag << ": " << name;
      EXPECT_EQ(int64_t(get(ex, leaf + "." + bn).item()), tracked_after) << tag << ": " << name;
      continue;
    }
    const Diff d = compare(b, get(ex, leaf + "." + bn), tag + " " + name);
    const double rel = d.max_abs / std::max(1.0, d.max_ref);
    EXPECT_LE(rel, kRunningTol) << tag << ": " << name << " after the training forward";
    if (rel > err.running) err.running = rel, err.worst_running = name;
  }
  EXPECT_EQ(bn_seen, bn_expected) << tag << ": BatchNorm layers differ from torchvision's";
  err.bns = int(bn_expected.size());
  std::printf("[resnet] %-16s eval logits rel err %.3g, train logits %.3g, loss err %.3g\n", tag.c_str(), err.eval,
              err.train, err.loss);
  std::printf("[resnet] %-16s grads: %d full (worst rel %.3g, %s), %d summarised (worst rel %.3g, %s)\n", tag.c_str(),
              err.full, err.grad_full, err.worst_full.c_str(), err.summarised, err.grad_summary,
              err.worst_summary.c_str());
  std::printf("[resnet] %-16s running stats of %d BatchNorms: worst rel err %.3g (%s)\n", tag.c_str(), err.bns,
              err.running, err.worst_running.c_str());
  return err;
}

Tensor formula_input(const nlohmann::json& meta) {
  return formula_value("input", meta["input_shape"].get<std::vector<int64_t>>());
}

void check_torchvision(const std::string& arch) {
  const fs::path dir = fixture(arch);
  const nlohmann::json meta = read_json(dir / "meta.json");
  const auto t0 = std::chrono::steady_clock::now();
  models::ResNet model(models::ResNetConfig::from_name(arch, meta["num_classes"].get<int64_t>()));
  ASSERT_EQ(model.config().stem, "imagenet");
  set_formula_weights(model);
  check_model(model, formula_input(meta), dir, 4);
  std::printf("[resnet] %-16s %lld parameters, %.2f s\n", arch.c_str(), (long long)model.parameter_count(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// ---- the formula itself -------------------------------------------------------------------------

TEST(ResNetParity, FormulaIsExact) {
  // Spot values of the formula, as make_fixtures.py computes them (numpy, float64 -> float32).
  EXPECT_EQ(fnv1a32(""), 2166136261u);
  EXPECT_EQ(fnv1a32("a"), 0xE40C292Cu);
  // Values printed by make_fixtures.formula_value (float32, as hex).
  const std::vector<float> w = formula_value("conv1.weight", {64, 3, 7, 7}).to_vector<float>();
  ASSERT_EQ(w.size(), 9408u);
  EXPECT_EQ(w[0], 0x1.45a8dap-5f);
  EXPECT_EQ(w[1], -0x1.206d1cp-7f);
  EXPECT_EQ(w[9407], -0x1.96b2fep-7f);
  double sum = 0;
  for (float f : w) sum += f;
  EXPECT_DOUBLE_EQ(sum, -0.39984291900827884);
  EXPECT_EQ(formula_value("layer1.0.bn1.running_var", {64}).to_vector<float>()[5], 0x1.129a18p-1f);
  EXPECT_EQ(formula_value("input", {4, 3, 45, 61}).to_vector<float>()[12345], 0x1.c8c490p-1f);
  EXPECT_EQ(formula_value("layer2.3.bn3.weight", {512}).to_vector<float>()[100], 0x1.150ea4p-3f);
}

// ---- torchvision ResNet-18 / ResNet-50 ----------------------------------------------------------

TEST(ResNetParity, Resnet18) { check_torchvision("resnet18"); }
TEST(ResNetParity, Resnet50) { check_torchvision("resnet50"); }

// ---- CIFAR ResNet-20 with random weights from a .pth ----------------------------------------------

TEST(ResNetParity, Resnet20RandomPth) {
  const fs::path dir = fixture("resnet20_random");
  const nlohmann::json meta = read_json(dir / "meta.json");
  const auto loaded = models::load_resnet((dir / "model.pth").string(), models::ResNetConfig::from_name("resnet20", 10), 0);
  EXPECT_TRUE(loaded.report.unexpected.empty() && loaded.report.missing.empty()) << loaded.report.summary();
  EXPECT_EQ(loaded.model->head_name(), "linear");
  check_model(*loaded.model, formula_input(meta), dir, 6);
}

// The same fixture on the GPU (float32, TF32 off): convolutions through cuDNN (or our direct
// kernels in a build without it, as on the CUDA emulator), BatchNorm, pooling and the loss on CUDA
// against PyTorch's CPU numbers, gradients and running statistics included.
TEST(ResNetParity, Resnet20RandomPthOnCuda) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: ResNet parity on the GPU is skipped";
  const fs::path dir = fixture("resnet20_random");
  const nlohmann::json meta = read_json(dir / "meta.json");
  const auto loaded = models::load_resnet((dir / "model.pth").string(), models::ResNetConfig::from_name("resnet20", 10), 0);
  loaded.model->to(Device::cuda(0));
  check_model(*loaded.model, formula_input(meta).to(Device::cuda(0)), dir, 6);
#if defined(HONE_WITH_CUDA)
  // cuDNN's algorithms were measured on the first calls (cudnnFind*AlgorithmEx), and only deterministic
  // ones taken: the emulator ranks the gradient passes' atomic ALGO_0 fastest and flags it.
  if (hone::kernels::cuda::conv2d_uses_cudnn() && !std::getenv("HONE_CUDNN_BENCHMARK")) {
    const std::vector<std::string> choices = hone::kernels::cuda::cudnn_conv_choices();
    ASSERT_FALSE(choices.empty());
    std::set<std::string> passes;
    for (const std::string& line : choices) {
      EXPECT_NE(line.find("measured"), std::string::npos) << line;
      if (line.rfind("data gradient", 0) == 0) {
        EXPECT_EQ(line.find("algo 0"), std::string::npos) << line;
      }
      passes.insert(line.substr(0, line.find(' ')));
    }
    EXPECT_EQ(passes, (std::set<std::string>{"forward", "data", "filter"}));
    // HONE_DETERMINISTIC=0: the same shapes measured again, the atomic ALGO_0 now allowed and taken.
    {
      const test::ScopedEnv allow("HONE_DETERMINISTIC", "0");
      const Tensor x = formula_input(meta).to(Device::cuda(0));
      const Tensor labels = Tensor::zeros({x.shape()[0]}, DType::I64).to(Device::cuda(0));
      ops::cross_entropy(loaded.model->forward(x), labels).backward();
    }
    bool atomic_taken = false;
    for (const std::string& line : hone::kernels::cuda::cudnn_conv_choices())
      if (line.rfind("data gradient", 0) == 0 && line.find("(HONE_DETERMINISTIC=0)") != std::string::npos)
        atomic_taken |= line.find(": algo 0,") != std::string::npos;
    EXPECT_TRUE(atomic_taken) << "no data gradient took the non-deterministic algorithm it was allowed";
  }
#endif
}

TEST(ResNetParity, Resnet20SgdCurve) {
  const fs::path dir = fixture("resnet20_random");
  const nlohmann::json meta = read_json(dir / "meta.json");
  const std::vector<double> expected = meta["curve"].get<std::vector<double>>();
  ASSERT_EQ(expected.size(), 6u);
  const io::StateDict ex = io::load_safetensors((dir / "expected.safetensors").string());
  const Tensor labels = get(ex, "labels");
  const Tensor x = formula_input(meta);
  auto model = models::load_resnet((dir / "model.pth").string(), models::ResNetConfig::from_name("resnet20", 10), 0).model;
  model->train();
  std::vector<ParamSpec> specs;
  for (auto& [name, p] : model->named_parameters()) {
    ParamSpec s;
    s.name = name;
    s.param = p;
    s.weight_decay = meta["weight_decay"].get<double>();  // torch.optim.SGD(model.parameters(), weight_decay=...)
    specs.push_back(s);
  }
  OptimizerConfig oc;
  oc.kind = "sgd";
  oc.momentum = meta["momentum"].get<double>();
  auto opt = Optimizer::create(oc, specs);
  double worst = 0;
  for (size_t step = 0; step < expected.size(); ++step) {
    opt->zero_grad();
    const Tensor loss = ops::cross_entropy(model->forward(x), labels);
    const double l = loss.item();
    EXPECT_NEAR(l, expected[step], kCurveTol) << "loss after " << step << " SGD steps";
    worst = std::max(worst, std::abs(l - expected[step]));
    if (step + 1 == expected.size()) break;
    loss.backward();
    opt->step(meta["lr"].get<double>());
  }
  std::printf("[resnet] resnet20_random  SGD curve %.6f -> %.6f over 5 steps, worst step err %.3g\n", expected.front(),
              expected.back(), worst);
}

// ---- the real pre-trained CIFAR-10 ResNet-20 -------------------------------------------------------

std::string data_dir() {
  const char* env = std::getenv("HONE_DATA");
  return env && *env ? std::string(env) : std::string(HONE_SOURCE_DIR) + "/../shared/data";
}

fs::path real_weights(const std::string& ext) {
  return fs::path(data_dir()) / "weights" / "resnet-cifar10" / ("resnet20-12fca82f" + ext);
}

#define REQUIRE_REAL_RESNET20()                                                                           \
  if (!fs::exists(real_weights(".th")) || !fs::exists(real_weights(".safetensors")))                     \
  GTEST_SKIP() << "no real ResNet-20 at " << real_weights(".th").parent_path()                            \
               << " (set HONE_DATA to the shared data folder to run this test)"

TEST(ResNetParity, RealResnet20ThAndSafetensorsMatchPyTorch) {
  REQUIRE_REAL_RESNET20();
  const fs::path dir = fixture("resnet20_real");
  const Tensor x = io::load_npy((dir / "inputs.npy").string());
  const Tensor expected = io::load_npy((dir / "logits.npy").string());
  const auto cfg = models::ResNetConfig::from_name("resnet20", 10);
  Tensor logits[2];
  int i = 0;
  for (const char* ext : {".th", ".safetensors"}) {
    SCOPED_TRACE(ext);
    const auto loaded = models::load_resnet(real_weights(ext).string(), cfg, 0);
    EXPECT_TRUE(loaded.report.unexpected.empty() && loaded.report.missing.empty()) << loaded.report.summary();
    loaded.model->eval();
    NoGradGuard no_grad;
    logits[i] = loaded.model->forward(x);
    const double rel = check_scaled(logits[i], expected, kLogitsTol, std::string("real resnet20 ") + ext);
    std::printf("[resnet] real resnet20 %-12s logits rel err %.3g vs PyTorch\n", ext, rel);
    ++i;
  }
  ASSERT_EQ(logits[0].shape(), logits[1].shape());
  EXPECT_EQ(std::memcmp(logits[0].contiguous().data<float>(), logits[1].contiguous().data<float>(),
                        size_t(logits[0].numel()) * sizeof(float)),
            0)
      << ".th and .safetensors give different logits";
  // The same predictions as PyTorch.
  const auto argmax = read_json(dir / "meta.json")["argmax"].get<std::vector<int64_t>>();
  const std::vector<float> v = logits[0].to_vector<float>();
  for (size_t r = 0; r < argmax.size(); ++r)
    EXPECT_EQ(std::max_element(v.begin() + r * 10, v.begin() + r * 10 + 10) - (v.begin() + r * 10), argmax[r]);
}

// load_resnet must throw std::runtime_error whose message contains every one of `needles`.
std::string expect_refused(const fs::path& file, const std::string& arch, const std::vector<std::string>& needles) {
  return test::expect_refusal(
      [&] { models::load_resnet(file.string(), models::ResNetConfig::from_name(arch, 10), 0); }, needles,
      "[resnet] refused", file, ": load_resnet accepted it as " + arch);
}

// Loading the right file after a refusal gives exactly the logits of a load with no refusal
// before it: a refused load leaves nothing behind (load_resnet builds a fresh model each time, and
// the checkpoint's mapping is copy-on-write).
void expect_clean_reload(const fs::path& file, const Tensor& x, const Tensor& reference) {
  const auto again = models::load_resnet(file.string(), models::ResNetConfig::from_name("resnet20", 10), 0);
  again.model->eval();
  NoGradGuard no_grad;
  const Tensor y = again.model->forward(x);
  EXPECT_EQ(std::memcmp(y.contiguous().data<float>(), reference.contiguous().data<float>(),
                        size_t(y.numel()) * sizeof(float)),
            0);
}

TEST(ResNetParity, CheckpointThatDoesNotFitIsRefused) {
  REQUIRE_REAL_RESNET20();
  const Tensor x = io::load_npy((fixture("resnet20_real") / "inputs.npy").string());
  const fs::path th = real_weights(".th");
  Tensor reference;
  {
    const auto good = models::load_resnet(th.string(), models::ResNetConfig::from_name("resnet20", 10), 0);
    good.model->eval();
    NoGradGuard no_grad;
    reference = good.model->forward(x);
  }
  // ResNet-20's weights as ResNet-32: layer1.3 .. layer3.4 are missing.
  std::string msg = expect_refused(th, "resnet32", {th.string(), "resnet32", "'layer"});
  // As a torchvision ResNet-18: no fc head.
  expect_refused(th, "resnet18", {th.string(), "fc.weight"});
  expect_clean_reload(th, x, reference);

  // A safetensors copy with one tensor's shape edited (same element count, so the file itself is
  // valid): the header is rewritten with layer2.0.conv1.weight as [16, 32, 3, 3].
  test::TempDir tmp("hone_resnet_parity_", "shape");
  const fs::path src = real_weights(".safetensors"), bad = tmp.path / "resnet20-edited.safetensors";
  std::ifstream in(src, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 8u);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(std::string(bytes.data() + 8, size_t(hlen)));
  const std::string key = "module.layer2.0.conv1.weight";
  ASSERT_TRUE(header.contains(key)) << "no " << key << " in " << src;
  ASSERT_EQ(header[key]["shape"], nlohmann::json({32, 16, 3, 3}));
  header[key]["shape"] = {16, 32, 3, 3};
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  {
    std::ofstream out(bad, std::ios::binary);
    const uint64_t n = h.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(h.data(), std::streamsize(h.size()));
    out.write(bytes.data() + 8 + hlen, std::streamsize(bytes.size() - 8 - hlen));
  }
  msg = expect_refused(bad, "resnet20",
                       {bad.string(), "layer2.0.conv1.weight", shape_str({16, 32, 3, 3}), shape_str({32, 16, 3, 3})});
  expect_clean_reload(src, x, reference);
}

TEST(ResNetParity, RealResnet20NewHeadKeepsBackbone) {
  REQUIRE_REAL_RESNET20();
  const auto loaded = models::load_resnet(real_weights(".th").string(), models::ResNetConfig::from_name("resnet20", 10), 7);
  EXPECT_EQ(loaded.model->config().num_classes, 7);
  bool noted = false;
  for (const auto& n : loaded.report.notes) noted |= n.find("replaced") != std::string::npos;
  EXPECT_TRUE(noted) << loaded.report.summary();
  // The backbone is the checkpoint's: layer3.2.bn2.running_var as stored.
  const io::StateDict sd = io::load_safetensors(real_weights(".safetensors").string());
  for (auto& [n, t] : loaded.model->named_buffers())
    if (n == "layer3.2.bn2.running_var") {
      EXPECT_EQ(t.to_vector<float>(), get(sd, "module." + n).to_vector<float>());
    }
  loaded.model->eval();
  NoGradGuard no_grad;
  const Tensor y = loaded.model->forward(io::load_npy((fixture("resnet20_real") / "inputs.npy").string()));
  EXPECT_EQ(y.shape(), (Shape{8, 7}));
}

}  // namespace
}  // namespace hone
