// Image transforms, batching and the double-buffered loader (engine/data/image_transform.h,
// image_loader.h), on small in-memory datasets.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "engine/data/image_loader.h"
#include "engine/data/image_transform.h"
#include "engine/data/labeled_text.h"

using namespace hone;
using namespace hone::data;

namespace {

// N images of C x H x W with distinct-ish values; labels n % classes.
ImageDataset make_dataset(int64_t N, int64_t C, int64_t H, int64_t W, int64_t classes = 10) {
  std::vector<uint8_t> v(size_t(N * C * H * W));
  for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t((i * 37 + i / 7) % 251 + 1);
  ImageDataset d;
  d.images = Tensor::from_vector<uint8_t>(v, {N, C, H, W});
  for (int64_t n = 0; n < N; ++n) d.labels.push_back(n % classes);
  for (int64_t k = 0; k < classes; ++k) d.class_names.push_back(std::to_string(k));
  return d;
}

uint8_t src_px(const ImageDataset& d, int64_t n, int64_t c, int64_t y, int64_t x) {
  return d.images.data<uint8_t>()[((n * d.channels() + c) * d.height() + y) * d.width() + x];
}

float at(const Tensor& t, int64_t b, int64_t c, int64_t y, int64_t x) {
  return t.data<float>()[((b * t.size(1) + c) * t.size(2) + y) * t.size(3) + x];
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(i);
  return v;
}

}  // namespace

TEST(ImageTransform, PadTo32AndRepeatChannels) {
  const ImageDataset d = make_dataset(3, 1, 28, 28);
  ImageTransform t;
  t.pad = 2;
  t.repeat_channels = 3;
  EXPECT_EQ(transformed_shape(t, 1, 28, 28, true), (Shape{3, 32, 32}));
  Tensor images, labels;
  for (bool train : {false, true}) {
    make_image_batch(d, {2, 0}, t, train, 7, 3, images, labels);
    EXPECT_EQ(images.shape(), (Shape{2, 3, 32, 32}));
    EXPECT_EQ(images.dtype(), DType::F32);
    EXPECT_EQ(labels.dtype(), DType::I64);
    EXPECT_EQ(labels.to_vector<int64_t>(), (std::vector<int64_t>{2, 0}));
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < 32; ++y)
          for (int64_t x = 0; x < 32; ++x) {
            const bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
            const float want =
                inside ? float(src_px(d, b == 0 ? 2 : 0, 0, y - 2, x - 2)) / 255.0f : 0.0f;
            ASSERT_EQ(at(images, b, c, y, x), want) << b << c << y << x;
          }
  }
}

TEST(ImageTransform, NormalisationValues) {
  const ImageDataset d = make_dataset(2, 1, 4, 4);
  ImageTransform t;
  t.pad = 1;
  t.repeat_channels = 3;
  t.mean = {0.485f, 0.456f, 0.406f};
  t.std = {0.229f, 0.224f, 0.225f};
  Tensor images, labels;
  make_image_batch(d, {1}, t, false, 0, 0, images, labels);
  for (int64_t c = 0; c < 3; ++c) {
    const float m = t.mean[size_t(c)], s = t.std[size_t(c)];
    EXPECT_EQ(at(images, 0, c, 0, 0), (0.0f - m) / s);  // padding is a zero pixel
    EXPECT_EQ(at(images, 0, c, 2, 3), (float(src_px(d, 1, 0, 1, 2)) / 255.0f - m) / s);
  }
  // Values near torchvision's (ToTensor + Normalize) for pixel 255 and 0.
  EXPECT_NEAR((1.0f - 0.485f) / 0.229f, 2.2489f, 1e-4);
  // One mean/std for every channel.
  t.mean = {0.5f};
  t.std = {0.25f};
  make_image_batch(d, {0}, t, false, 0, 0, images, labels);
  EXPECT_EQ(at(images, 0, 2, 1, 1), (float(src_px(d, 0, 0, 0, 0)) / 255.0f - 0.5f) / 0.25f);
  EXPECT_EQ(at(images, 0, 1, 0, 0), -2.0f);
}

