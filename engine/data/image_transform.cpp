#include "engine/data/image_transform.h"

#include <stdexcept>
#include <string>

#include "engine/data/image_codec.h"
#include "kernels/philox.h"

namespace hone::data {
namespace {

struct Geometry {
  int64_t C = 0, H = 0, W = 0;    // source
  int64_t Co = 0;                  // output channels
  int64_t Hr = 0, Wr = 0;          // after resize
  int64_t Hp = 0, Wp = 0;          // after pad
  int64_t Ho = 0, Wo = 0;          // output
  bool crop = false, resize = false;
};

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("ImageTransform: " + what);
}

Geometry geometry(const ImageTransform& t, int64_t C, int64_t H, int64_t W, bool train) {
  if (C < 1 || H < 1 || W < 1) bad("image dimensions must be positive");
  if (t.pad < 0 || t.crop_padding < 0 || t.resize_h < 0 || t.resize_w < 0 || t.crop_h < 0 ||
      t.crop_w < 0 || t.repeat_channels < 0)
    bad("negative size");
  if ((t.resize_h > 0) != (t.resize_w > 0)) bad("give both resize_h and resize_w, or neither");
  if ((t.crop_h > 0) != (t.crop_w > 0)) bad("give both crop_h and crop_w, or neither");
  Geometry g;
  g.C = C, g.H = H, g.W = W;
  g.Co = C;
  if (t.repeat_channels > 0 && t.repeat_channels != C) {
    if (C != 1)
      bad("repeat_channels " + std::to_string(t.repeat_channels) + " needs 1-channel images, got " +
          std::to_string(C) + " channels");
    g.Co = t.repeat_channels;
  }
  g.resize = t.resize_h > 0;
  g.Hr = g.resize ? t.resize_h : H;
  g.Wr = g.resize ? t.resize_w : W;
  g.Hp = g.Hr + 2 * t.pad;
  g.Wp = g.Wr + 2 * t.pad;
  g.crop = t.crop_h > 0;
  g.Ho = g.Hp, g.Wo = g.Wp;
  if (g.crop) {
    const int64_t extra = train ? 2 * t.crop_padding : 0;
    if (t.crop_h > g.Hp + extra || t.crop_w > g.Wp + extra)
      bad("crop " + std::to_string(t.crop_h) + "x" + std::to_string(t.crop_w) +
          " is larger than the " + (train ? "(crop-)padded " : "padded ") + "image " +
          std::to_string(g.Hp + extra) + "x" + std::to_string(g.Wp + extra));
    g.Ho = t.crop_h, g.Wo = t.crop_w;
  }
  for (const auto* v : {&t.mean, &t.std})
    if (!v->empty() && v->size() != 1 && int64_t(v->size()) != g.Co)
      bad(std::string(v == &t.mean ? "mean" : "std") + " has " + std::to_string(v->size()) +
          " values for " + std::to_string(g.Co) + " channels (give 1 or one per channel)");
  for (float s : t.std)
    if (!(s > 0)) bad("std values must be positive");
  return g;
}

Augmentation augmentation(const ImageTransform& t, const Geometry& g, bool train, uint64_t seed,
                          uint64_t draw, int64_t index) {
  Augmentation a;
  if (!train) {
    if (g.crop) a.crop_y = (g.Hp - g.Ho) / 2, a.crop_x = (g.Wp - g.Wo) / 2;
    return a;
  }
  const uint64_t i = static_cast<uint64_t>(index);
  const philox::U32x4 ctr{{uint32_t(i), uint32_t(i >> 32), uint32_t(draw), uint32_t(draw >> 32)}};
  const philox::U32x4 r = philox::philox4x32_10(ctr, uint32_t(seed), uint32_t(seed >> 32));
  if (g.crop) {
    const uint64_t ry = uint64_t(g.Hp + 2 * t.crop_padding - g.Ho + 1);
    const uint64_t rx = uint64_t(g.Wp + 2 * t.crop_padding - g.Wo + 1);
    a.crop_y = int64_t((uint64_t(r.v[0]) * ry) >> 32);
    a.crop_x = int64_t((uint64_t(r.v[1]) * rx) >> 32);
  }
  a.flip = t.hflip && (r.v[2] >> 31) != 0;
  return a;
}

}  // namespace

Shape transformed_shape(const ImageTransform& t, int64_t channels, int64_t height, int64_t width,
                        bool train) {
  const Geometry g = geometry(t, channels, height, width, train);
  return {g.Co, g.Ho, g.Wo};
}

