// Image transforms and batching for CNN training: uint8 images -> normalised float32 batches,
// with the usual augmentations (random crop with padding, horizontal flip) drawn from a
// counter-based Philox stream, so that the augmentation of an example is a pure function of
// (seed, draw, example index) and a resumed run sees exactly the same batches.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/data/image_dataset.h"

namespace hone::data {

// Applied in this order to each image (uint8 [C, H, W]):
//   1. x = pixel / 255 (float32);
//   2. repeat_channels: a 1-channel image becomes that many identical channels (e.g. 3 to feed
//      MNIST to a CIFAR ResNet); 0 (or equal to C) keeps C; any other value with C > 1 is an error;
//   3. resize to resize_h x resize_w (bilinear, align_corners=False) when both are > 0;
//   4. pad: `pad` zero pixels on every side (28x28 -> 32x32 with pad 2);
//   5. crop to crop_h x crop_w when both are > 0:
//        train: a random crop of the image zero-padded by crop_padding on every side (CIFAR:
//               crop_padding 4, crop 32), offsets uniform over all positions;
//        eval:  the center crop (offset floor((size - crop) / 2)); crop_padding is not used.
//      The crop must fit: crop <= size + 2 * crop_padding (train), crop <= size (eval);
//   6. hflip (train only): mirror left-right with probability 1/2;
//   7. normalise: (x - mean[c]) / std[c]. mean/std empty (no normalisation), one value (all
//      channels) or one per output channel. Padded pixels are zeros before normalisation, as with
//      torchvision's Pad / RandomCrop(padding=...) followed by Normalize.
struct ImageTransform {
  int64_t pad = 0;
  int64_t resize_h = 0, resize_w = 0;
  int64_t crop_h = 0, crop_w = 0;
  int64_t crop_padding = 0;
  bool hflip = false;
  int repeat_channels = 0;
  std::vector<float> mean, std;
};

// The shape [C', H', W'] the transform gives for images of shape [C, H, W]; throws
// std::invalid_argument on an inconsistent transform (bad repeat, crop too big, mean/std sizes).
Shape transformed_shape(const ImageTransform& t, int64_t channels, int64_t height, int64_t width,
                        bool train);

// The random choices for example `index` at (seed, draw): crop offsets (in the padded frame of
// step 5) and flip. A pure function of its arguments (one Philox-4x32-10 block keyed by the seed,
// with counter (index, draw)). Exposed for tests and for reproducing an augmentation.
struct Augmentation {
  int64_t crop_y = 0, crop_x = 0;
  bool flip = false;
};
Augmentation draw_augmentation(const ImageTransform& t, int64_t height, int64_t width, bool train,
                               uint64_t seed, uint64_t draw, int64_t index);

// images <- float32 [B, C', H', W'], labels <- int64 [B] for d's examples `indices` (B of them,
// repetitions allowed). Both are fresh CPU tensors (previous handles are released, never written
// into). `train` enables the random crop and flip, drawn by draw_augmentation(seed, draw, index)
// with index the example's index in d; eval batches do not depend on seed or draw.
void make_image_batch(const ImageDataset& d, const std::vector<int64_t>& indices,
                      const ImageTransform& t, bool train, uint64_t seed, uint64_t draw,
                      Tensor& images, Tensor& labels);

}  // namespace hone::data
