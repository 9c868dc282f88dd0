// BERT parity with Hugging Face transformers: small random-weight models written by
// tests/fixtures/bert/make_fixtures.py (torch 1.13, transformers 4.40.2, float32), loaded with
// load_bert_classifier, must reproduce HF's logits (padded rows included), loss, every parameter
// gradient and a 10-step AdamW loss curve; the BertModel-only fixture (no prefix, as
// all-MiniLM-L6-v2) its last hidden states, sentence-transformers mean pooling and the gradients
// through them. A regression in any op on the path (embeddings, layer norm, linear, masked
// attention, GELU erf/tanh, tanh pooler, cross-entropy, their backwards, AdamW), in the model's
// wiring or in the loader (prefixes, legacy gamma/beta, fresh heads) shows here.
// Also: `hone logits` / `hone grads` end to end, and corrupt model folders.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/autograd/autocast_mode.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/device.h"
#include "engine/io/checkpoint.h"
#include "engine/ops/ops.h"
#include "kernels/attention.h"
#include "models/bert/bert.h"
#include "models/bert/bert_config.h"
#include "models/bert/bert_loader.h"
#include "parity_util.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
using test::compare;
using test::Diff;
using test::read_json;
using test::write_text;

const fs::path kFixtures = fs::path(HONE_SOURCE_DIR) / "tests" / "fixtures" / "bert";
const char* kTempPrefix = "hone_bert_parity_";

const char* kSafetensors = "cls_gelu_safetensors";  // (a) gelu, eps 1e-12, 3 named labels
const char* kTorchBin = "cls_gelu_new_bin";         // (b) gelu_new, eps 1e-5, pytorch_model.bin
const char* kBertModel = "bertmodel_minilm_style";  // (c) BertModel only, no prefix
const char* kLegacy = "cls_legacy_gamma_beta";      // (d) LayerNorm.gamma/beta, torch.save

fs::path fixture(const std::string& name) { return test::fixture_dir(kFixtures, name); }

// The sequence-classification fixtures (those with logits.npy).
std::vector<fs::path> classifier_dirs() { return test::fixture_dirs_with(kFixtures, "logits.npy"); }

models::BertInputs load_inputs(const fs::path& dir, bool with_mask = true) {
  models::BertInputs in;
  in.input_ids = io::load_npy((dir / "inputs.npy").string());
  if (with_mask) in.attention_mask = io::load_npy((dir / "attention_mask.npy").string());
  in.token_type_ids = io::load_npy((dir / "token_type_ids.npy").string());
  return in;
}

Tensor labels_of(const fs::path& dir) { return io::load_npy((dir / "labels.npy").string()); }

models::LoadedBert load(const fs::path& dir, models::BertPooling pooling = models::BertPooling::Cls,
                        std::vector<std::string> labels = {}) {
  models::BertLoadOptions o;
  o.pooling = pooling;
  o.labels = std::move(labels);
  auto loaded = models::load_bert_classifier(dir.string(), o);
  loaded.model->eval();  // dropout off, as in the reference
  return loaded;
}

constexpr double kLogitsTol = 1e-4;  // relative to max(1, max|expected|)
constexpr double kLossTol = 1e-5;    // absolute
constexpr double kGradTol = 1e-4;    // relative to the tensor's max|expected|
constexpr double kCurveTol = 1e-4;   // absolute, each step's loss

// `actual` against dir/file with the logits tolerance; every row (padded ones included) is also
// reported on its own.
void check_output(const Tensor& actual, const fs::path& dir, const std::string& file, const std::string& tag) {
  const Tensor expected = io::load_npy((dir / file).string());
  const Diff d = compare(actual, expected, tag + " " + file);
  const double tol = kLogitsTol * std::max(1.0, d.max_ref);
  EXPECT_LE(d.max_abs, tol) << tag << ": " << file << " differs from transformers' (max |expected| " << d.max_ref << ")";
  std::string rows;
  if (actual.shape() == expected.shape() && actual.dim() >= 2)
    for (int64_t b = 0; b < actual.size(0); ++b) {
      const Diff r = compare(actual.select(0, b), expected.select(0, b), tag + " row " + std::to_string(b));
      char buf[48];
      std::snprintf(buf, sizeof buf, " %.2g", r.max_abs);
      rows += buf;
    }
  std::printf("[parity] %-24s %-6s %-16s max abs err %.3g (max |expected| %.3g, tol %.3g; by row%s)\n",
              dir.filename().c_str(), tag.c_str(), file.c_str(), d.max_abs, d.max_ref, tol, rows.c_str());
}

