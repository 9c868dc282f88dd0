#include "engine/train/image_classification_task.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"
#include "engine/train/metrics.h"

namespace hone {

ImageClassificationTask::ImageClassificationTask(nn::Module& model, LogitsFn logits, const data::ImageDataset& train,
                                                 const data::ImageDataset& eval, data::ImageTransform train_transform,
                                                 data::ImageTransform eval_transform, int64_t batch_size,
                                                 double label_smoothing, uint64_t seed)
    : model_(model), logits_(std::move(logits)), train_(train), eval_(eval), eval_transform_(std::move(eval_transform)),
      batch_size_(batch_size), label_smoothing_(label_smoothing), seed_(seed),
      loader_(std::make_unique<data::ImageLoader>(train, std::move(train_transform), batch_size, true, seed)) {}

ImageClassificationTask::~ImageClassificationTask() = default;

TrainBatch ImageClassificationTask::next_batch() {
  TrainBatch b;
  loader_->next(b.inputs, b.targets);
  b.count = b.work = b.targets.numel();
  return b;
}

Tensor ImageClassificationTask::mean_loss(const TrainBatch& b) {
  const Tensor logits = logits_(b.inputs);
  return ops::cross_entropy(logits, b.targets.to(logits.device()), -100, label_smoothing_);
}

std::map<std::string, double> ImageClassificationTask::evaluate() {
  if (eval_.size() == 0) return {};
  NoGradGuard no_grad;
  const int64_t N = eval_.size(), K = eval_.num_classes();
  std::vector<int64_t> truth, pred;
  double nll = 0;
  const int64_t eval_batch = std::max<int64_t>(batch_size_, 64);
  for (int64_t s = 0; s < N; s += eval_batch) {
    std::vector<int64_t> idx;
    for (int64_t i = s; i < std::min(N, s + eval_batch); ++i) idx.push_back(i);
    Tensor images, labels;
    data::make_image_batch(eval_, idx, eval_transform_, false, seed_, 0, images, labels);
    const Tensor logp = ops::log_softmax(logits_(images), -1);
    const std::vector<float> lp = logp.to_vector<float>();
    const std::vector<int64_t> y = labels.to_vector<int64_t>();
    for (size_t r = 0; r < y.size(); ++r) {
      const float* row = lp.data() + r * K;
      truth.push_back(y[r]);
      pred.push_back(int64_t(std::max_element(row, row + K) - row));
      nll -= row[y[r]];
    }
  }
  const ClassificationReport rep = classification_report(truth, pred, K);
  last_report_ = rep.to_text(eval_.class_names);
  return {{"loss", nll / double(N)}, {"accuracy", rep.accuracy}, {"macro_f1", rep.macro_f1}};
}

int64_t ImageClassificationTask::data_position() const { return loader_->position(); }
void ImageClassificationTask::restore_data_position(int64_t p) { loader_->restore(p); }

}  // namespace hone
