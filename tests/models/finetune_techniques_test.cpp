// The fine-tuning techniques the Trainer offers every task: freezing (patterns, layer groups,
// gradual unfreezing), layer-wise LR decay and parameter groups, SGD, LR schedules, early stopping.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "engine/train/early_stopping.h"
#include "engine/train/trainer.h"
#include "kernels/philox.h"
#include "models/gpt2/gpt2.h"

namespace hone {
namespace {

models::Gpt2Config tiny() {
  models::Gpt2Config c;
  c.n_layer = 3;
  c.n_head = 2;
  c.n_embd = 16;
  c.n_positions = 16;
  c.vocab_size = 40;
  c.resid_pdrop = c.embd_pdrop = c.attn_pdrop = 0.1;
  return c;
}

class LmTask : public TrainTask {
 public:
  explicit LmTask(models::Gpt2& m, std::vector<double> scripted = {}) : m_(m), scripted_(std::move(scripted)) {}
  nn::Module& model() override { return m_; }
  TrainBatch next_batch() override {
    std::vector<int64_t> x(4 * 8), y(4 * 8);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = int64_t(philox::uniform(3, 0, 2 * (pos_ * 32 + i)) * 40) % 40;
      y[i] = (x[i] * 3 + 1) % 40;
    }
    ++pos_;
    TrainBatch b;
    b.inputs = Tensor::from_vector(x, {4, 8});
    b.targets = Tensor::from_vector(y, {4, 8});
    b.count = b.work = 32;
    return b;
  }
  Tensor mean_loss(const TrainBatch& b) override { return m_.loss(b.inputs, b.targets); }
  std::map<std::string, double> evaluate() override {
    if (evals_ < scripted_.size()) return {{"score", scripted_[evals_++]}};
    return {{"score", 0.0}};
  }
  int64_t data_position() const override { return pos_; }
  void restore_data_position(int64_t p) override { pos_ = p; }