// Gradients keyed as grads.safetensors keys them (the checkpoint's names) against `actual`,
// keyed the same way. Both sets of names must agree.
void check_grads(const io::StateDict& actual, const fs::path& dir, const std::string& tag) {
  const io::StateDict expected = io::load_safetensors((dir / "grads.safetensors").string());
  test::expect_same_names(actual, expected, tag);
  double worst_rel = 0, worst_abs = 0, worst_zero = 0;
  std::string worst;
  for (const auto& [key, e] : expected) {
    auto it = actual.find(key);
    if (it == actual.end()) continue;
    ASSERT_TRUE(it->second.defined()) << tag << ": no gradient for " << key;
    const Diff d = compare(it->second, e, tag + " grad " + key);
    const std::string key_bias = "attention.self.key.bias";
    if (key.ends_with(key_bias)) {
      // Analytically zero: q.(k_j + b) adds the same q.b to every key's score and softmax over
      // the keys ignores it. Both sides hold only rounding noise (~1e-8 here), so this one is
      // checked against the scale of the same layer's key.weight gradient instead.
      const std::string wkey = key.substr(0, key.size() - 4) + "weight";
      ASSERT_TRUE(expected.count(wkey)) << wkey;
      const double scale = compare(expected.at(wkey), expected.at(wkey), wkey).max_ref;
      EXPECT_LE(d.max_abs, kGradTol * scale) << tag << ": gradient of " << key << " is not ~0 (key.weight's scale "
                                             << scale << ")";
      worst_zero = std::max(worst_zero, d.max_abs / scale);
      continue;
    }
    const double tol = kGradTol * std::max(d.max_ref, 1e-6);
    EXPECT_LE(d.max_abs, tol) << tag << ": gradient of " << key << " differs (max |expected| " << d.max_ref << ")";
    if (d.rel() > worst_rel) worst_rel = d.rel(), worst_abs = d.max_abs, worst = key;
  }
  std::printf("[parity] %-24s %-6s grads            %zu tensors, worst relative err %.3g (%s, abs %.3g); "
              "key.bias (analytically 0) max err / key.weight scale %.3g\n",
              dir.filename().c_str(), tag.c_str(), expected.size(), worst_rel, worst.c_str(), worst_abs, worst_zero);
}

// Our parameters' gradients keyed by the checkpoint names in grads.safetensors (mapped with
// bert_parameter_name); parameters without a checkpoint name are keyed "(hone) name" so that a
// name mismatch shows in check_grads. `skip` leaves out our parameters the reference has no
// gradient for.
io::StateDict grads_by_checkpoint_key(const models::BertForSequenceClassification& model, const fs::path& dir,
                                      const std::function<bool(const std::string&)>& skip = {}) {
  const io::StateDict expected = io::load_safetensors((dir / "grads.safetensors").string());
  std::map<std::string, std::string> key_of;
  for (auto& [k, t] : expected) {
    const std::string name = models::bert_parameter_name(k);
    EXPECT_FALSE(name.empty()) << k;
    EXPECT_EQ(key_of.count(name), 0u) << "two checkpoint keys map to " << name;
    key_of[name] = k;
  }
  return test::grads_keyed_as(model.named_parameters(), key_of, skip);
}

