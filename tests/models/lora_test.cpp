// LoRA (engine/nn/lora.h) on small random GPT-2 and BERT models: at initialisation the adapted
// model computes exactly what the base model computes; only the adapters train and the
// checkpoint's parameter names stay; the layer's forward hook computes the literal LoRA output
// (values and gradients of A and B against a hand computation in double); dropout acts on the
// adapter input in training mode only; merging reproduces the adapted model and restores the
// original parameter set; adapters saved in PEFT's layout load back into a fresh model; bad
// patterns and bad adapter files fail with messages that name what is wrong. Also the Module API
// LoRA is built on (forward hooks, named_children/named_modules, add_module/remove_module).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/autograd/grad_mode.h"
#include "engine/io/checkpoint.h"
#include "engine/nn/conv_layers.h"
#include "engine/nn/layers.h"
#include "engine/nn/lora.h"
#include "engine/ops/ops.h"
#include "engine/optim/adamw.h"
#include "models/bert/bert.h"
#include "models/gpt2/gpt2.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

double max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::isfinite(x[i] - y[i]) ? std::abs(x[i] - y[i]) : INFINITY);
  return m;
}

double max_abs(const Tensor& a) {
  double m = 0;
  for (double v : a.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

std::vector<std::pair<std::string, Shape>> names_and_shapes(const nn::Module& m) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [n, t] : m.named_parameters()) out.emplace_back(n, t.shape());
  return out;
}

bool is_adapter(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("hone_lora_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

models::Gpt2Config gpt2_config() {
  models::Gpt2Config c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.n_positions = 16, c.vocab_size = 40;
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.0;
  return c;
}

models::BertConfig bert_config() {
  models::BertConfig c;
  c.vocab_size = 40, c.hidden_size = 16, c.num_hidden_layers = 2, c.num_attention_heads = 2;
  c.intermediate_size = 32, c.max_position_embeddings = 16, c.type_vocab_size = 2, c.num_labels = 3;
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0.0;
  return c;
}

Tensor gpt2_ids() {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < 16; ++i) v.push_back((7 * i + 3) % 40);
  return Tensor::from_vector<int64_t>(v, {2, 8});
}

Tensor gpt2_targets() {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < 16; ++i) v.push_back((5 * i + 11) % 40);
  return Tensor::from_vector<int64_t>(v, {2, 8});
}

models::BertInputs bert_inputs() {
  std::vector<int64_t> ids, mask;
  for (int64_t i = 0; i < 3 * 6; ++i) ids.push_back((11 * i + 2) % 40);
  for (int64_t i = 0; i < 3 * 6; ++i) mask.push_back(i % 6 < 6 - (i / 6) ? 1 : 0);  // rows of 6, 5, 4 tokens
  return {Tensor::from_vector<int64_t>(ids, {3, 6}), Tensor(), Tensor::from_vector<int64_t>(mask, {3, 6})};
}

Tensor bert_labels() { return Tensor::from_vector<int64_t>({0, 2, 1}, {3}); }

Tensor gpt2_logits(models::Gpt2& m) {
  NoGradGuard no_grad;
  return m.forward(gpt2_ids());
}

Tensor bert_logits(models::BertForSequenceClassification& m) {
  NoGradGuard no_grad;
  return m.logits(bert_inputs());
}

// AdamW over the trainable parameters.
template <class LossFn>
std::vector<double> train(nn::Module& model, int steps, LossFn loss_fn) {
  std::vector<Tensor> params;
  for (const auto& [n, t] : model.named_parameters())
    if (t.requires_grad()) params.push_back(t);
  AdamWConfig oc;
  oc.lr = 2e-2, oc.weight_decay = 0.0;
  AdamW opt(params, std::vector<bool>(params.size(), false), oc);
  model.train();
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    const Tensor loss = loss_fn();
    losses.push_back(loss.item());
    loss.backward();
    opt.step();
  }
  model.eval();
  return losses;
}

nn::LoraConfig gpt2_lora() {
  nn::LoraConfig c;
  c.rank = 4, c.alpha = 8;
  c.target_patterns = {"h\\.\\d+\\.attn\\.c_attn", "*.mlp.c_fc"};
  return c;
}

nn::LoraConfig bert_lora() {
  nn::LoraConfig c;
  c.rank = 4, c.alpha = 16;
  c.target_patterns = {"*query", "*.self.value", "bert\\.encoder\\.layer\\.\\d+\\.output\\.dense"};
  return c;
}

