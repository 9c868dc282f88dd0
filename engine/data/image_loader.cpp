#include "engine/data/image_loader.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "engine/data/labeled_text.h"

namespace hone::data {

using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

struct ImageLoader::Impl {
  const ImageDataset* d;
  ImageTransform t;
  int64_t batch;
  bool train;
  uint64_t seed;
  Shape shape;

  mutable std::mutex mu;
  std::condition_variable worker_cv, consumer_cv;
  ExampleSampler sampler;  // the worker's cursor (ahead of the consumer by the prepared batch)
  int64_t consumer_pos = 0;
  uint64_t generation = 0;  // bumped by restore() and by errors: stale batches are dropped
  bool stop = false;

  struct Slot {
    bool full = false;
    int64_t start = 0;
    Tensor images, labels;
    std::exception_ptr error;
  } slot;

  ImageLoaderStats st;
  Clock::time_point t0 = Clock::now();
  std::thread worker;

  Impl(const ImageDataset& data, ImageTransform tr, int64_t b, bool tn, uint64_t s)
      : d(&data), t(std::move(tr)), batch(b), train(tn), seed(s),
        sampler(std::max<int64_t>(data.size(), 1), s, tn) {}

  void run() {
    std::unique_lock<std::mutex> lk(mu);
    while (true) {
      worker_cv.wait(lk, [&] { return stop || !slot.full; });
      if (stop) return;
      const uint64_t gen = generation;
      const int64_t start = sampler.position();
      const std::vector<int64_t> idx = sampler.next_batch(batch);
      lk.unlock();

      Slot s;
      s.full = true;
      s.start = start;
      const auto tb = Clock::now();
      try {
        make_image_batch(*d, idx, t, train, seed, uint64_t(start), s.images, s.labels);
      } catch (...) {
        s.error = std::current_exception();
      }
      const double busy = seconds_since(tb);

      lk.lock();
      st.produce_seconds += busy;
      st.produced_images += batch;
      if (gen != generation || stop) continue;  // restored meanwhile: drop this batch
      slot = std::move(s);
      consumer_cv.notify_all();
    }
  }
};

ImageLoader::ImageLoader(const ImageDataset& d, ImageTransform t, int64_t batch, bool train,
                         uint64_t seed) {
  if (batch < 1) throw std::invalid_argument("ImageLoader: batch must be >= 1");
  if (d.size() < 1 || !d.images.defined())
    throw std::invalid_argument("ImageLoader: empty dataset");
  if (d.images.dim() != 4 || d.images.size(0) != d.size())
    throw std::invalid_argument("ImageLoader: dataset images must be [N, C, H, W] with N = " +
                                std::to_string(d.size()) + " labels");
  const Shape s = transformed_shape(t, d.channels(), d.height(), d.width(), train);
  impl_ = std::make_unique<Impl>(d, std::move(t), batch, train, seed);
  impl_->shape = {batch, s[0], s[1], s[2]};
  impl_->worker = std::thread([this] { impl_->run(); });
}

ImageLoader::~ImageLoader() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->worker_cv.notify_all();
  impl_->worker.join();
}

void ImageLoader::next(Tensor& images, Tensor& labels) {
  Impl& m = *impl_;
  const auto tw = Clock::now();
  std::unique_lock<std::mutex> lk(m.mu);
  m.consumer_cv.wait(lk, [&] { return m.slot.full; });
  m.st.wait_seconds += seconds_since(tw);
  Impl::Slot s = std::move(m.slot);
  m.slot = Impl::Slot{};
  if (s.error) {
    // Start over from the consumer's position so that a retry meets the same batch.
    ++m.generation;
    m.sampler.restore(m.consumer_pos);
    m.worker_cv.notify_all();
    lk.unlock();
    std::rethrow_exception(s.error);
  }
  m.consumer_pos = s.start + m.batch;
  m.st.batches += 1;
  m.st.images += m.batch;
  m.worker_cv.notify_all();
  lk.unlock();
  images = std::move(s.images);
  labels = std::move(s.labels);
}

int64_t ImageLoader::position() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->consumer_pos;
}

void ImageLoader::restore(int64_t position) {
  if (position < 0) throw std::invalid_argument("ImageLoader::restore: negative position");
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    ++impl_->generation;
    impl_->slot = Impl::Slot{};
    impl_->sampler.restore(position);
    impl_->consumer_pos = position;
  }
  impl_->worker_cv.notify_all();
}

int64_t ImageLoader::batch_size() const { return impl_->batch; }

int64_t ImageLoader::epoch() const { return position() / impl_->d->size(); }

Shape ImageLoader::batch_shape() const { return impl_->shape; }

ImageLoaderStats ImageLoader::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  ImageLoaderStats s = impl_->st;
  s.elapsed_seconds = seconds_since(impl_->t0);
  return s;
}

void ImageLoader::reset_stats() {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->st = ImageLoaderStats{};
  impl_->t0 = Clock::now();
}

}  // namespace hone::data