TEST(BertParity, FixturesPresent) {
  for (const char* name : {kSafetensors, kTorchBin, kBertModel, kLegacy}) {
    SCOPED_TRACE(name);
    const fs::path dir = fixture(name);
    EXPECT_TRUE(fs::exists(dir / "config.json"));
    EXPECT_TRUE(fs::exists(dir / "grads.safetensors"));
    EXPECT_TRUE(fs::exists(dir / "curve.json"));
  }
  EXPECT_TRUE(fs::exists(fixture(kSafetensors) / "model.safetensors"));
  EXPECT_TRUE(fs::exists(fixture(kTorchBin) / "pytorch_model.bin"));
  EXPECT_TRUE(fs::exists(fixture(kLegacy) / "pytorch_model.bin"));
  EXPECT_TRUE(fs::exists(fixture(kBertModel) / "hidden.npy"));
  EXPECT_EQ(classifier_dirs().size(), 3u);
  // The inputs exercise padding and token types.
  const Tensor mask = io::load_npy((fixture(kSafetensors) / "attention_mask.npy").string());
  const Tensor tt = io::load_npy((fixture(kSafetensors) / "token_type_ids.npy").string());
  const std::vector<int64_t> m = mask.to_vector<int64_t>(), t = tt.to_vector<int64_t>();
  EXPECT_EQ(std::count(m.begin(), m.end(), 0), 3 + 6);  // rows of 11, 8 and 5 tokens
  EXPECT_GT(std::count(t.begin(), t.end(), 1), 0);
}