TEST(Lora, Gpt2AtInitEqualsTheBaseModelAndKeepsTheCheckpointNames) {
  models::Gpt2 base(gpt2_config(), 7), model(gpt2_config(), 7);
  base.eval(), model.eval();
  const auto original = names_and_shapes(model);
  EXPECT_EQ(nn::inject_lora(model, gpt2_lora()), 4);  // 2 layers x (c_attn, c_fc)

  EXPECT_EQ(max_diff(gpt2_logits(model), gpt2_logits(base)), 0.0);

  // Base names and order unchanged; adapters beside them; only adapters train.
  std::vector<std::pair<std::string, Shape>> without_adapters;
  int adapters = 0;
  for (const auto& [n, t] : model.named_parameters()) {
    if (is_adapter(n)) {
      ++adapters;
      EXPECT_TRUE(t.requires_grad()) << n;
    } else {
      without_adapters.emplace_back(n, t.shape());
      EXPECT_FALSE(t.requires_grad()) << n << " should be frozen";
    }
  }
  EXPECT_EQ(without_adapters, original);
  EXPECT_EQ(adapters, 8);
  std::map<std::string, Shape> shapes;
  for (const auto& [n, t] : model.named_parameters()) shapes[n] = t.shape();
  EXPECT_EQ(shapes.at("h.0.attn.c_attn.weight"), (Shape{16, 48}));  // Conv1D [in, out]
  EXPECT_EQ(shapes.at("h.0.attn.c_attn.lora_A.weight"), (Shape{4, 16}));
  EXPECT_EQ(shapes.at("h.0.attn.c_attn.lora_B.weight"), (Shape{48, 4}));
  EXPECT_EQ(shapes.at("h.1.mlp.c_fc.lora_B.weight"), (Shape{64, 4}));
  EXPECT_FALSE(shapes.count("h.0.attn.c_proj.lora_A.weight"));

  // A is Kaiming-uniform (a = sqrt(5)): within +-1/sqrt(fan_in) and not degenerate; B is zero.
  for (const auto& [path, w] : nn::lora_modules(model)) {
    EXPECT_LE(max_abs(w->lora_A()), 1.0 / std::sqrt(16.0)) << path;
    EXPECT_GT(max_abs(w->lora_A()), 0.5 / std::sqrt(16.0)) << path;
    EXPECT_EQ(max_abs(w->lora_B()), 0.0) << path;
  }
  // Checkpoint loading by the original name writes the base weight the model uses.
  const Tensor w1 = Tensor::full({16, 48}, 0.01);
  model.set_parameter("h.1.attn.c_attn.weight", w1);
  base.set_parameter("h.1.attn.c_attn.weight", w1);
  EXPECT_EQ(max_diff(gpt2_logits(model), gpt2_logits(base)), 0.0);
}

TEST(Lora, BertAtInitEqualsTheBaseModel) {
  models::BertForSequenceClassification base(bert_config(), models::BertPooling::Cls, 11),
      model(bert_config(), models::BertPooling::Cls, 11);
  base.eval(), model.eval();
  EXPECT_EQ(nn::inject_lora(model, bert_lora()), 6);  // 2 layers x (query, value, output.dense)
  EXPECT_EQ(max_diff(bert_logits(model), bert_logits(base)), 0.0);
  int64_t trainable = 0;
  for (const auto& [n, t] : model.named_parameters())
    if (t.requires_grad()) trainable += t.numel();
  // query/value: A [4, 16] + B [16, 4]; output.dense (32 -> 16): A [4, 32] + B [16, 4].
  EXPECT_EQ(trainable, 2 * (2 * (64 + 64) + (128 + 64)));
  const auto paths = nn::lora_modules(model);
  ASSERT_EQ(paths.size(), 6u);
  EXPECT_EQ(paths[0].first, "bert.encoder.layer.0.attention.self.query");
  EXPECT_EQ(paths[2].first, "bert.encoder.layer.0.output.dense");
}

TEST(Lora, BadPatternsAndConfigsAreRefusedNamingTheClosestModules) {
  models::Gpt2 model(gpt2_config(), 7);
  const auto before = names_and_shapes(model);
  nn::LoraConfig c = gpt2_lora();
  c.target_patterns = {"*.attn.c_attn", "*.attn.c_atn"};
  try {
    nn::inject_lora(model, c);
    FAIL() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'*.attn.c_atn'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("h.0.attn.c_attn"), std::string::npos) << msg;
  }
  EXPECT_EQ(names_and_shapes(model), before);  // nothing injected
  EXPECT_TRUE(nn::lora_modules(model).empty());

  c.target_patterns = {"h\\.\\d+\\.ln_1"};  // matches LayerNorms only
  try {
    nn::inject_lora(model, c);
    FAIL() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("matches only other modules: h.0.ln_1"), std::string::npos) << e.what();
  }
  c.target_patterns = {"h\\.(\\d+"};
  EXPECT_THROW(nn::inject_lora(model, c), std::invalid_argument);
  c = gpt2_lora();
  c.rank = 0;
  EXPECT_THROW(nn::inject_lora(model, c), std::invalid_argument);
  c = gpt2_lora();
  c.dropout = 1.0;
  EXPECT_THROW(nn::inject_lora(model, c), std::invalid_argument);
  EXPECT_EQ(names_and_shapes(model), before);

  // A layer that already has a (foreign) forward hook is refused, naming it; nothing is injected.
  auto sites = model.named_modules();
  std::shared_ptr<nn::Module> c_fc1;
  for (const auto& [path, m] : sites)
    if (path == "h.1.mlp.c_fc") c_fc1 = m;
  ASSERT_TRUE(c_fc1);
  c_fc1->set_forward_hook([](const Tensor&, const Tensor& y) { return y; });
  try {
    nn::inject_lora(model, gpt2_lora());
    FAIL() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'h.1.mlp.c_fc'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("forward hook"), std::string::npos) << e.what();
  }
  EXPECT_EQ(names_and_shapes(model), before);
  EXPECT_TRUE(nn::lora_modules(model).empty());
  for (const auto& [path, m] : model.named_modules())  // no adapter was attached before the refusal
    if (m != c_fc1) {
      EXPECT_FALSE(m->forward_hook()) << path;
    }
  c_fc1->set_forward_hook({});

  EXPECT_EQ(nn::inject_lora(model, gpt2_lora()), 4);
  EXPECT_THROW(nn::inject_lora(model, gpt2_lora()), std::invalid_argument);  // already injected
}