TEST(ImageTransform, RandomCropAndFlipDependOnlyOnSeedDrawAndIndex) {
  const ImageDataset d = make_dataset(8, 3, 6, 6);
  ImageTransform t;
  t.crop_h = t.crop_w = 6;
  t.crop_padding = 2;
  t.hflip = true;
  const std::vector<int64_t> idx = iota(8);
  Tensor a, b, la, lb;
  make_image_batch(d, idx, t, true, 42, 5, a, la);
  make_image_batch(d, idx, t, true, 42, 5, b, lb);
  EXPECT_TRUE(same_bits(a, b));
  make_image_batch(d, idx, t, true, 42, 6, b, lb);
  EXPECT_FALSE(same_bits(a, b));
  make_image_batch(d, idx, t, true, 43, 5, b, lb);
  EXPECT_FALSE(same_bits(a, b));
  // An example's augmentation does not depend on its batch or position in it.
  make_image_batch(d, {6, 3}, t, true, 42, 5, b, lb);
  for (int64_t k = 0; k < 3 * 36; ++k) {
    EXPECT_EQ(b.data<float>()[k], a.data<float>()[6 * 108 + k]);
    EXPECT_EQ(b.data<float>()[108 + k], a.data<float>()[3 * 108 + k]);
  }
  // Each output is the source shifted by draw_augmentation's offsets, zero outside, mirrored.
  for (int64_t n = 0; n < 8; ++n) {
    const Augmentation g = draw_augmentation(t, 6, 6, true, 42, 5, n);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 6; ++y)
        for (int64_t x = 0; x < 6; ++x) {
          const int64_t sy = y + g.crop_y - 2, sx = (g.flip ? 5 - x : x) + g.crop_x - 2;
          const float want = (sy >= 0 && sy < 6 && sx >= 0 && sx < 6)
                                 ? float(src_px(d, n, c, sy, sx)) / 255.0f
                                 : 0.0f;
          ASSERT_EQ(at(a, n, c, y, x), want) << n << " " << c << " " << y << " " << x;
        }
  }
  // Over many examples every offset 0..4 appears and about half are flipped.
  std::set<int64_t> ys, xs;
  int flips = 0;
  for (int64_t n = 0; n < 4000; ++n) {
    const Augmentation g = draw_augmentation(t, 6, 6, true, 1, 0, n);
    ys.insert(g.crop_y);
    xs.insert(g.crop_x);
    flips += g.flip;
  }
  EXPECT_EQ(ys, (std::set<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(xs, (std::set<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_GT(flips, 1800);
  EXPECT_LT(flips, 2200);
}

TEST(ImageTransform, EvalIsCenterCropWithoutRandomness) {
  const ImageDataset d = make_dataset(2, 1, 7, 7);
  ImageTransform t;
  t.crop_h = t.crop_w = 4;
  t.crop_padding = 3;  // train only
  t.hflip = true;      // train only
  Tensor a, b, l;
  make_image_batch(d, {0, 1}, t, false, 1, 2, a, l);
  make_image_batch(d, {0, 1}, t, false, 99, 1234, b, l);
  EXPECT_TRUE(same_bits(a, b));
  EXPECT_EQ(a.shape(), (Shape{2, 1, 4, 4}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 4; ++x)
        EXPECT_EQ(at(a, n, 0, y, x), float(src_px(d, n, 0, y + 1, x + 1)) / 255.0f);
  // Pad then center-crop back: the identity.
  t.pad = 2;
  t.crop_h = t.crop_w = 7;
  make_image_batch(d, {1}, t, false, 0, 0, a, l);
  for (int64_t y = 0; y < 7; ++y)
    for (int64_t x = 0; x < 7; ++x)
      EXPECT_EQ(at(a, 0, 0, y, x), float(src_px(d, 1, 0, y, x)) / 255.0f);
}

TEST(ImageTransform, ResizeIsBilinear) {
  ImageDataset d;
  d.images = Tensor::from_vector<uint8_t>({0, 200}, {1, 1, 1, 2});
  d.labels = {0};
  d.class_names = {"0"};
  ImageTransform t;
  t.resize_h = 1;
  t.resize_w = 4;
  Tensor a, l;
  make_image_batch(d, {0}, t, false, 0, 0, a, l);
  EXPECT_EQ(a.shape(), (Shape{1, 1, 1, 4}));
  const std::vector<float> want = {0, 50 / 255.0f, 150 / 255.0f, 200 / 255.0f};
  for (int x = 0; x < 4; ++x) EXPECT_NEAR(a.data<float>()[x], want[size_t(x)], 1e-6) << x;
}

TEST(ImageTransform, BadTransformsAndIndicesAreErrors) {
  const ImageDataset rgb = make_dataset(2, 3, 6, 6);
  Tensor a, l;
  ImageTransform t;
  t.repeat_channels = 3;
  EXPECT_NO_THROW(make_image_batch(rgb, {0}, t, true, 0, 0, a, l));  // already 3: no-op
  t.repeat_channels = 4;
  EXPECT_THROW(make_image_batch(rgb, {0}, t, true, 0, 0, a, l), std::invalid_argument);
  t = ImageTransform{};
  t.crop_h = t.crop_w = 8;
  EXPECT_THROW(make_image_batch(rgb, {0}, t, false, 0, 0, a, l), std::invalid_argument);
  t.crop_padding = 1;
  EXPECT_NO_THROW(make_image_batch(rgb, {0}, t, true, 0, 0, a, l));
  EXPECT_THROW(make_image_batch(rgb, {0}, t, false, 0, 0, a, l), std::invalid_argument);
  t = ImageTransform{};
  t.mean = {0.1f, 0.2f};
  EXPECT_THROW(make_image_batch(rgb, {0}, t, false, 0, 0, a, l), std::invalid_argument);
  t = ImageTransform{};
  t.std = {0.0f};
  EXPECT_THROW(make_image_batch(rgb, {0}, t, false, 0, 0, a, l), std::invalid_argument);
  t = ImageTransform{};
  t.crop_h = 3;  // crop_w missing
  EXPECT_THROW(make_image_batch(rgb, {0}, t, false, 0, 0, a, l), std::invalid_argument);
  t = ImageTransform{};
  EXPECT_THROW(make_image_batch(rgb, {2}, t, false, 0, 0, a, l), std::out_of_range);
  EXPECT_THROW(make_image_batch(rgb, {}, t, false, 0, 0, a, l), std::invalid_argument);
  EXPECT_THROW(ImageLoader(rgb, t, 0, true, 0), std::invalid_argument);
  t.crop_h = t.crop_w = 9;
  EXPECT_THROW(ImageLoader(rgb, t, 2, false, 0), std::invalid_argument);
}

// ---- loader ---------------------------------------------------------------------------------

namespace {
ImageTransform augmenting() {
  ImageTransform t;
  t.pad = 1;
  t.crop_h = t.crop_w = 5;
  t.crop_padding = 1;
  t.hflip = true;
  t.mean = {0.5f};
  t.std = {0.5f};
  return t;
}
}  // namespace

TEST(ImageLoader, GivesMakeImageBatchBatchesInSamplerOrder) {
  const ImageDataset d = make_dataset(10, 1, 5, 5);
  const ImageTransform t = augmenting();
  ImageLoader loader(d, t, 4, true, 11);
  EXPECT_EQ(loader.batch_shape(), (Shape{4, 1, 5, 5}));
  ExampleSampler sampler(10, 11, true);
  Tensor images, labels, want_images, want_labels;
  for (int k = 0; k < 12; ++k) {  // 4.8 epochs: batches cross epoch boundaries
    const int64_t pos = sampler.position();
    EXPECT_EQ(loader.position(), pos);
    const std::vector<int64_t> idx = sampler.next_batch(4);
    make_image_batch(d, idx, t, true, 11, uint64_t(pos), want_images, want_labels);
    loader.next(images, labels);
    ASSERT_TRUE(same_bits(images, want_images)) << "batch " << k;
    ASSERT_TRUE(same_bits(labels, want_labels)) << "batch " << k;
  }
  EXPECT_EQ(loader.position(), 48);
  EXPECT_EQ(loader.epoch(), 4);
  const ImageLoaderStats s = loader.stats();
  EXPECT_EQ(s.batches, 12);
  EXPECT_EQ(s.images, 48);
  EXPECT_GE(s.produced_images, 48);
  EXPECT_GT(s.images_per_second(), 0);
  EXPECT_GT(s.produce_images_per_second(), 0);

  // Eval: file order, no augmentation.
  ImageLoader eval(d, t, 4, false, 11);
  eval.next(images, labels);
  EXPECT_EQ(labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  make_image_batch(d, {0, 1, 2, 3}, t, false, 0, 0, want_images, want_labels);
  EXPECT_TRUE(same_bits(images, want_images));
}

TEST(ImageLoader, ResumesExactly) {
  const ImageDataset d = make_dataset(9, 1, 5, 5);
  const ImageTransform t = augmenting();
  std::vector<Tensor> first;
  int64_t p7 = 0;
  {
    ImageLoader a(d, t, 4, true, 3);
    Tensor im, lb;
    for (int k = 0; k < 12; ++k) {
      if (k == 7) p7 = a.position();
      a.next(im, lb);
      first.push_back(im);
    }
    // Rewind the same loader (a prepared batch is discarded).
    a.restore(p7);
    for (int k = 7; k < 12; ++k) {
      a.next(im, lb);
      EXPECT_TRUE(same_bits(im, first[size_t(k)])) << k;
    }
  }
  EXPECT_EQ(p7, 28);
  ImageLoader b(d, t, 4, true, 3);  // a "new process" resuming from a checkpointed position
  b.restore(p7);
  Tensor im, lb;
  for (int k = 7; k < 12; ++k) {
    b.next(im, lb);
    EXPECT_TRUE(same_bits(im, first[size_t(k)])) << k;
  }
  EXPECT_EQ(b.position(), 48);
}

TEST(ImageLoader, ThousandsOfBatchesWithRestoresMatchTheReference) {
  const ImageDataset d = make_dataset(37, 1, 4, 4);
  ImageTransform t;
  t.crop_h = t.crop_w = 4;
  t.crop_padding = 1;
  t.hflip = true;
  ImageLoader loader(d, t, 3, true, 99);
  ExampleSampler sampler(37, 99, true);
  std::mt19937 rng(1);
  Tensor images, labels, want_images, want_labels;
  int mismatches = 0;
  for (int k = 0; k < 3000; ++k) {
    if (k % 250 == 249) {  // jump back or forward, sometimes while a batch is being prepared
      const int64_t p = int64_t(rng() % 2000);
      loader.restore(p);
      sampler.restore(p);
    }
    const int64_t pos = sampler.position();
    make_image_batch(d, sampler.next_batch(3), t, true, 99, uint64_t(pos), want_images,
                     want_labels);
    loader.next(images, labels);
    mismatches += !same_bits(images, want_images) || !same_bits(labels, want_labels);
    if (loader.position() != sampler.position()) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
  // Loaders created and destroyed at once (the worker is stopped mid-batch) shut down cleanly.
  for (int i = 0; i < 200; ++i) {
    ImageLoader l(d, t, 3, true, uint64_t(i));
    if (i % 2) l.next(images, labels);
  }
}
