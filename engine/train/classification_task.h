// Sequence classification as a TrainTask: tokenised examples (ids, token types, label) drawn
// in seeded epochs, padded per batch to the longest sequence; loss = cross-entropy with optional
// label smoothing; evaluation = loss, accuracy, macro-F1, per-class precision/recall and the
// confusion matrix on held-out examples.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/train/trainer.h"

namespace hone {

struct TokenizedExample {
  std::vector<int32_t> ids, token_types;
  int64_t label = 0;
};

struct PaddedBatch {
  Tensor input_ids, token_type_ids, attention_mask, labels;  // int64 [B, T] x3, int64 [B]
};

// Pads to the longest sequence of the batch with `pad_id` (mask 0, type 0).
PaddedBatch pad_examples(const std::vector<const TokenizedExample*>& examples, int32_t pad_id);

class ClassificationTask : public TrainTask {
 public:
  // ids, token types, attention mask -> logits [B, K]
  using LogitsFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;
  ClassificationTask(nn::Module& model, LogitsFn logits, std::vector<TokenizedExample> train,
                     std::vector<TokenizedExample> eval, std::vector<std::string> label_names, int64_t batch_size,
                     int32_t pad_id, double label_smoothing, uint64_t seed);
  ~ClassificationTask() override;

  nn::Module& model() override { return model_; }
  TrainBatch next_batch() override;
  Tensor mean_loss(const TrainBatch& batch) override;
  // loss, accuracy, macro_f1 (and the full report via last_report()).
  std::map<std::string, double> evaluate() override;
  int64_t data_position() const override;
  void restore_data_position(int64_t position) override;
  std::string work_unit() const override { return "ex"; }

  // Predicted labels and probabilities [N, K] for `examples` (eval mode, no grad).
  void predict(const std::vector<TokenizedExample>& examples, std::vector<int64_t>& labels, Tensor& probabilities);
  const std::string& last_report() const { return last_report_; }
  // Every evaluation also appends its full report (per-class precision/recall/F1, support and the
  // confusion matrix, as JSON) as one line to this file.
  void set_report_log(const std::string& path) { report_log_ = path; }
  std::string last_report_json() const { return last_report_json_; }

 private:
  struct Sampler;
  nn::Module& model_;
  LogitsFn logits_;
  std::vector<TokenizedExample> train_, eval_;
  std::vector<std::string> labels_;
  int64_t batch_size_;
  int32_t pad_id_;
  double label_smoothing_;
  std::unique_ptr<Sampler> sampler_;
  std::string last_report_, last_report_json_, report_log_;
  int64_t evaluations_ = 0;
};

}  // namespace hone