Tensor layer_forward(nn::Module& layer, const Tensor& x) {
  if (auto* l = dynamic_cast<nn::Linear*>(&layer)) return l->forward(x);
  if (auto* c = dynamic_cast<nn::Conv1D*>(&layer)) return c->forward(x);
  return dynamic_cast<nn::Conv2d&>(layer).forward(x);
}

// The layer's own forward, through the hook LoRA installs, computes base(x) + s (x A^T) B^T, and
// backward gives A and B the gradients of that expression: both checked against a hand
// computation in double, for Linear ([out, in]) and Conv1D ([in, out]).
void check_hook_against_hand_computation(const std::shared_ptr<nn::Module>& layer, const Tensor& x) {
  const auto names_before = names_and_shapes(*layer);
  auto adapter = std::make_shared<nn::LoraAdapter>(layer, 3, 6.0, 0.0, 99);
  adapter->attach();
  EXPECT_EQ(nn::LoraAdapter::of(*layer), adapter);
  {
    NoGradGuard no_grad;
    Tensor b = adapter->lora_B();
    b.copy_(Tensor::randn(b.shape(), 5));
  }
  const std::vector<std::string> expected_names = {"weight", "bias", "lora_A.weight", "lora_B.weight"};
  std::vector<std::string> names;
  for (const auto& [n, t] : layer->named_parameters()) names.push_back(n);
  EXPECT_EQ(names, expected_names);

  const int64_t n = x.size(0), in = x.size(1), out = adapter->lora_B().size(0), r = 3;
  const double s = 2.0;  // 6 / 3
  const Tensor g = Tensor::randn({n, out}, 17);
  Tensor a = adapter->lora_A(), b = adapter->lora_B();
  a.zero_grad(), b.zero_grad();
  const Tensor y = layer_forward(*layer, x);
  ops::sum(ops::mul(y, g)).backward();

  const bool linear = adapter->kind() == nn::LoraAdapter::Kind::Linear;
  const auto xv = x.to_vector<double>(), wv = adapter->base_weight().to_vector<double>();
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>(), gv = g.to_vector<double>();
  const auto bias = layer->named_parameters()[1].second.to_vector<double>();
  std::vector<double> xa(n * r, 0.0);  // x A^T
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < r; ++q)
      for (int64_t k = 0; k < in; ++k) xa[i * r + q] += xv[i * in + k] * av[q * in + k];
  const auto yv = y.to_vector<double>();
  double worst = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double v = bias[o];
      for (int64_t k = 0; k < in; ++k) v += xv[i * in + k] * (linear ? wv[o * in + k] : wv[k * out + o]);
      for (int64_t q = 0; q < r; ++q) v += s * xa[i * r + q] * bv[o * r + q];
      worst = std::max(worst, std::abs(v - yv[i * out + o]));
    }
  EXPECT_LE(worst, 1e-5);

  // L = sum(y * g): dL/dB = s g^T (x A^T) [out, r]; dL/dA = s (g B)^T x [r, in].
  ASSERT_TRUE(a.grad().defined() && b.grad().defined());
  const auto ga = a.grad().to_vector<double>(), gb = b.grad().to_vector<double>();
  double worst_a = 0, worst_b = 0, scale_a = 0;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t q = 0; q < r; ++q) {
      double d = 0;
      for (int64_t i = 0; i < n; ++i) d += s * gv[i * out + o] * xa[i * r + q];
      worst_b = std::max(worst_b, std::abs(d - gb[o * r + q]));
    }
  for (int64_t q = 0; q < r; ++q)
    for (int64_t k = 0; k < in; ++k) {
      double d = 0;
      for (int64_t i = 0; i < n; ++i) {
        double gB = 0;
        for (int64_t o = 0; o < out; ++o) gB += gv[i * out + o] * bv[o * r + q];
        d += s * gB * xv[i * in + k];
      }
      worst_a = std::max(worst_a, std::abs(d - ga[q * in + k]));
      scale_a = std::max(scale_a, std::abs(d));
    }
  EXPECT_GT(scale_a, 1e-3);
  EXPECT_LE(worst_a, 1e-4);
  EXPECT_LE(worst_b, 1e-4);

  // Merging folds the same update into the weight and takes the adapter off: original names only.
  adapter->merge();
  EXPECT_FALSE(adapter->attached());
  EXPECT_FALSE(layer->forward_hook());
  EXPECT_TRUE(layer->named_children().empty());
  EXPECT_EQ(names_and_shapes(*layer), names_before);
  EXPECT_EQ(nn::LoraAdapter::of(*layer), nullptr);
  NoGradGuard no_grad;
  EXPECT_LE(max_diff(layer_forward(*layer, x), y.detach()), 1e-5);
}

