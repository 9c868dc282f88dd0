#include "engine/data/image_codec.h"

#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

namespace hone::data {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw std::runtime_error(name + ": " + what);
}

// Images beyond this many pixels are refused before allocating (a corrupt header claiming
// 100000 x 100000 should be an error, not an out-of-memory kill).
constexpr uint64_t kMaxPixels = uint64_t(1) << 28;

// ---- PNG ------------------------------------------------------------------------------------
// All state that must survive a longjmp lives in this struct, owned by the caller's frame; the
// frame holding setjmp keeps no C++ objects of its own.
struct PngCtx {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[512] = {0};
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* ctx = static_cast<PngCtx*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof ctx->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}  // libpng warnings are not fatal: ignore

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* ctx = static_cast<PngCtx*>(png_get_io_ptr(png));
  if (ctx->size - ctx->pos < n) png_error(png, "unexpected end of file (truncated PNG)");
  std::memcpy(out, ctx->data + ctx->pos, n);
  ctx->pos += n;
}

bool png_decode_raw(PngCtx* ctx, DecodedImage* out, std::vector<png_bytep>* rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error,
                                           png_on_warning);
  if (!png) {
    std::snprintf(ctx->message, sizeof ctx->message, "cannot create a libpng reader");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(ctx->message, sizeof ctx->message, "cannot create a libpng info struct");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, ctx, png_read_memory);
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0, interlace = 0;
  png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
  if (uint64_t(w) * h > kMaxPixels) png_error(png, "image too large");
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_scale_16(png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int channels = png_get_channels(png, info);
  if ((channels != 1 && channels != 3) || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != size_t(w) * size_t(channels))
    png_error(png, "unexpected pixel layout after conversion to 8-bit gray/RGB");
  out->height = h;
  out->width = w;
  out->channels = channels;
  out->pixels.resize(size_t(w) * h * size_t(channels));
  rows->resize(h);
  for (png_uint_32 y = 0; y < h; ++y)
    (*rows)[y] = out->pixels.data() + size_t(y) * w * size_t(channels);
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// ---- JPEG -----------------------------------------------------------------------------------
struct JpegErr {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64] = {0};
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (level -1) are ignored except a premature end of file, which is fatal as in PIL.
void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0) {
    cinfo->err->num_warnings++;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
  }
}

void jpeg_no_output(j_common_ptr) {}

bool jpeg_decode_raw(const uint8_t* data, size_t size, jpeg_decompress_struct* cinfo,
                     JpegErr* err, DecodedImage* out) {
  std::memset(cinfo, 0, sizeof *cinfo);
  cinfo->err = jpeg_std_error(&err->pub);
  err->pub.error_exit = jpeg_on_error;
  err->pub.emit_message = jpeg_on_message;
  err->pub.output_message = jpeg_no_output;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    std::snprintf(err->message, sizeof err->message, "CMYK/YCCK JPEGs are not supported");
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  cinfo->out_color_space = cinfo->jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  if (uint64_t(cinfo->image_width) * cinfo->image_height > kMaxPixels) {
    std::snprintf(err->message, sizeof err->message, "image too large");
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  jpeg_start_decompress(cinfo);
  const int channels = cinfo->output_components;
  if (channels != 1 && channels != 3) {
    std::snprintf(err->message, sizeof err->message, "unexpected %d output components",
                  channels);
    jpeg_destroy_decompress(cinfo);
    return false;
  }
  out->height = cinfo->output_height;
  out->width = cinfo->output_width;
  out->channels = channels;
  out->pixels.resize(size_t(out->height) * size_t(out->width) * size_t(channels));
  const size_t stride = size_t(out->width) * size_t(channels);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out->pixels.data() + size_t(cinfo->output_scanline) * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  jpeg_destroy_decompress(cinfo);
  return true;
}

bool has_png_signature(const uint8_t* d, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}
bool has_jpeg_signature(const uint8_t* d, size_t n) {
  return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
}

std::string lower_extension(const std::string& name) {
  const size_t slash = name.find_last_of('/');
  const size_t dot = name.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

DecodedImage decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngCtx ctx;
  ctx.data = data;
  ctx.size = size;
  DecodedImage out;
  std::vector<png_bytep> rows;
  if (!png_decode_raw(&ctx, &out, &rows)) fail(name, std::string("PNG decode error: ") + ctx.message);
  return out;
}

DecodedImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  jpeg_decompress_struct cinfo;
  JpegErr err;
  DecodedImage out;
  if (!jpeg_decode_raw(data, size, &cinfo, &err, &out))
    fail(name, std::string("JPEG decode error: ") + err.message);
  return out;
}