Augmentation draw_augmentation(const ImageTransform& t, int64_t height, int64_t width, bool train,
                               uint64_t seed, uint64_t draw, int64_t index) {
  ImageTransform geo = t;  // the draw does not depend on channels or normalisation
  geo.mean.clear();
  geo.std.clear();
  geo.repeat_channels = 0;
  return augmentation(geo, geometry(geo, 1, height, width, train), train, seed, draw, index);
}

void make_image_batch(const ImageDataset& d, const std::vector<int64_t>& indices,
                      const ImageTransform& t, bool train, uint64_t seed, uint64_t draw,
                      Tensor& images, Tensor& labels) {
  const Tensor& src = d.images;
  if (!src.defined() || src.dim() != 4 || src.dtype() != DType::U8 || !src.is_contiguous() ||
      src.device() != Device::cpu())
    throw std::invalid_argument("make_image_batch: dataset images must be a contiguous CPU uint8 "
                                "[N, C, H, W] tensor");
  const int64_t N = src.size(0);
  if (int64_t(d.labels.size()) != N)
    throw std::invalid_argument("make_image_batch: dataset has " + std::to_string(N) +
                                " images but " + std::to_string(d.labels.size()) + " labels");
  if (indices.empty()) throw std::invalid_argument("make_image_batch: empty batch");
  const Geometry g = geometry(t, src.size(1), src.size(2), src.size(3), train);
  const int64_t B = int64_t(indices.size());
  for (int64_t i : indices)
    if (i < 0 || i >= N)
      throw std::out_of_range("make_image_batch: index " + std::to_string(i) +
                              " out of range for " + std::to_string(N) + " images");

  Tensor out = Tensor::empty({B, g.Co, g.Ho, g.Wo}, DType::F32);
  Tensor lab = Tensor::empty({B}, DType::I64);
  float* o = out.data<float>();
  int64_t* l = lab.data<int64_t>();
  const uint8_t* base = src.data<uint8_t>();

  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = float(v) / 255.0f;
  std::vector<float> mean(size_t(g.Co), 0.0f), sd(size_t(g.Co), 1.0f);
  for (int64_t c = 0; c < g.Co; ++c) {
    if (!t.mean.empty()) mean[size_t(c)] = t.mean.size() == 1 ? t.mean[0] : t.mean[size_t(c)];
    if (!t.std.empty()) sd[size_t(c)] = t.std.size() == 1 ? t.std[0] : t.std[size_t(c)];
  }

  const int64_t src_plane = g.H * g.W, plane = g.Hr * g.Wr;
  std::vector<float> raw(size_t(g.C * src_plane)), resized(g.resize ? size_t(g.C * plane) : 0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t idx = indices[size_t(b)];
    l[b] = d.labels[size_t(idx)];
    const uint8_t* s = base + idx * g.C * src_plane;
    for (int64_t k = 0; k < g.C * src_plane; ++k) raw[size_t(k)] = lut[s[k]];
    const float* a = raw.data();
    if (g.resize) {
      resize_bilinear(raw.data(), g.C, g.H, g.W, resized.data(), g.Hr, g.Wr);
      a = resized.data();
    }
    const Augmentation aug = augmentation(t, g, train, seed, draw, idx);
    // Output pixel (y, x) reads the resized image at (y + oy, x' + ox) where x' is x mirrored
    // when flipping, and (oy, ox) maps the crop window back through both paddings.
    const int64_t pad_total = t.pad + (train && g.crop ? t.crop_padding : 0);
    const int64_t oy = aug.crop_y - pad_total, ox = aug.crop_x - pad_total;
    float* dst = o + b * g.Co * g.Ho * g.Wo;
    for (int64_t c = 0; c < g.Co; ++c) {
      const float* p = a + (g.C == 1 ? 0 : c) * plane;
      // (x - mean) / std, computed as torchvision's Normalize does (subtract, then divide).
      const float m = mean[size_t(c)], sdev = sd[size_t(c)];
      const float zero = (0.0f - m) / sdev;
      for (int64_t y = 0; y < g.Ho; ++y) {
        const int64_t sy = y + oy;
        float* row = dst + (c * g.Ho + y) * g.Wo;
        if (sy < 0 || sy >= g.Hr) {
          for (int64_t x = 0; x < g.Wo; ++x) row[x] = zero;
          continue;
        }
        const float* srow = p + sy * g.Wr;
        for (int64_t x = 0; x < g.Wo; ++x) {
          const int64_t sx = (aug.flip ? g.Wo - 1 - x : x) + ox;
          row[x] = (sx < 0 || sx >= g.Wr) ? zero : (srow[sx] - m) / sdev;
        }
      }
    }
  }
  images = out;
  labels = lab;
}

}  // namespace hone::data