TEST(Lora, HookComputesTheLiteralLoraOutputAndGradients) {
  const Tensor x = Tensor::randn({5, 12}, 3);
  auto with_random_bias = [](std::shared_ptr<nn::Module> layer) {
    NoGradGuard no_grad;
    Tensor bias = layer->named_parameters()[1].second;
    bias.copy_(Tensor::randn(bias.shape(), 8));
    return layer;
  };
  check_hook_against_hand_computation(with_random_bias(std::make_shared<nn::Linear>(12, 10, true, 0.2, 1)), x);
  check_hook_against_hand_computation(with_random_bias(std::make_shared<nn::Conv1D>(12, 10, 0.2, 2)), x);
}

TEST(Lora, DropoutActsOnTheAdapterInputInTrainingOnly) {
  auto lin = std::make_shared<nn::Linear>(12, 10, true, 0.2, 1);
  auto adapter = std::make_shared<nn::LoraAdapter>(lin, 4, 8.0, 0.5, 3);
  adapter->attach();
  {
    NoGradGuard no_grad;
    Tensor b = adapter->lora_B();
    b.copy_(Tensor::randn(b.shape(), 5));
    Tensor bias = lin->named_parameters()[1].second;
    bias.copy_(Tensor::randn(bias.shape(), 8));
  }
  const Tensor x = Tensor::randn({6, 12}, 4);
  const Tensor base = ops::linear(x, adapter->base_weight(), lin->named_parameters()[1].second).detach();
  const Tensor delta = ops::mul(ops::linear(ops::linear(x, adapter->lora_A()), adapter->lora_B()), 2.0).detach();
  const Tensor full = ops::add(base, delta);
  lin->eval();
  EXPECT_EQ(max_diff(lin->forward(x), full), 0.0);  // eval: no dropout, exactly base + delta
  lin->train();
  const Tensor dropped = lin->forward(x);
  EXPECT_GT(max_diff(dropped, full), 1e-3);
  // Training mode trains: A and B get gradients through the dropped input.
  Tensor a = adapter->lora_A();
  a.zero_grad();
  ops::sum(dropped).backward();
  ASSERT_TRUE(a.grad().defined());
  EXPECT_GT(max_abs(a.grad()), 1e-4);
  // Only the adapter path is dropped: with B = 0 training-mode output is the base's exactly.
  NoGradGuard no_grad;
  Tensor b = adapter->lora_B();
  b.zero_();
  EXPECT_EQ(max_diff(lin->forward(x), base), 0.0);
}

TEST(Lora, Gpt2WithDropoutTrainsAndEvaluatesDeterministically) {
  models::Gpt2 model(gpt2_config(), 7);
  nn::LoraConfig c = gpt2_lora();
  c.dropout = 0.3;
  EXPECT_EQ(nn::inject_lora(model, c), 4);
  for (const auto& [path, a] : nn::lora_modules(model)) EXPECT_EQ(a->dropout(), 0.3) << path;
  const auto losses = train(model, 8, [&] { return model.loss(gpt2_ids(), gpt2_targets()); });
  EXPECT_LT(losses.back(), losses.front()) << "LoRA training with dropout did not reduce the loss";
  // eval() (called by train) turns the adapter dropout off: two evaluations agree exactly ...
  const Tensor e1 = gpt2_logits(model), e2 = gpt2_logits(model);
  EXPECT_EQ(max_diff(e1, e2), 0.0);
  // ... and training mode differs from evaluation (only the adapters drop: model dropout is 0).
  model.train();
  EXPECT_GT(max_diff(gpt2_logits(model), e1), 1e-5);
  model.eval();
  EXPECT_EQ(max_diff(gpt2_logits(model), e1), 0.0);

  // The dropout rate round-trips through adapter_config.json and is applied on load.
  TempDir tmp;
  nn::save_lora_adapters(model, tmp.path.string(), c);
  models::Gpt2 fresh(gpt2_config(), 7);
  fresh.eval();
  EXPECT_EQ(nn::load_lora_adapters(fresh, tmp.path.string()).dropout, 0.3);
  for (const auto& [path, a] : nn::lora_modules(fresh)) EXPECT_EQ(a->dropout(), 0.3) << path;
  EXPECT_LE(max_diff(gpt2_logits(fresh), e1), 1e-6);
}