DecodedImage decode_image(const uint8_t* data, size_t size, const std::string& name) {
  if (has_png_signature(data, size)) return decode_png(data, size, name);
  if (has_jpeg_signature(data, size)) return decode_jpeg(data, size, name);
  // No known signature: let the decoder the extension names report what is wrong.
  const std::string ext = lower_extension(name);
  if (ext == "png") return decode_png(data, size, name);
  if (ext == "jpg" || ext == "jpeg") return decode_jpeg(data, size, name);
  fail(name, "not a PNG or JPEG file");
}

DecodedImage decode_image_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open file");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, "read error");
  return decode_image(bytes.data(), bytes.size(), path);
}

DecodedImage convert_channels(const DecodedImage& img, int channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument("convert_channels: channels must be 1 or 3, got " +
                                std::to_string(channels));
  if (img.channels == channels) return img;
  DecodedImage out;
  out.height = img.height;
  out.width = img.width;
  out.channels = channels;
  const size_t n = size_t(img.height) * size_t(img.width);
  out.pixels.resize(n * size_t(channels));
  if (img.channels == 1 && channels == 3) {
    for (size_t i = 0; i < n; ++i)
      out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = img.pixels[i];
  } else if (img.channels == 3 && channels == 1) {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = img.pixels[3 * i], g = img.pixels[3 * i + 1], b = img.pixels[3 * i + 2];
      out.pixels[i] = uint8_t((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    }
  } else {
    throw std::invalid_argument("convert_channels: unsupported source channel count " +
                                std::to_string(img.channels));
  }
  return out;
}

void resize_bilinear(const float* in, int64_t channels, int64_t h, int64_t w, float* out,
                     int64_t out_h, int64_t out_w) {
  if (h < 1 || w < 1 || out_h < 1 || out_w < 1)
    throw std::invalid_argument("resize_bilinear: sizes must be positive");
  struct Tap { int64_t i0, i1; float l1; };
  auto taps = [](int64_t in_n, int64_t out_n) {
    std::vector<Tap> t(static_cast<size_t>(out_n));
    const double scale = double(in_n) / double(out_n);
    for (int64_t o = 0; o < out_n; ++o) {
      double src = (double(o) + 0.5) * scale - 0.5;
      if (src < 0) src = 0;
      int64_t i0 = static_cast<int64_t>(src);
      if (i0 > in_n - 1) i0 = in_n - 1;
      const int64_t i1 = i0 < in_n - 1 ? i0 + 1 : i0;
      t[size_t(o)] = Tap{i0, i1, static_cast<float>(src - double(i0))};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(h, out_h), tx = taps(w, out_w);
  for (int64_t c = 0; c < channels; ++c) {
    const float* src = in + c * h * w;
    float* dst = out + c * out_h * out_w;
    for (int64_t y = 0; y < out_h; ++y) {
      const Tap& a = ty[size_t(y)];
      const float* r0 = src + a.i0 * w;
      const float* r1 = src + a.i1 * w;
      for (int64_t x = 0; x < out_w; ++x) {
        const Tap& b = tx[size_t(x)];
        const float top = r0[b.i0] + (r0[b.i1] - r0[b.i0]) * b.l1;
        const float bot = r1[b.i0] + (r1[b.i1] - r1[b.i0]) * b.l1;
        dst[y * out_w + x] = top + (bot - top) * a.l1;
      }
    }
  }
}

DecodedImage resize_bilinear(const DecodedImage& img, int64_t out_h, int64_t out_w) {
  if (img.height == out_h && img.width == out_w) return img;
  const int64_t C = img.channels, H = img.height, W = img.width;
  std::vector<float> planes(size_t(C * H * W)), resized(size_t(C * out_h * out_w));
  for (int64_t i = 0; i < H * W; ++i)
    for (int64_t c = 0; c < C; ++c) planes[size_t(c * H * W + i)] = img.pixels[size_t(i * C + c)];
  resize_bilinear(planes.data(), C, H, W, resized.data(), out_h, out_w);
  DecodedImage out;
  out.height = out_h;
  out.width = out_w;
  out.channels = img.channels;
  out.pixels.resize(size_t(C * out_h * out_w));
  for (int64_t i = 0; i < out_h * out_w; ++i)
    for (int64_t c = 0; c < C; ++c) {
      float v = resized[size_t(c * out_h * out_w + i)] + 0.5f;
      v = v < 0 ? 0 : (v > 255 ? 255 : v);
      out.pixels[size_t(i * C + c)] = uint8_t(v);
    }
  return out;
}

}  // namespace hone::data
