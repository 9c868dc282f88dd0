// Image classification as a TrainTask: a prefetching ImageLoader over the training images
// (seeded order and augmentation, exact resume), evaluation on held-out images with accuracy,
// macro-F1, per-class precision/recall and the confusion matrix.
#pragma once
#include <functional>
#include <memory>

#include "engine/data/image_dataset.h"
#include "engine/data/image_loader.h"
#include "engine/data/image_transform.h"
#include "engine/train/trainer.h"

namespace hone {

class ImageClassificationTask : public TrainTask {
 public:
  using LogitsFn = std::function<Tensor(const Tensor& images)>;  // [N, C, H, W] -> [N, K]
  ImageClassificationTask(nn::Module& model, LogitsFn logits, const data::ImageDataset& train,
                          const data::ImageDataset& eval, data::ImageTransform train_transform,
                          data::ImageTransform eval_transform, int64_t batch_size, double label_smoothing, uint64_t seed);
  ~ImageClassificationTask() override;

  nn::Module& model() override { return model_; }
  TrainBatch next_batch() override;
  Tensor mean_loss(const TrainBatch& batch) override;
  std::map<std::string, double> evaluate() override;
  int64_t data_position() const override;
  void restore_data_position(int64_t position) override;
  std::string work_unit() const override { return "img"; }
  const std::string& last_report() const { return last_report_; }

 private:
  nn::Module& model_;
  LogitsFn logits_;
  const data::ImageDataset& train_;
  const data::ImageDataset& eval_;
  data::ImageTransform eval_transform_;
  int64_t batch_size_;
  double label_smoothing_;
  uint64_t seed_;
  std::unique_ptr<data::ImageLoader> loader_;
  std::string last_report_;
};

}  // namespace hone
