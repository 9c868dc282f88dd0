// ImageLoader: endless, double-buffered batches of an ImageDataset for CNN training. A worker
// thread builds the next batch (make_image_batch) while the caller trains on the current one.
//
// Order: data::ExampleSampler(d.size(), seed, shuffle = train): seeded epochs, every batch full
// (a batch reaching the end of an epoch is completed from the next epoch). Batch k covers sampler
// positions [p, p + batch) with p = its start position, and is exactly
//   make_image_batch(d, sampler.next_batch(batch), t, train, seed, /*draw=*/p, ...)
// so the augmentation of a batch depends only on (seed, p, example index).
//
// Resume: position() is the sampler position of the next batch next() will return (batches handed
// out * batch, from 0 or the last restore); a loader built with the same (dataset, transform,
// batch, train, seed) and restore(position) continues with identical batches. restore() may be
// called at any time; a batch being prepared is discarded.
//
// Threading: one worker thread per loader. next(), position(), restore() and stats() may be called
// from any thread but are meant for one consumer. The dataset must outlive the loader and must not
// be modified while it exists. An error while building a batch is rethrown by the next() that
// would have returned it (the position does not move).
#pragma once
#include <cstdint>
#include <memory>

#include "engine/core/tensor.h"
#include "engine/data/image_dataset.h"
#include "engine/data/image_transform.h"

namespace hone::data {

struct ImageLoaderStats {
  int64_t batches = 0, images = 0;  // handed out by next()
  double elapsed_seconds = 0;       // since construction or reset_stats()
  double wait_seconds = 0;          // time next() spent blocked on the worker
  double produce_seconds = 0;       // worker time spent building batches (discarded ones too)
  int64_t produced_images = 0;      // images built by the worker (discarded ones too)
  // Images handed out per second of elapsed time (the training pipeline's rate).
  double images_per_second() const { return elapsed_seconds > 0 ? images / elapsed_seconds : 0; }
  // What the worker alone could deliver: images built per second of its busy time.
  double produce_images_per_second() const {
    return produce_seconds > 0 ? produced_images / produce_seconds : 0;
  }
};

class ImageLoader {
 public:
  // Throws std::invalid_argument for batch < 1, an empty dataset, or a transform that does not fit
  // the dataset's images (transformed_shape).
  ImageLoader(const ImageDataset& d, ImageTransform t, int64_t batch, bool train, uint64_t seed);
  ~ImageLoader();
  ImageLoader(const ImageLoader&) = delete;
  ImageLoader& operator=(const ImageLoader&) = delete;

  // images <- float32 [batch, C', H', W'], labels <- int64 [batch] (fresh tensors every call).
  void next(Tensor& images, Tensor& labels);
  int64_t position() const;
  void restore(int64_t position);
  int64_t batch_size() const;
  int64_t epoch() const;  // epoch of the next batch's first example: position() / d.size()
  Shape batch_shape() const;  // [batch, C', H', W']

  ImageLoaderStats stats() const;
  void reset_stats();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone::data