TEST(BertParity, ConfigsAsWritten) {
  const auto a = models::BertConfig::from_json_file((fixture(kSafetensors) / "config.json").string());
  EXPECT_EQ(a.num_labels, 3);
  EXPECT_EQ(a.id2label, (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ(a.intermediate_size, 37);
  EXPECT_EQ(a.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(a.layer_norm_eps, 1e-12);
  const auto b = models::BertConfig::from_json_file((fixture(kTorchBin) / "config.json").string());
  EXPECT_EQ(b.num_labels, 2);
  EXPECT_EQ(b.hidden_act, "gelu_new");
  EXPECT_DOUBLE_EQ(b.layer_norm_eps, 1e-5);
}

TEST(BertParity, LogitsAndLoss) {
  for (const auto& dir : classifier_dirs()) {
    SCOPED_TRACE(dir.string());
    const auto loaded = load(dir);
    EXPECT_TRUE(loaded.report.unexpected.empty()) << loaded.report.summary();
    EXPECT_TRUE(loaded.report.missing.empty()) << loaded.report.summary();
    EXPECT_FALSE(loaded.new_head) << loaded.report.summary();
    EXPECT_TRUE(loaded.report.notes.empty()) << loaded.report.summary();
    const auto in = load_inputs(dir);
    NoGradGuard no_grad;
    const Tensor logits = loaded.model->logits(in);
    check_output(logits, dir, "logits.npy", "model");
    const double loss = ops::cross_entropy(logits, labels_of(dir)).item();
    const double expected = read_json(dir / "curve.json")["loss"].get<double>();
    EXPECT_NEAR(loss, expected, kLossTol);
    std::printf("[parity] %-24s model  loss             %.7f vs %.7f, err %.3g\n", dir.filename().c_str(), loss,
                expected, std::abs(loss - expected));
  }
}

// The fixtures can tell a wrong mask from a right one: without attention_mask the padded rows
// move well beyond the tolerance, the unpadded row stays put.
TEST(BertParity, PaddingMaskMatters) {
  for (const auto& dir : classifier_dirs()) {
    SCOPED_TRACE(dir.string());
    const auto loaded = load(dir);
    NoGradGuard no_grad;
    const Tensor logits = loaded.model->logits(load_inputs(dir, /*with_mask=*/false));
    const Tensor expected = io::load_npy((dir / "logits.npy").string());
    EXPECT_LE(compare(logits.select(0, 0), expected.select(0, 0), "row 0").max_abs, 1e-4);
    for (int64_t b : {1, 2})
      EXPECT_GT(compare(logits.select(0, b), expected.select(0, b), "padded row").max_abs, 1e-2) << "row " << b;
  }
}

TEST(BertParity, Gradients) {
  for (const auto& dir : classifier_dirs()) {
    SCOPED_TRACE(dir.string());
    const auto loaded = load(dir);
    const Tensor loss = ops::cross_entropy(loaded.model->logits(load_inputs(dir)), labels_of(dir));
    loss.backward();
    check_grads(grads_by_checkpoint_key(*loaded.model, dir), dir, "model");
  }
}

// The same fixtures on the GPU in float32: logits, loss and every gradient against transformers'
// CPU numbers (attention with a padding mask on our CUDA kernel: cuDNN takes only 16-bit inputs).
TEST(BertParity, OnCuda) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: BERT parity on the GPU is skipped";
  for (const auto& dir : classifier_dirs()) {
    SCOPED_TRACE(dir.string());
    const auto loaded = load(dir);
    loaded.model->to(Device::cuda(0));
    const Tensor logits = loaded.model->logits(load_inputs(dir));  // the inputs follow the weights
    EXPECT_TRUE(logits.device().is_cuda());
    check_output(logits.detach(), dir, "logits.npy", "cuda");
    const Tensor loss = ops::cross_entropy(logits, labels_of(dir).to(Device::cuda(0)));
    EXPECT_NEAR(loss.item(), read_json(dir / "curve.json")["loss"].get<double>(), kLossTol);
    loss.backward();
    check_grads(grads_by_checkpoint_key(*loaded.model, dir), dir, "cuda");

    // Under bf16 autocast (on a GPU, attention with the padding mask takes cuDNN's fused SDPA for
    // head dims that are multiples of 8): logits and loss within bf16 tolerances.
    AutocastGuard autocast(DType::BF16);
    NoGradGuard no_grad;
    const Tensor lb = loaded.model->logits(load_inputs(dir));
    EXPECT_EQ(lb.dtype(), DType::BF16);
    const Diff d = compare(lb, io::load_npy((dir / "logits.npy").string()), "bf16 logits");
    const double rel = d.max_abs / std::max(1.0, d.max_ref);
    EXPECT_LE(rel, 3e-2) << "bf16 logits on the GPU";
    const double lbf = ops::cross_entropy(lb, labels_of(dir).to(Device::cuda(0))).item();
    EXPECT_NEAR(lbf, read_json(dir / "curve.json")["loss"].get<double>(), 2e-2) << "bf16 loss on the GPU";
    std::printf("[parity] %-24s cuda   bf16 logits rel err %.3g, loss %.6f; attention: %s\n", dir.filename().c_str(), rel,
                lbf, kernels::last_attention_path().c_str());
  }
}

TEST(BertParity, AdamWCurve) {
  for (const auto& dir : classifier_dirs()) {
    SCOPED_TRACE(dir.string());
    const nlohmann::json curve = read_json(dir / "curve.json");
    const std::vector<double> expected = curve["losses"].get<std::vector<double>>();
    ASSERT_EQ(expected.size(), 11u);
    const auto loaded = load(dir);
    auto& model = *loaded.model;
    // The reference decayed the same parameters (HF module names, as ours).
    AdamW opt = test::adamw_as_in_curve(model.named_parameters(), curve, models::bert_parameter_name);
    const auto in = load_inputs(dir);
    const Tensor labels = labels_of(dir);
    const double worst = test::run_adamw_curve(
        opt, [&] { return ops::cross_entropy(model.logits(in), labels); }, expected, kCurveTol);
    std::printf("[parity] %-24s model  curve            %.6f -> %.6f over 10 steps, worst step err %.3g\n",
                dir.filename().c_str(), expected.front(), expected.back(), worst);
  }
}

// (c) A BertModel checkpoint (keys without "bert.", no classifier, as all-MiniLM-L6-v2): the
// encoder's last hidden states at every position, sentence-transformers mean pooling, and the
// gradients of sum(mean_pooled * probe) for every encoder parameter.
TEST(BertParity, BertModelHiddenStatesAndMeanPooling) {
  const fs::path dir = fixture(kBertModel);
  const auto loaded = load(dir, models::BertPooling::Mean);
  EXPECT_TRUE(loaded.report.unexpected.empty()) << loaded.report.summary();
  EXPECT_TRUE(loaded.report.missing.empty()) << loaded.report.summary();
  for (const std::string& k : loaded.checkpoint_keys) EXPECT_NE(k.rfind("bert.", 0), 0u) << k;
  models::BertModel& bert = loaded.model->bert();
  const auto in = load_inputs(dir);
  {
    NoGradGuard no_grad;
    const Tensor hidden = bert.forward(in);
    check_output(hidden, dir, "hidden.npy", "bert");
    check_output(models::mean_pool(hidden, in.attention_mask), dir, "mean_pooled.npy", "bert");
  }
  const Tensor probe = io::load_npy((dir / "probe.npy").string());
  const Tensor loss = ops::sum(ops::mul(models::mean_pool(bert.forward(in), in.attention_mask), probe));
  const double expected = read_json(dir / "curve.json")["probe_loss"].get<double>();
  EXPECT_NEAR(loss.item(), expected, kLossTol * std::max(1.0, std::abs(expected)));
  loss.backward();
  // The pooler and the (fresh) classifier are not on this path.
  auto off_path = [](const std::string& n) { return n.rfind("bert.pooler.", 0) == 0 || n.rfind("classifier.", 0) == 0; };
  check_grads(grads_by_checkpoint_key(*loaded.model, dir, off_path), dir, "bert");
  for (auto& [name, p] : loaded.model->named_parameters()) {
    if (off_path(name)) {
      EXPECT_FALSE(p.grad().defined()) << name;
    }
  }
}

// (c) loaded as a classifier: the checkpoint has no head, so a new one is initialised and the
// report says so; the encoder and pooler are the checkpoint's.
TEST(BertParity, BertModelAsClassifierGetsNewHead) {
  const fs::path dir = fixture(kBertModel);
  for (auto pooling : {models::BertPooling::Cls, models::BertPooling::Mean}) {
    const auto loaded = load(dir, pooling, {"spam", "ham"});
    EXPECT_TRUE(loaded.new_head);
    bool noted = false;
    for (const auto& n : loaded.report.notes) noted |= n.find("new classification head") != std::string::npos;
    EXPECT_TRUE(noted) << loaded.report.summary();
    EXPECT_NE(loaded.report.summary().find("2 labels"), std::string::npos) << loaded.report.summary();
    EXPECT_TRUE(loaded.report.unexpected.empty()) << loaded.report.summary();
    EXPECT_TRUE(loaded.report.missing.empty()) << loaded.report.summary();
    EXPECT_EQ(loaded.model->config().num_labels, 2);
    const io::StateDict sd = io::load_checkpoint(loaded.weights_path);
    EXPECT_EQ(loaded.report.applied.size(), sd.size());  // every checkpoint tensor, the pooler included
    NoGradGuard no_grad;
    const Tensor logits = loaded.model->logits(load_inputs(dir));
    EXPECT_EQ(logits.shape(), (Shape{3, 2}));
    for (double v : logits.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
  }
  // Without task labels the config's count (2, HF's default) is used.
  const auto plain = load(dir);
  EXPECT_TRUE(plain.new_head);
  EXPECT_EQ(plain.model->config().num_labels, 2);
}

// (a) with another label count: the head is re-initialised, the encoder loaded, the report says so.
TEST(BertParity, ClassifierWithOtherLabelCountGetsFreshHead) {
  const auto loaded = load(fixture(kSafetensors), models::BertPooling::Cls, {"yes", "no"});
  EXPECT_TRUE(loaded.new_head);
  bool noted = false;
  for (const auto& n : loaded.report.notes) noted |= n.find("re-initialised") != std::string::npos && n.find("3") != std::string::npos;
  EXPECT_TRUE(noted) << loaded.report.summary();
  EXPECT_TRUE(loaded.report.missing.empty()) << loaded.report.summary();
  // Same count: the checkpoint's head, renamed labels.
  const auto same = load(fixture(kSafetensors), models::BertPooling::Cls, {"a", "b", "c"});
  EXPECT_FALSE(same.new_head) << same.report.summary();
  EXPECT_EQ(same.model->config().id2label, (std::vector<std::string>{"a", "b", "c"}));
}

// (d) Legacy names: every LayerNorm.gamma/beta is applied to LayerNorm.weight/bias, the stored
// position_ids buffer is ignored. (Parity of its outputs is checked with the other classifiers.)
TEST(BertParity, LegacyGammaBetaNamesAreMapped) {
  const fs::path dir = fixture(kLegacy);
  const auto loaded = load(dir);
  EXPECT_TRUE(loaded.report.unexpected.empty()) << loaded.report.summary();
  EXPECT_TRUE(loaded.report.missing.empty()) << loaded.report.summary();
  EXPECT_FALSE(loaded.new_head) << loaded.report.summary();
  size_t gamma = 0, beta = 0;
  for (const auto& k : loaded.report.applied) {
    gamma += k.ends_with("LayerNorm.gamma");
    beta += k.ends_with("LayerNorm.beta");
    EXPECT_FALSE(k.ends_with("LayerNorm.weight") || k.ends_with("LayerNorm.bias")) << k;
  }
  EXPECT_EQ(gamma, 3u);  // embeddings + attention output + output of the one layer
  EXPECT_EQ(beta, 3u);
  EXPECT_EQ(loaded.report.ignored, (std::vector<std::string>{"bert.embeddings.position_ids"}));
  EXPECT_EQ(models::bert_parameter_name("bert.encoder.layer.0.output.LayerNorm.gamma"),
            "bert.encoder.layer.0.output.LayerNorm.weight");
  EXPECT_EQ(models::bert_parameter_name("embeddings.LayerNorm.beta"), "bert.embeddings.LayerNorm.bias");
  // The loaded values are the checkpoint's.
  const io::StateDict sd = io::load_checkpoint(loaded.weights_path);
  std::map<std::string, Tensor> params;
  for (auto& [n, p] : loaded.model->named_parameters()) params[n] = p;
  for (const auto& [k, t] : sd) {
    const std::string name = models::bert_parameter_name(k);
    if (name.empty()) continue;
    ASSERT_TRUE(params.count(name)) << k;
    EXPECT_EQ(compare(params[name], t, k).max_abs, 0.0) << k;
  }
}

using test::quoted;

// `hone logits` / `hone grads` with --attention-mask and --token-type-ids: the same numbers, and
// gradients named as the checkpoint names them (the legacy fixture's with gamma/beta).
TEST(BertParity, CliLogitsAndGrads) {
  HONE_PARITY_REQUIRE_HONE_BINARY(hone);
  test::TempDir tmp(kTempPrefix, "cli");
  for (const char* name : {kSafetensors, kLegacy}) {
    const fs::path dir = fixture(name);
    SCOPED_TRACE(dir.string());
    const fs::path logits = tmp.path / (std::string(name) + "_logits.npy");
    const fs::path grads = tmp.path / (std::string(name) + "_grads.safetensors");
    const fs::path log = tmp.path / (std::string(name) + ".log");
    const std::string common = " --model " + quoted(dir) + " --input " + quoted(dir / "inputs.npy") +
                               " --attention-mask " + quoted(dir / "attention_mask.npy") + " --token-type-ids " +
                               quoted(dir / "token_type_ids.npy");
    const std::string cmd1 = quoted(hone) + " logits" + common + " --out " + quoted(logits) + " 2>" + quoted(log);
    ASSERT_EQ(std::system(cmd1.c_str()), 0) << cmd1;
    check_output(io::load_npy(logits.string()), dir, "logits.npy", "cli");
    const std::string cmd2 = quoted(hone) + " grads" + common + " --targets " + quoted(dir / "labels.npy") + " --out " +
                             quoted(grads) + " 2>>" + quoted(log);
    ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
    check_grads(io::load_safetensors(grads.string()), dir, "cli");
    ASSERT_NO_FATAL_FAILURE(
        test::expect_loss_metadata(grads, read_json(dir / "curve.json")["loss"].get<double>(), kLossTol));
  }
}

// ---- checkpoint variants and corrupt model folders -------------------------------------------

// A temporary copy of a fixture's model files.
struct FolderCopy : test::FolderCopy {
  FolderCopy(const std::string& fixture_name, const std::string& tag)
      : test::FolderCopy(fixture(fixture_name), kTempPrefix, tag) {}
};

// Same logits as the fixture's reference.
void expect_reference_logits(const fs::path& folder, const fs::path& reference) {
  const auto loaded = load(folder);
  NoGradGuard no_grad;
  const Tensor logits = loaded.model->logits(load_inputs(reference));
  const Diff d = compare(logits, io::load_npy((reference / "logits.npy").string()), folder.string());
  EXPECT_LE(d.max_abs, kLogitsTol * std::max(1.0, d.max_ref));
}

TEST(BertParityVariants, DataParallelModulePrefix) {
  FolderCopy f(kSafetensors, "module");
  const fs::path w = f.path / "model.safetensors";
  io::StateDict renamed;
  for (auto& [k, t] : io::load_safetensors(w.string())) renamed["module." + k] = t;
  io::save_safetensors(w.string(), renamed, {{"format", "pt"}});
  expect_reference_logits(f.path, fixture(kSafetensors));
}

TEST(BertParityVariants, MissingPoolerIsToleratedWithANote) {
  FolderCopy f(kSafetensors, "nopooler");
  const fs::path w = f.path / "model.safetensors";
  io::StateDict kept;
  for (auto& [k, t] : io::load_safetensors(w.string()))
    if (k.find("pooler") == std::string::npos) kept[k] = t;
  io::save_safetensors(w.string(), kept, {{"format", "pt"}});
  const auto loaded = load(f.path, models::BertPooling::Mean);
  EXPECT_FALSE(loaded.new_head);
  bool noted = false;
  for (const auto& n : loaded.report.notes) noted |= n.find("pooler") != std::string::npos;
  EXPECT_TRUE(noted) << loaded.report.summary();
  EXPECT_TRUE(loaded.report.missing.empty()) << loaded.report.summary();
}

// load_bert_classifier must throw std::runtime_error whose message contains every one of `needles`.
std::string expect_load_error(const fs::path& folder, const std::vector<std::string>& needles) {
  return test::expect_refusal([&] { models::load_bert_classifier(folder.string(), {}); }, needles, "[parity] error",
                              folder, ": load_bert_classifier accepted a corrupt folder");
}

TEST(BertParityCorrupt, ConfigDisagreesWithTensorShapes) {
  FolderCopy f(kSafetensors, "shapes");
  models::BertConfig wrong = models::BertConfig::from_json_file((f.path / "config.json").string());
  wrong.hidden_size += 4;  // 36, still divisible by 4 heads
  f.edit_config([&](nlohmann::json& j) { j["hidden_size"] = wrong.hidden_size; });
  const std::string msg =
      expect_load_error(f.path, {(f.path / "model.safetensors").string(), (f.path / "config.json").string()});
  // The message names one checkpoint tensor, with its stored shape and the shape the config implies.
  const io::StateDict sd = io::load_safetensors((f.path / "model.safetensors").string());
  std::map<std::string, Tensor> implied;
  for (auto& [n, t] : models::BertForSequenceClassification(wrong, models::BertPooling::Cls, 1).named_parameters())
    implied[n] = t;
  bool named = false;
  for (const auto& [key, t] : sd) {
    if (msg.find("'" + key + "'") == std::string::npos) continue;
    named = true;
    EXPECT_NE(msg.find(shape_str(t.shape())), std::string::npos) << msg;
    ASSERT_TRUE(implied.count(models::bert_parameter_name(key))) << key;
    EXPECT_NE(msg.find(shape_str(implied[models::bert_parameter_name(key)].shape())), std::string::npos) << msg;
    EXPECT_NE(t.shape(), implied[models::bert_parameter_name(key)].shape()) << msg;
  }
  EXPECT_TRUE(named) << "no tensor named in: " << msg;
}

TEST(BertParityCorrupt, IntermediateSizeDisagreesWithTensorShapes) {
  FolderCopy f(kTorchBin, "intermediate");
  f.edit_config([](nlohmann::json& j) { j["intermediate_size"] = 48; });  // 50 stored
  expect_load_error(f.path, {(f.path / "pytorch_model.bin").string(), (f.path / "config.json").string(), "intermediate",
                             "[50]", "[48]"});
}

TEST(BertParityCorrupt, HiddenNotDivisibleByHeads) {
  FolderCopy f(kSafetensors, "heads");
  f.edit_config([](nlohmann::json& j) { j["num_attention_heads"] = 5; });  // hidden 32
  expect_load_error(f.path, {(f.path / "config.json").string(), "32", "5", "divisible"});
}

TEST(BertParityCorrupt, UnknownActivation) {
  FolderCopy f(kSafetensors, "act");
  f.edit_config([](nlohmann::json& j) { j["hidden_act"] = "swishy_gelu"; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "swishy_gelu"});
}

TEST(BertParityCorrupt, Id2LabelWithAGap) {
  FolderCopy f(kSafetensors, "id2label_gap");
  f.edit_config([](nlohmann::json& j) { j["id2label"] = {{"0", "negative"}, {"2", "positive"}}; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "id2label", "1"});
}

TEST(BertParityCorrupt, Id2LabelNotIntegerIds) {
  FolderCopy f(kSafetensors, "id2label_key");
  f.edit_config([](nlohmann::json& j) { j["id2label"] = {{"zero", "negative"}, {"one", "positive"}}; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "id2label", "not an integer id"});
}

TEST(BertParityCorrupt, Id2LabelNameNotAString) {
  FolderCopy f(kSafetensors, "id2label_value");
  f.edit_config([](nlohmann::json& j) { j["id2label"] = {{"0", 7}, {"1", "b"}, {"2", "c"}}; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "id2label"});
}

TEST(BertParityCorrupt, ConfigNotJson) {
  FolderCopy f(kSafetensors, "notjson");
  write_text(f.path / "config.json", "hidden_size = 32\n{");
  expect_load_error(f.path, {(f.path / "config.json").string(), "JSON"});
}

TEST(BertParityCorrupt, ConfigWrongType) {
  FolderCopy f(kSafetensors, "type");
  f.edit_config([](nlohmann::json& j) { j["num_hidden_layers"] = "two"; });
  expect_load_error(f.path, {(f.path / "config.json").string(), "num_hidden_layers"});
}

TEST(BertParityCorrupt, MissingConfig) {
  FolderCopy f(kSafetensors, "noconfig");
  fs::remove(f.path / "config.json");
  expect_load_error(f.path, {(f.path / "config.json").string()});
}

TEST(BertParityCorrupt, MissingWeightsFile) {
  FolderCopy f(kSafetensors, "noweights");
  fs::remove(f.path / "model.safetensors");
  expect_load_error(f.path, {f.path.string()});
}

TEST(BertParityCorrupt, MissingEncoderTensor) {
  FolderCopy f(kSafetensors, "missing");
  const fs::path w = f.path / "model.safetensors";
  io::StateDict sd = io::load_safetensors(w.string());
  ASSERT_EQ(sd.erase("bert.encoder.layer.1.attention.self.key.weight"), 1u);
  io::save_safetensors(w.string(), sd, {{"format", "pt"}});
  expect_load_error(f.path, {w.string(), "missing", "bert.encoder.layer.1.attention.self.key.weight"});
}

TEST(BertParityCorrupt, TruncatedSafetensors) {
  FolderCopy f(kSafetensors, "truncst");
  const fs::path w = f.path / "model.safetensors";
  fs::resize_file(w, fs::file_size(w) / 2);
  expect_load_error(f.path, {w.string()});
}

TEST(BertParityCorrupt, TruncatedTorchBin) {
  FolderCopy f(kTorchBin, "truncbin");
  const fs::path w = f.path / "pytorch_model.bin";
  fs::resize_file(w, fs::file_size(w) - 4096);
  expect_load_error(f.path, {w.string()});
}

TEST(BertParityCorrupt, TruncatedLegacyTorchBin) {
  FolderCopy f(kLegacy, "trunclegacy");
  const fs::path w = f.path / "pytorch_model.bin";
  fs::resize_file(w, fs::file_size(w) / 3);
  expect_load_error(f.path, {w.string()});
}

}  // namespace
}  // namespace hone
