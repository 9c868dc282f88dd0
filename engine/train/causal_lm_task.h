// Causal language modelling as a TrainTask: windows of T+1 tokens from prepared shards, loss =
// mean next-token cross-entropy, evaluation = loss and perplexity on the val split.
#pragma once
#include <functional>
#include <memory>

#include "engine/data/token_shards.h"
#include "engine/train/trainer.h"

namespace hone {

class CausalLmTask : public TrainTask {
 public:
  using LogitsFn = std::function<Tensor(const Tensor& ids)>;  // ids [B, T] -> logits [B, T, V]
  CausalLmTask(nn::Module& model, LogitsFn logits, const std::string& data_dir, int64_t seq_len,
               int64_t batch_size, int64_t eval_batches, uint64_t seed, double label_smoothing = 0.0);

  nn::Module& model() override { return model_; }
  TrainBatch next_batch() override;
  Tensor mean_loss(const TrainBatch& batch) override;
  std::map<std::string, double> evaluate() override;
  int64_t data_position() const override { return train_->position(); }
  void restore_data_position(int64_t p) override { train_->restore(p); }

 private:
  nn::Module& model_;
  LogitsFn logits_;
  int64_t batch_size_, eval_batches_;
  double label_smoothing_;  // training loss only; evaluation reports the plain cross-entropy
  std::unique_ptr<data::TokenWindowLoader> train_, val_;
};

}  // namespace hone