 private:
  models::Gpt2& m_;
  std::vector<double> scripted_;
  size_t evals_ = 0;
  int64_t pos_ = 0;
};

std::map<std::string, std::vector<float>> snapshot(const nn::Module& m) {
  std::map<std::string, std::vector<float>> s;
  for (auto& [n, p] : m.named_parameters()) s[n] = p.to_vector<float>();
  return s;
}

TEST(Freezing, FrozenWeightsAreBitIdenticalAfterTrainingAndHaveNoState) {
  models::Gpt2 m(tiny(), 1);
  LmTask task(m);
  TrainerOptions o;
  o.steps = 4;
  o.quiet = true;
  o.lr = 1e-2;
  o.freeze = {"wte.weight", "h.0.*"};
  o.freeze_layers = 0;
  Trainer t(task, o);
  const auto before = snapshot(m);
  for (int s = 0; s < 4; ++s) t.train_step(s);
  const auto after = snapshot(m);
  for (auto& [n, v] : before) {
    const bool frozen = n == "wte.weight" || n.rfind("h.0.", 0) == 0;
    if (frozen) {
      EXPECT_EQ(v, after.at(n)) << n << " moved";
      for (auto& [name, p] : m.named_parameters())
        if (name == n) {
          EXPECT_FALSE(p.grad().defined()) << n << " has a gradient buffer";
        }
    } else if (n != "wpe.weight") {
      EXPECT_NE(v, after.at(n)) << n << " did not train";
    }
  }
  const TrainableSummary s = t.trainable();
  EXPECT_LT(s.trainable, s.total);
  EXPECT_GT(s.frozen_bytes_saved, 0);
}

TEST(Freezing, PatternMatchingNothingIsAnErrorListingCloseNames) {
  models::Gpt2 m(tiny(), 1);
  LmTask task(m);
  TrainerOptions o;
  o.quiet = true;
  o.freeze = {"h.0.atn.*"};
  try {
    Trainer t(task, o);
    FAIL() << "accepted a pattern matching nothing";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("matches no name"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("h.0.attn"), std::string::npos) << e.what();
  }
}

TEST(Freezing, GradualUnfreezingGoesTopDownOnSchedule) {
  models::Gpt2 m(tiny(), 1);  // groups: embeddings, h.0, h.1, h.2, ln_f
  LmTask task(m);
  TrainerOptions o;
  o.steps = 20;
  o.quiet = true;
  o.unfreeze_every = 2;
  Trainer t(task, o);
  auto trainable = [&](const std::string& name) {
    for (auto& [n, p] : m.named_parameters())
      if (n == name) return p.requires_grad();
    return false;
  };
  t.apply_freezing(0);
  EXPECT_TRUE(trainable("ln_f.weight"));
  EXPECT_FALSE(trainable("h.2.attn.c_attn.weight"));
  t.apply_freezing(2);
  EXPECT_TRUE(trainable("h.2.attn.c_attn.weight"));
  EXPECT_FALSE(trainable("h.1.attn.c_attn.weight"));
  t.apply_freezing(6);
  EXPECT_TRUE(trainable("h.0.mlp.c_fc.weight"));
  EXPECT_FALSE(trainable("wte.weight"));
  t.apply_freezing(8);
  EXPECT_TRUE(trainable("wte.weight"));
}

TEST(LayerwiseLr, DecaysFromTheTopAndGroupsScale) {
  models::Gpt2 m(tiny(), 1);
  LmTask task(m);
  TrainerOptions o;
  o.steps = 10;
  o.quiet = true;
  o.lr = 1.0;
  o.decay = "constant";
  o.layer_lr_decay = 0.5;
  o.groups = {{"*.mlp.*", 0.1, 0.0}};
  Trainer t(task, o);
  EXPECT_DOUBLE_EQ(t.lr_of("ln_f.weight", 3), 1.0);                // top group
  EXPECT_DOUBLE_EQ(t.lr_of("h.2.attn.c_attn.weight", 3), 0.5);
  EXPECT_DOUBLE_EQ(t.lr_of("h.0.attn.c_attn.weight", 3), 0.125);
  EXPECT_DOUBLE_EQ(t.lr_of("wte.weight", 3), 0.0625);
  EXPECT_DOUBLE_EQ(t.lr_of("h.2.mlp.c_fc.weight", 3), 0.05);       // group scale on top of depth
}

TEST(Sgd, MomentumAndNesterovFollowTorchOptimSgd) {
  for (bool nesterov : {false, true}) {
    Tensor p = Tensor::from_vector<float>({1.0f, -2.0f}, {2});
    p.requires_grad_(true);
    OptimizerConfig c;
    c.kind = "sgd";
    c.momentum = 0.9;
    c.nesterov = nesterov;
    auto opt = Optimizer::create(c, {{"p", p, 1.0, 0.1}});
    double ref[2] = {1.0, -2.0}, buf[2] = {0, 0};
    const double g[3][2] = {{0.5, -1.0}, {0.2, 0.3}, {-0.4, 0.1}};
    for (int s = 0; s < 3; ++s) {
      {
        NoGradGuard ng;
        p.set_grad(Tensor::from_vector<float>({float(g[s][0]), float(g[s][1])}, {2}));
      }
      opt->step(0.1);
      for (int i = 0; i < 2; ++i) {
        const double gi = g[s][i] + 0.1 * ref[i];
        buf[i] = s == 0 ? gi : 0.9 * buf[i] + gi;
        ref[i] -= 0.1 * (nesterov ? gi + 0.9 * buf[i] : buf[i]);
      }
      const auto v = p.to_vector<float>();
      EXPECT_NEAR(v[0], ref[0], 1e-6);
      EXPECT_NEAR(v[1], ref[1], 1e-6);
    }
  }
}

TEST(Schedules, PinnedValues) {
  auto make = [](const std::string& kind) {
    LrScheduleConfig c;
    c.kind = kind;
    c.total_steps = 100;
    c.warmup_steps = 10;
    c.min_lr_ratio = 0.1;
    return LrSchedule(c, 1.0);
  };
  EXPECT_DOUBLE_EQ(make("constant").lr(0), 0.1);  // warmup: (step + 1) / warmup
  EXPECT_DOUBLE_EQ(make("constant").lr(50), 1.0);
  EXPECT_NEAR(make("linear").lr(55), 0.55, 1e-12);
  EXPECT_NEAR(make("cosine").lr(55), 0.55, 1e-12);
  EXPECT_NEAR(make("cosine").lr(10), 1.0, 1e-12);
  EXPECT_NEAR(make("cosine").lr(100), 0.1, 1e-12);
  // cosine_restarts with 2 cycles of 45 steps: restarts at step 55.
  EXPECT_NEAR(make("cosine_restarts").lr(54), 0.1 + 0.45 * (1 + std::cos(M_PI * 44.0 / 45)), 1e-12);
  EXPECT_NEAR(make("cosine_restarts").lr(55), 1.0, 1e-12);
  // wsd: stable until step 90 (decay_ratio 0.1), then linear to the floor.
  EXPECT_DOUBLE_EQ(make("wsd").lr(89), 1.0);
  EXPECT_NEAR(make("wsd").lr(94), 1.0 - 0.9 * 0.5, 1e-12);
  EXPECT_NEAR(make("wsd").lr(99), 0.1, 1e-12);
  // warmup as a ratio
  LrScheduleConfig r;
  r.kind = "constant";
  r.total_steps = 200;
  r.warmup_ratio = 0.1;
  EXPECT_EQ(LrSchedule(r, 1.0).warmup_steps(), 20);
  // plateau: halves after `patience` evaluations without improvement
  LrScheduleConfig p;
  p.kind = "plateau";
  p.total_steps = 100;
  p.patience = 1;
  LrSchedule pl(p, 1.0);
  for (double m : {1.0, 0.9, 0.95, 0.96}) pl.on_evaluation(m);
  EXPECT_DOUBLE_EQ(pl.lr(50), 0.5);
}

TEST(Schedules, PhasesThatDoNotFitAreErrors) {
  LrScheduleConfig c;
  c.total_steps = 10;
  c.warmup_steps = 20;
  EXPECT_THROW(LrSchedule(c, 1.0), std::invalid_argument);
  c.warmup_steps = 5;
  c.kind = "wsd";
  c.decay_ratio = 0.6;
  EXPECT_THROW(LrSchedule(c, 1.0), std::invalid_argument);
  c.kind = "cosine_restarts";
  c.cycles = 8;
  EXPECT_THROW(LrSchedule(c, 1.0), std::invalid_argument);
  c.kind = "bogus";
  EXPECT_THROW(LrSchedule(c, 1.0), std::invalid_argument);
}

TEST(EarlyStopping, StopsAtTheRightEvaluationOnAScriptedSeries) {
  EarlyStopping e({"acc", "max", 2, 0.01});
  const double series[] = {0.50, 0.60, 0.605, 0.62, 0.615, 0.62, 0.70};
  int stopped_at = -1;
  for (int i = 0; i < 7; ++i) {
    e.update(series[i]);
    if (e.should_stop()) {
      stopped_at = i;
      break;
    }
  }
  // 0.605 is not an improvement over 0.60 by > 0.01; 0.62 is; then 0.615 and 0.62 are not.
  EXPECT_EQ(stopped_at, 5);
  EXPECT_DOUBLE_EQ(e.best(), 0.62);
}

TEST(EarlyStopping, TrainerStopsKeepsAndLoadsTheBest) {
  models::Gpt2 m(tiny(), 1);
  LmTask task(m, {0.9, 0.5, 0.7, 0.8, 0.6, 0.4});  // loss-like: best at the 2nd evaluation
  const auto dir = std::filesystem::temp_directory_path() / ("hone-early-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  TrainerOptions o;
  o.steps = 12;
  o.eval_every = 2;
  o.quiet = true;
  o.out_dir = dir.string();
  o.early_stopping_metric = "score";
  o.early_stopping_mode = "min";
  o.early_stopping_patience = 2;
  Trainer t(task, o);
  const TrainSummary s = t.run();
  EXPECT_TRUE(s.stopped_early);
  EXPECT_EQ(s.steps_done, 8);  // evaluations at 2, 4 (best), 6, 8 -> stop
  EXPECT_EQ(s.best_step, 4);
  EXPECT_TRUE(std::filesystem::exists(dir / "best" / "model.safetensors"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hone

#include "models/resnet/resnet.h"

namespace hone {
namespace {

// A frozen ResNet backbone keeps its BatchNorm layers in eval mode: after training steps of the
// head, every backbone weight AND every running statistic is bit-identical.
class ImageTask : public TrainTask {
 public:
  explicit ImageTask(models::ResNet& m) : m_(m) {}
  nn::Module& model() override { return m_; }
  TrainBatch next_batch() override {
    TrainBatch b;
    b.inputs = Tensor::randn({4, 3, 16, 16}, 100 + uint64_t(pos_++));
    b.targets = Tensor::from_vector<int64_t>({0, 1, 2, 1}, {4});
    b.count = b.work = 4;
    return b;
  }
  Tensor mean_loss(const TrainBatch& b) override { return ops::cross_entropy(m_.forward(b.inputs), b.targets); }
  std::map<std::string, double> evaluate() override { return {}; }
  int64_t data_position() const override { return pos_; }
  void restore_data_position(int64_t p) override { pos_ = p; }

 private:
  models::ResNet& m_;
  int64_t pos_ = 0;
};

TEST(Freezing, FrozenResNetBackboneKeepsBatchNormStatisticsBitExact) {
  models::ResNet m(models::ResNetConfig::from_name("resnet20", 3), 5);
  ImageTask task(m);
  TrainerOptions o;
  o.steps = 3;
  o.quiet = true;
  o.lr = 1e-2;
  o.freeze_layers = 4;  // stem, layer1, layer2, layer3: only the head trains
  Trainer t(task, o);
  std::map<std::string, std::vector<float>> before;
  for (auto& [n, b] : m.named_buffers())
    if (b.dtype() == DType::F32) before[n] = b.to_vector<float>();
  const auto params_before = snapshot(m);
  for (int s = 0; s < 3; ++s) t.train_step(s);
  for (auto& [n, b] : m.named_buffers())
    if (b.dtype() == DType::F32) {
      EXPECT_EQ(before.at(n), b.to_vector<float>()) << n << " moved";
    }
  for (auto& [n, v] : snapshot(m)) {
    if (n.rfind("linear.", 0) == 0)
      EXPECT_NE(v, params_before.at(n)) << "the head did not train";
    else
      EXPECT_EQ(v, params_before.at(n)) << n << " moved";
  }
  // Without freezing, the same steps do move the statistics (the test can fail).
  models::ResNet m2(models::ResNetConfig::from_name("resnet20", 3), 5);
  ImageTask task2(m2);
  TrainerOptions o2 = o;
  o2.freeze_layers = 0;
  Trainer t2(task2, o2);
  const auto stats_before = m2.named_buffers()[1].second.to_vector<float>();  // bn1.running_var
  t2.train_step(0);
  EXPECT_NE(stats_before, m2.named_buffers()[1].second.to_vector<float>());
}

}  // namespace
}  // namespace hone