TEST(Lora, Gpt2TrainedAdaptersMergeIntoTheOriginalParameterSet) {
  models::Gpt2 model(gpt2_config(), 7);
  const auto original = names_and_shapes(model);
  std::map<std::string, Tensor> before;
  for (const auto& [n, t] : model.named_parameters()) before[n] = t.clone();
  nn::inject_lora(model, gpt2_lora());

  const auto losses = train(model, 8, [&] { return model.loss(gpt2_ids(), gpt2_targets()); });
  EXPECT_LT(losses.back(), losses.front() - 0.05) << "LoRA training did not reduce the loss";
  for (const auto& [path, w] : nn::lora_modules(model)) EXPECT_GT(max_abs(w->lora_B()), 1e-4) << path;
  // The base weights did not move.
  for (const auto& [n, t] : model.named_parameters()) {
    if (!is_adapter(n)) {
      EXPECT_EQ(max_diff(t, before.at(n)), 0.0) << n;
    }
  }

  const Tensor adapted = gpt2_logits(model);
  EXPECT_GT(max_diff(adapted, [&] {
              models::Gpt2 fresh(gpt2_config(), 7);
              fresh.eval();
              return gpt2_logits(fresh);
            }()),
            1e-3);
  nn::merge_lora(model);
  EXPECT_EQ(names_and_shapes(model), original);
  EXPECT_TRUE(nn::lora_modules(model).empty());
  EXPECT_LE(max_diff(gpt2_logits(model), adapted), 1e-5);
  // Merged weights differ from the originals exactly where adapters were.
  for (const auto& [n, t] : model.named_parameters()) {
    const bool adapted_weight = n.find("c_attn.weight") != std::string::npos || n.find("c_fc.weight") != std::string::npos;
    if (adapted_weight)
      EXPECT_GT(max_diff(t, before.at(n)), 1e-6) << n;
    else
      EXPECT_EQ(max_diff(t, before.at(n)), 0.0) << n;
  }
}

// A and B are read at every forward: changing them (optimizer step, load) needs no re-sync, and
// backward can run after every forward.
TEST(Lora, AdapterChangesTakeEffectWithoutResync) {
  models::Gpt2 base(gpt2_config(), 7), model(gpt2_config(), 7);
  base.eval();
  nn::inject_lora(model, gpt2_lora());
  model.loss(gpt2_ids(), gpt2_targets()).backward();
  EXPECT_NO_THROW(model.loss(gpt2_ids(), gpt2_targets()).backward());
  model.eval();
  EXPECT_EQ(max_diff(gpt2_logits(model), gpt2_logits(base)), 0.0);
  {
    NoGradGuard no_grad;
    model.set_parameter("h.0.attn.c_attn.lora_B.weight", Tensor::full({48, 4}, 0.05));
  }
  EXPECT_GT(max_diff(gpt2_logits(model), gpt2_logits(base)), 1e-4);
}

