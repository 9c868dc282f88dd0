// Decoding PNG and JPEG files into 8-bit pixels (libpng, libjpeg), converting channel counts, and
// bilinear resizing. The building blocks of read_image_folder (image_dataset.h) and of the resize
// step of the image transforms (image_transform.h).
//
// Decoders never print and never exit: libpng's and libjpeg's fatal errors are caught (setjmp /
// longjmp error managers) and rethrown as std::runtime_error "<name>: <decoder's message>".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hone::data {

// An 8-bit image, pixels in row-major HWC order (channel fastest), 1 (gray) or 3 (RGB) channels.
struct DecodedImage {
  int64_t height = 0, width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

// PNG: every colour type and bit depth. Palette images are expanded to RGB, gray images of 1, 2
// or 4 bits to 8 bits, 16-bit samples are scaled to 8 bits (round(v * 255 / 65535)), alpha and
// tRNS transparency are dropped (no compositing), interlaced images are de-interlaced.
// Result: 1 channel for gray / gray+alpha, else 3.
// `name` is only used in error messages (the file's path).
DecodedImage decode_png(const uint8_t* data, size_t size, const std::string& name);

// JPEG (baseline and progressive, via libjpeg): gray images give 1 channel, YCbCr/RGB give 3.
// CMYK/YCCK JPEGs are an error. A truncated file ("Premature end of JPEG file") is an error, as in
// PIL; libjpeg's other warnings (e.g. extraneous bytes before a marker) are ignored.
DecodedImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

// Decides by the file's signature (PNG: 89 'P' 'N' 'G', JPEG: FF D8), not its extension.
DecodedImage decode_image(const uint8_t* data, size_t size, const std::string& name);
// Reads and decodes the file at `path`.
DecodedImage decode_image_file(const std::string& path);

// Converts to `channels` (1 or 3): gray -> RGB replicates the plane; RGB -> gray is the ITU-R 601
// luma round(0.299 R + 0.587 G + 0.114 B) (what PIL's convert("L") computes).
DecodedImage convert_channels(const DecodedImage& img, int channels);

// Bilinear resize of C planes [C, H, W] (float) to [C, out_h, out_w], with half-pixel centres
// and edge clamping: PyTorch's interpolate(mode="bilinear", align_corners=False, antialias=False).
void resize_bilinear(const float* in, int64_t channels, int64_t h, int64_t w, float* out,
                     int64_t out_h, int64_t out_w);

// The same on an 8-bit HWC image; results are rounded to the nearest integer.
DecodedImage resize_bilinear(const DecodedImage& img, int64_t out_h, int64_t out_w);

}  // namespace hone::data
