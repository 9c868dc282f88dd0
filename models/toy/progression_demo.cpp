#include "models/toy/progression_demo.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "engine/optim/adamw.h"
#include "engine/optim/schedule.h"
#include "engine/train/progress.h"
#include "kernels/philox.h"
#include "models/toy/tiny_gpt.h"

namespace hone::models {

namespace {

// Batch `index` of the stream `stream`: B sequences of T+1 tokens -> inputs and next-token targets.
void make_batch(int64_t B, int64_t T, int64_t V, uint64_t stream, uint64_t index, Tensor& ids, Tensor& targets) {
  std::vector<int64_t> x(B * T), y(B * T);
  for (int64_t b = 0; b < B; ++b) {
    const uint64_t k = (index * B + b) * 2;
    const int64_t start = int64_t(philox::uniform(stream, 0, k) * V) % V;
    const int64_t step = 1 + int64_t(philox::uniform(stream, 0, k + 1) * 5) % 5;
    for (int64_t t = 0; t <= T; ++t) {
      const int64_t tok = (start + step * t) % V;
      if (t < T) x[b * T + t] = tok;
      if (t > 0) y[b * T + t - 1] = tok;
    }
  }
  ids = Tensor::from_vector(x, {B, T});
  targets = Tensor::from_vector(y, {B, T});
}

struct Eval {
  double loss, accuracy;
};

Eval evaluate(const TinyGpt& model, int64_t T, int64_t V) {
  NoGradGuard no_grad;
  Tensor ids, targets;
  make_batch(256, T, V, /*stream=*/999, 0, ids, targets);  // held-out stream
  const Tensor logits = model.forward(ids, false);
  const double loss = ops::cross_entropy(logits, targets).item();
  const std::vector<int64_t> pred = ops::argmax(logits, -1).to_vector<int64_t>();
  const std::vector<int64_t> want = targets.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == want[i];
  return {loss, double(correct) / double(pred.size())};
}

}  // namespace

DemoResult run_progression_demo(const DemoOptions& o) {
  manual_seed(o.seed);
  TinyGptConfig cfg;
  cfg.seed = o.seed;
  cfg.dropout = 0.0;
  TinyGpt model(cfg);
  std::vector<Tensor> params;
  std::vector<bool> decay;
  for (const auto& p : model.parameters()) {
    params.push_back(p.tensor);
    decay.push_back(p.decay);
  }
  AdamWConfig acfg;
  acfg.lr = o.lr;
  acfg.weight_decay = 0.01;
  AdamW opt(params, decay, acfg);

  std::printf("hone demo: TinyGpt (%ld layers, dim %ld, %ld heads, %ld parameters) learns to continue\n"
              "arithmetic progressions mod %ld from generated sequences of %ld tokens (batch %ld, %ld steps)\n",
              long(cfg.layers), long(cfg.dim), long(cfg.heads), long(model.parameter_count()), long(cfg.vocab),
              long(cfg.seq_len), long(o.batch), long(o.steps));
  DemoResult r;
  const Eval before = evaluate(model, cfg.seq_len, cfg.vocab);
  r.val_loss_before = before.loss;
  std::printf("held-out before training: loss %.4f, next-token accuracy %.1f%% (chance %.1f%%)\n", before.loss,
              100 * before.accuracy, 100.0 / double(cfg.vocab));

  ProgressLine progress(o.steps, "tok", 25);
  const int64_t warmup = std::max<int64_t>(1, o.steps / 20);
  for (int64_t step = 0; step < o.steps; ++step) {
    Tensor ids, targets;
    make_batch(o.batch, cfg.seq_len, cfg.vocab, o.seed, uint64_t(step), ids, targets);
    const double lr = warmup_cosine_lr(step, warmup, o.steps, o.lr, o.lr * 0.1);
    opt.set_lr(lr);
    opt.zero_grad();
    const Tensor loss = ops::cross_entropy(model.forward(ids, true), targets);
    loss.backward();
    opt.step();
    const double l = loss.item();
    if (step == 0) r.first_loss = l;
    r.final_loss = l;
    progress.update(step + 1, l, lr, o.batch * cfg.seq_len);
  }
  progress.finish();
  const Eval after = evaluate(model, cfg.seq_len, cfg.vocab);
  r.val_loss_after = after.loss;
  r.val_accuracy_after = after.accuracy;
  std::printf("held-out after training:  loss %.4f, next-token accuracy %.1f%%\n", after.loss, 100 * after.accuracy);
  return r;
}

}  // namespace hone::models
