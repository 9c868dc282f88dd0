#include "engine/train/causal_lm_task.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace hone {

CausalLmTask::CausalLmTask(nn::Module& model, LogitsFn logits, const std::string& data_dir, int64_t seq_len,
                           int64_t batch_size, int64_t eval_batches, uint64_t seed, double label_smoothing)
    : model_(model), logits_(std::move(logits)), batch_size_(batch_size), eval_batches_(eval_batches),
      label_smoothing_(label_smoothing) {
  train_ = std::make_unique<data::TokenWindowLoader>(data_dir, "train", seq_len, seed);
  val_ = std::make_unique<data::TokenWindowLoader>(data_dir, "val", seq_len, seed + 1);
}

TrainBatch CausalLmTask::next_batch() {
  TrainBatch b;
  train_->next_batch(batch_size_, b.inputs, b.targets);
  b.count = b.targets.numel();
  b.work = b.count;
  return b;
}

Tensor CausalLmTask::mean_loss(const TrainBatch& b) {
  const Tensor logits = logits_(b.inputs);
  return ops::cross_entropy(logits, b.targets.to(logits.device()), -100, label_smoothing_);
}

std::map<std::string, double> CausalLmTask::evaluate() {
  NoGradGuard no_grad;
  val_->reset_sequential();
  double total = 0;
  int64_t count = 0;
  Tensor x, y;
  for (int64_t i = 0; i < eval_batches_ && val_->next_sequential_batch(batch_size_, x, y); ++i) {
    // The last window is padded with ignored targets: weight each batch by its real targets.
    const auto t = y.to_vector<int64_t>();
    const int64_t n = std::count_if(t.begin(), t.end(), [](int64_t v) { return v != -100; });
    if (n == 0) continue;
    const Tensor logits = logits_(x);
    total += ops::cross_entropy(logits, y.to(logits.device())).item() * double(n);
    count += n;
  }
  if (count == 0) return {};
  const double loss = total / double(count);
  return {{"loss", loss}, {"ppl", std::exp(loss)}};
}

}  // namespace hone