TEST(Lora, BertAdaptersSaveInPeftLayoutAndLoadIntoAFreshModel) {
  TempDir tmp;
  models::BertForSequenceClassification model(bert_config(), models::BertPooling::Cls, 11);
  const auto original = names_and_shapes(model);
  const nn::LoraConfig config = bert_lora();
  nn::inject_lora(model, config);
  const auto losses = train(model, 8, [&] { return ops::cross_entropy(model.logits(bert_inputs()), bert_labels()); });
  EXPECT_LT(losses.back(), losses.front());
  const Tensor adapted = bert_logits(model);

  const std::string dir = (tmp.path / "adapter").string();
  nn::save_lora_adapters(model, dir, config);
  const io::StateDict sd = io::load_safetensors(dir + "/adapter_model.safetensors");
  EXPECT_EQ(sd.size(), 12u);
  ASSERT_TRUE(sd.count("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
  EXPECT_EQ(sd.at("base_model.model.bert.encoder.layer.1.output.dense.lora_A.weight").shape(), (Shape{4, 32}));
  EXPECT_EQ(sd.at("base_model.model.bert.encoder.layer.1.output.dense.lora_B.weight").shape(), (Shape{16, 4}));
  std::ifstream jf(dir + "/adapter_config.json");
  const auto j = nlohmann::json::parse(jf);
  EXPECT_EQ(j.at("peft_type"), "LORA");
  EXPECT_EQ(j.at("r"), 4);
  EXPECT_EQ(j.at("lora_alpha").get<double>(), 16.0);
  EXPECT_EQ(j.at("lora_dropout").get<double>(), 0.0);
  EXPECT_EQ(j.at("target_modules").get<std::vector<std::string>>(), config.target_patterns);

  models::BertForSequenceClassification fresh(bert_config(), models::BertPooling::Cls, 11);
  fresh.eval();
  const nn::LoraConfig loaded = nn::load_lora_adapters(fresh, dir);
  EXPECT_EQ(loaded.rank, 4);
  EXPECT_EQ(loaded.alpha, 16.0);
  EXPECT_EQ(loaded.target_patterns, config.target_patterns);
  EXPECT_EQ(nn::lora_modules(fresh).size(), 6u);
  EXPECT_LE(max_diff(bert_logits(fresh), adapted), 1e-6);
  for (const auto& [n, t] : fresh.named_parameters()) EXPECT_EQ(t.requires_grad(), is_adapter(n)) << n;

  // Merge after loading: original names, same outputs.
  nn::merge_lora(fresh);
  EXPECT_EQ(names_and_shapes(fresh), original);
  EXPECT_LE(max_diff(bert_logits(fresh), adapted), 1e-5);
}

TEST(Lora, Gpt2AdaptersRoundTripAndPeftTransformerPrefixIsAccepted) {
  TempDir tmp;
  models::Gpt2 model(gpt2_config(), 7);
  nn::inject_lora(model, gpt2_lora());
  train(model, 3, [&] { return model.loss(gpt2_ids(), gpt2_targets()); });
  const Tensor adapted = gpt2_logits(model);
  const std::string dir = (tmp.path / "a").string();
  nn::save_lora_adapters(model, dir, gpt2_lora());
  {
    models::Gpt2 fresh(gpt2_config(), 7);
    fresh.eval();
    nn::load_lora_adapters(fresh, dir);
    EXPECT_LE(max_diff(gpt2_logits(fresh), adapted), 1e-6);
  }
  // Hugging Face's GPT2LMHeadModel paths carry "transformer.": PEFT files say
  // base_model.model.transformer.h.0.attn.c_attn.lora_A.weight.
  io::StateDict sd = io::load_safetensors(dir + "/adapter_model.safetensors"), renamed;
  for (const auto& [k, t] : sd) renamed["base_model.model.transformer." + k.substr(17)] = t.clone();
  const std::string peft_dir = (tmp.path / "peft").string();
  fs::create_directories(peft_dir);
  io::save_safetensors(peft_dir + "/adapter_model.safetensors", renamed);
  fs::copy_file(dir + "/adapter_config.json", peft_dir + "/adapter_config.json");
  models::Gpt2 fresh(gpt2_config(), 7);
  fresh.eval();
  nn::load_lora_adapters(fresh, peft_dir);
  EXPECT_LE(max_diff(gpt2_logits(fresh), adapted), 1e-6);
}

TEST(Lora, BadAdapterFilesNameTheFileAndTensor) {
  TempDir tmp;
  models::Gpt2 model(gpt2_config(), 7);
  nn::inject_lora(model, gpt2_lora());
  const std::string dir = (tmp.path / "a").string();
  nn::save_lora_adapters(model, dir, gpt2_lora());
  const std::string weights = dir + "/adapter_model.safetensors", cfg = dir + "/adapter_config.json";
  auto load_error = [&]() -> std::string {
    models::Gpt2 fresh(gpt2_config(), 7);
    try {
      nn::load_lora_adapters(fresh, dir);
    } catch (const std::exception& e) {
      EXPECT_TRUE(nn::lora_modules(fresh).empty()) << "a failed load must leave the model untouched";
      return e.what();
    }
    return "";
  };
  const io::StateDict good = io::load_safetensors(weights);
  const std::string good_cfg = [&] {
    std::ifstream f(cfg);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }();
  auto write_cfg = [&](const std::string& text) { std::ofstream(cfg) << text; };

  // Rank in the config disagrees with the tensors.
  auto j = nlohmann::json::parse(good_cfg);
  j["r"] = 8;
  write_cfg(j.dump());
  std::string msg = load_error();
  EXPECT_NE(msg.find(weights), std::string::npos) << msg;
  EXPECT_NE(msg.find("base_model.model.h.0.attn.c_attn.lora_A.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 16]"), std::string::npos) << msg;
  write_cfg(good_cfg);

  // A missing partner.
  io::StateDict sd = good;
  sd.erase("base_model.model.h.1.mlp.c_fc.lora_B.weight");
  io::save_safetensors(weights, sd);
  msg = load_error();
  EXPECT_NE(msg.find("base_model.model.h.1.mlp.c_fc.lora_B.weight' is missing"), std::string::npos) << msg;

  // A module the model does not have: the closest names are listed.
  sd = good;
  sd["base_model.model.h.0.attn.c_atn.lora_A.weight"] = Tensor::zeros({4, 16});
  io::save_safetensors(weights, sd);
  msg = load_error();
  EXPECT_NE(msg.find("'base_model.model.h.0.attn.c_atn.lora_A.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("closest: h.0.attn.c_attn"), std::string::npos) << msg;
  io::save_safetensors(weights, good);

  // Config problems name the config file.
  j = nlohmann::json::parse(good_cfg);
  j["use_dora"] = true;
  write_cfg(j.dump());
  msg = load_error();
  EXPECT_NE(msg.find(cfg), std::string::npos) << msg;
  EXPECT_NE(msg.find("DoRA"), std::string::npos) << msg;
  write_cfg("{not json");
  msg = load_error();
  EXPECT_NE(msg.find(cfg), std::string::npos) << msg;
  fs::remove(cfg);
  msg = load_error();
  EXPECT_NE(msg.find(cfg), std::string::npos) << msg;
}

// ---- Conv2d -------------------------------------------------------------------------------------
// A small conv net: a 3x3 conv with bias, a strided dilated conv, a depthwise (grouped) conv.
class TinyConvNet : public nn::Module {
 public:
  explicit TinyConvNet(uint64_t seed) {
    conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, true, seed));
    conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(8, 6, 3, 2, 2, false, seed + 1, 1, 2));
    dw_ = register_module("dw", std::make_shared<nn::Conv2d>(6, 6, 3, 1, 1, false, seed + 2, 6));
  }
  Tensor forward(const Tensor& x) const {
    return dw_->forward(ops::relu(conv2_->forward(ops::relu(conv1_->forward(x)))));
  }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, dw_;
};

Tensor images() { return Tensor::randn({2, 3, 9, 9}, 21); }

Tensor conv_out(const TinyConvNet& m) {
  NoGradGuard no_grad;
  return m.forward(images());
}

nn::LoraConfig conv_lora() {
  nn::LoraConfig c;
  c.rank = 2, c.alpha = 4;
  c.target_patterns = {"conv?"};
  return c;
}

TEST(LoraConv2d, AtInitEqualsTheBaseAndGroupedConvsAreRefused) {
  TinyConvNet base(3), model(3);
  const auto original = names_and_shapes(model);
  nn::LoraConfig c = conv_lora();
  c.target_patterns = {"dw"};
  try {
    nn::inject_lora(model, c);
    FAIL() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("grouped Conv2d (groups = 6"), std::string::npos) << e.what();
  }
  EXPECT_EQ(names_and_shapes(model), original);
  EXPECT_EQ(nn::inject_lora(model, conv_lora()), 2);
  EXPECT_EQ(max_diff(conv_out(model), conv_out(base)), 0.0);
  std::map<std::string, Shape> shapes;
  for (const auto& [n, t] : model.named_parameters()) shapes[n] = t.shape();
  EXPECT_EQ(shapes.at("conv1.lora_A.weight"), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(shapes.at("conv1.lora_B.weight"), (Shape{8, 2, 1, 1}));
  EXPECT_EQ(shapes.at("conv2.lora_A.weight"), (Shape{2, 8, 3, 3}));
  EXPECT_EQ(shapes.at("conv2.lora_B.weight"), (Shape{6, 2, 1, 1}));
  EXPECT_EQ(shapes.size(), original.size() + 4);
}

// The hook's conv_B(conv_A(x)) equals a conv with the merged weight W + delta_weight() (what
// merge folds in), in values and in the gradients of A and B.
TEST(LoraConv2d, HookEqualsTheEffectiveWeightConv) {
  // Strided, padded, dilated base: A must reuse its geometry, B is 1x1.
  auto conv = std::make_shared<nn::Conv2d>(3, 5, 3, 2, 2, true, 4, 1, 2);
  {
    NoGradGuard no_grad;
    Tensor bias = conv->named_parameters()[1].second;
    bias.copy_(Tensor::randn({5}, 6));
  }
  EXPECT_EQ(conv->args().stride_h, 2);
  EXPECT_EQ(conv->args().dilation_w, 2);
  auto adapter = std::make_shared<nn::LoraAdapter>(conv, 2, 3.0, 0.0, 9);
  adapter->attach();
  {
    NoGradGuard no_grad;
    Tensor b = adapter->lora_B();
    b.copy_(Tensor::randn(b.shape(), 5));
  }
  const Tensor x = images();
  const Tensor bias = conv->named_parameters()[1].second;
  const Tensor y_hook = conv->forward(x);
  const Tensor y_effective =
      ops::conv2d(x, ops::add(adapter->base_weight(), adapter->delta_weight()), bias, conv->args());
  ASSERT_EQ(y_hook.shape(), (Shape{2, 5, 5, 5}));  // (9 + 2*2 - 2*(3-1) - 1) / 2 + 1
  EXPECT_LE(max_diff(y_hook, y_effective), 1e-5);
  const Tensor g = Tensor::randn(y_hook.shape(), 13);
  auto grads_of = [&](const Tensor& y) {
    Tensor a = adapter->lora_A(), b = adapter->lora_B();
    a.zero_grad(), b.zero_grad();
    ops::sum(ops::mul(y, g)).backward();
    return std::pair{a.grad().clone(), b.grad().clone()};
  };
  const auto [ga1, gb1] = grads_of(y_hook);
  const auto [ga2, gb2] = grads_of(y_effective);
  EXPECT_LE(max_diff(ga1, ga2), 1e-4);
  EXPECT_LE(max_diff(gb1, gb2), 1e-4);
  EXPECT_GT(max_abs(ga1), 1e-3);
  adapter->merge();
  NoGradGuard no_grad;
  EXPECT_LE(max_diff(conv->forward(x), y_hook.detach()), 1e-5);
}

TEST(LoraConv2d, TrainedAdaptersMergeIntoTheOriginalParameterSet) {
  TinyConvNet model(3);
  const auto original = names_and_shapes(model);
  nn::inject_lora(model, conv_lora());
  const Tensor target = Tensor::randn({2, 6, 5, 5}, 30);
  const auto losses = train(model, 6, [&] { return ops::mean(ops::pow(ops::sub(model.forward(images()), target), 2.0)); });
  EXPECT_LT(losses.back(), losses.front());
  for (const auto& [path, w] : nn::lora_modules(model)) EXPECT_GT(max_abs(w->lora_B()), 1e-4) << path;
  const Tensor adapted = conv_out(model);
  EXPECT_GT(max_diff(adapted, conv_out(TinyConvNet(3))), 1e-4);

  TempDir tmp;
  nn::save_lora_adapters(model, tmp.path.string(), conv_lora());
  TinyConvNet fresh(3);
  nn::load_lora_adapters(fresh, tmp.path.string());
  EXPECT_LE(max_diff(conv_out(fresh), adapted), 1e-6);

  nn::merge_lora(model);
  EXPECT_EQ(names_and_shapes(model), original);
  EXPECT_LE(max_diff(conv_out(model), adapted), 1e-5);
}

// ---- the Module API LoRA builds on ---------------------------------------------------------------

TEST(ModuleApi, ForwardHooksChildrenAndModulePaths) {
  // A hook replaces the output of Linear / Conv1D / Conv2d forward, sees input and output, and
  // can be removed again.
  auto lin = std::make_shared<nn::Linear>(4, 3, true, 0.5, 1);
  const Tensor x = Tensor::randn({2, 4}, 2);
  NoGradGuard no_grad;
  const Tensor y0 = lin->forward(x);
  Tensor seen_input;
  lin->set_forward_hook([&](const Tensor& in, const Tensor& y) {
    seen_input = in;
    return ops::mul(y, 2.0);
  });
  EXPECT_EQ(max_diff(lin->forward(x), ops::mul(y0, 2.0)), 0.0);
  EXPECT_EQ(max_diff(seen_input, x), 0.0);
  lin->set_forward_hook({});
  EXPECT_EQ(max_diff(lin->forward(x), y0), 0.0);
  auto c1 = std::make_shared<nn::Conv1D>(4, 3, 0.5, 1);
  c1->set_forward_hook([](const Tensor&, const Tensor& y) { return ops::add(y, 1.0); });
  EXPECT_EQ(max_diff(c1->forward(x), ops::add(ops::matmul(x, c1->named_parameters()[0].second), 1.0)), 0.0);
  auto conv = std::make_shared<nn::Conv2d>(3, 2, 1, 1, 0, false, 1);
  conv->set_forward_hook([](const Tensor&, const Tensor& y) { return ops::mul(y, 0.0); });
  EXPECT_EQ(max_abs(conv->forward(images())), 0.0);

  // named_children / named_modules: direct children, and every module below with dotted paths.
  models::Gpt2 model(gpt2_config(), 7);
  std::vector<std::string> children;
  for (const auto& [n, m] : model.named_children()) children.push_back(n);
  EXPECT_NE(std::find(children.begin(), children.end(), "wte"), children.end());
  EXPECT_NE(std::find(children.begin(), children.end(), "h.1"), children.end());
  std::set<std::string> params, prefixes;
  for (const auto& [n, t] : model.named_parameters()) params.insert(n);
  std::shared_ptr<nn::Module> c_attn;
  for (const auto& [path, m] : model.named_modules()) {
    prefixes.insert(path);
    if (path == "h.0.attn.c_attn") c_attn = m;
  }
  ASSERT_TRUE(c_attn);
  EXPECT_TRUE(dynamic_cast<nn::Conv1D*>(c_attn.get()));
  for (const std::string& p : params) {  // every parameter's owner is listed
    if (p.find('.') == std::string::npos) continue;
    EXPECT_TRUE(prefixes.count(p.substr(0, p.rfind('.')))) << p;
  }

  // add_module / remove_module from outside: names appear under the module's path.
  auto extra = std::make_shared<nn::Linear>(16, 2, false, 0.1, 3);
  c_attn->add_module("extra", extra);
  std::map<std::string, Shape> shapes;
  for (const auto& [n, t] : model.named_parameters()) shapes[n] = t.shape();
  EXPECT_EQ(shapes.at("h.0.attn.c_attn.extra.weight"), (Shape{2, 16}));
  EXPECT_THROW(c_attn->add_module("extra", extra), std::invalid_argument);   // child name taken
  EXPECT_THROW(c_attn->add_module("weight", extra), std::invalid_argument);  // parameter name
  EXPECT_THROW(c_attn->add_module("", extra), std::invalid_argument);
  EXPECT_EQ(c_attn->remove_module("extra"), extra);
  EXPECT_THROW(c_attn->remove_module("extra"), std::invalid_argument);
  EXPECT_EQ(model.parameter_count(), models::Gpt2(gpt2_config(), 7).parameter_count());
}

}  // namespace
}  // namespace hone
