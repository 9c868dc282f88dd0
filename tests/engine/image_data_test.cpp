// Image dataset readers (engine/data/image_dataset.h, image_codec.h): idx (real MNIST /
// Fashion-MNIST when ../shared/data or $HONE_DATA is there, plus generated files), CIFAR binary,
// folders of PNG/JPEG files written here with libpng/libjpeg, pixel CSVs (real sklearn digits).
// Every fixture is generated at run time into a temporary directory.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/data/image_codec.h"
#include "engine/data/image_dataset.h"

namespace fs = std::filesystem;
using namespace hone;
using namespace hone::data;

namespace {

std::string shared_data() {
  if (const char* env = std::getenv("HONE_DATA"); env && *env) return env;
  return std::string(HONE_SOURCE_DIR) + "/../shared/data";
}

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("hone_image_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile g = gzopen(path.c_str(), "wb");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(gzwrite(g, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  gzclose(g);
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

std::vector<uint8_t> idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                                const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> v;
  put_be32(v, magic);
  put_be32(v, n);
  put_be32(v, rows);
  put_be32(v, cols);
  v.insert(v.end(), pixels.begin(), pixels.end());
  return v;
}

std::vector<uint8_t> idx_labels(uint32_t magic, const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  put_be32(v, magic);
  put_be32(v, uint32_t(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

// Writes a PNG with libpng; `rows` holds the packed rows exactly as PNG stores them (16-bit
// samples big-endian).
void write_png(const std::string& path, int w, int h, int color_type, int bit_depth,
               const std::vector<uint8_t>& rows, const std::vector<png_color>& palette = {},
               bool interlaced = false) {
  fs::create_directories(fs::path(path).parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    FAIL() << "libpng write error";
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), bit_depth, color_type,
               interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), int(palette.size()));
  png_write_info(png, info);
  png_set_interlace_handling(png);
  const size_t rowbytes = png_get_rowbytes(png, info);
  ASSERT_EQ(rows.size(), rowbytes * size_t(h));
  std::vector<png_bytep> row_ptrs;
  for (int y = 0; y < h; ++y)
    row_ptrs.push_back(const_cast<png_bytep>(rows.data()) + size_t(y) * rowbytes);
  png_write_image(png, row_ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

// Writes a JPEG with libjpeg; pixels HWC, 1 or 3 components.
void write_jpeg(const std::string& path, int w, int h, int comps, const std::vector<uint8_t>& px,
                int quality = 95) {
  fs::create_directories(fs::path(path).parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = comps;
  c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(px.data()) + size_t(c.next_scanline) * size_t(w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

// Pixel (n, c, y, x) of a uint8 [N, C, H, W] dataset.
int px(const ImageDataset& d, int64_t n, int64_t c, int64_t y, int64_t x) {
  return d.images.data<uint8_t>()[((n * d.channels() + c) * d.height() + y) * d.width() + x];
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

// ---- idx ----------------------------------------------------------------------------------------

TEST(ImageData, IdxReadsRealMnistTestSet) {
  const std::string dir = shared_data() + "/images/mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "no MNIST at " << dir << " (set HONE_DATA to the shared data folder)";
  const ImageDataset d =
      read_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(d.images.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(d.images.dtype(), DType::U8);
  ASSERT_EQ(d.size(), 10000);
  EXPECT_EQ(d.num_classes(), 10);
  EXPECT_EQ(d.class_names[7], "7");
  EXPECT_EQ(std::vector<int64_t>(d.labels.begin(), d.labels.begin() + 10),
            (std::vector<int64_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}));
  std::map<int64_t, int> counts;
  for (int64_t l : d.labels) counts[l]++;
  EXPECT_EQ(counts, (std::map<int64_t, int>{{0, 980}, {1, 1135}, {2, 1032}, {3, 1010}, {4, 982},
                                            {5, 892}, {6, 958}, {7, 1028}, {8, 974}, {9, 1009}}));
  // The first image, a 7: row 7 starts its top stroke at column 6.
  EXPECT_EQ(px(d, 0, 0, 7, 5), 0);
  EXPECT_EQ(px(d, 0, 0, 7, 6), 84);
  EXPECT_EQ(px(d, 0, 0, 7, 7), 185);
  EXPECT_EQ(px(d, 0, 0, 7, 11), 36);
  int64_t sum0 = 0, sum_last = 0;
  for (int i = 0; i < 784; ++i) {
    sum0 += d.images.data<uint8_t>()[i];
    sum_last += d.images.data<uint8_t>()[9999 * 784 + i];
  }
  EXPECT_EQ(sum0, 18454);
  EXPECT_EQ(sum_last, 41833);
}

TEST(ImageData, IdxReadsFashionMnistTestSet) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "no Fashion-MNIST at " << dir << " (apt-get install dataset-fashion-mnist)";
  ImageDataset d = read_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", 10);
  d.class_names = fashion_mnist_class_names();
  EXPECT_EQ(d.images.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(std::vector<int64_t>(d.labels.begin(), d.labels.begin() + 5),
            (std::vector<int64_t>{9, 2, 1, 1, 6}));
  std::vector<int> counts(10);
  for (int64_t l : d.labels) counts[size_t(l)]++;
  EXPECT_EQ(counts, std::vector<int>(10, 1000));
  EXPECT_EQ(d.class_names[9], "Ankle boot");
}

TEST(ImageData, IdxGzipAndRawGiveTheSameData) {
  TempDir tmp;
  std::vector<uint8_t> pixels(5 * 3 * 4);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t(i * 7 % 256);
  const std::vector<uint8_t> labels = {3, 0, 2, 2, 1};
  write_bytes(tmp / "img.idx", idx_images(2051, 5, 3, 4, pixels));
  write_bytes(tmp / "lab.idx", idx_labels(2049, labels));
  write_gzip(tmp / "img.idx.gz", idx_images(2051, 5, 3, 4, pixels));
  write_gzip(tmp / "lab.idx.gz", idx_labels(2049, labels));
  const ImageDataset raw = read_idx(tmp / "img.idx", tmp / "lab.idx");
  const ImageDataset gz = read_idx(tmp / "img.idx.gz", tmp / "lab.idx.gz");
  for (const ImageDataset* d : {&raw, &gz}) {
    EXPECT_EQ(d->images.shape(), (Shape{5, 1, 3, 4}));
    EXPECT_EQ(d->labels, (std::vector<int64_t>{3, 0, 2, 2, 1}));
    EXPECT_EQ(d->num_classes(), 4);
    EXPECT_EQ(px(*d, 2, 0, 1, 3), pixels[2 * 12 + 1 * 4 + 3]);
  }
  EXPECT_EQ(std::vector<uint8_t>(raw.images.data<uint8_t>(), raw.images.data<uint8_t>() + 60),
            std::vector<uint8_t>(gz.images.data<uint8_t>(), gz.images.data<uint8_t>() + 60));
  // A fixed class count widens class_names; a label beyond it is an error naming the example.
  EXPECT_EQ(read_idx(tmp / "img.idx", tmp / "lab.idx", 10).num_classes(), 10);
  const std::string e = error_of([&] { read_idx(tmp / "img.idx", tmp / "lab.idx", 3); });
  EXPECT_NE(e.find("lab.idx"), std::string::npos) << e;
  EXPECT_NE(e.find("label 3 of example 0"), std::string::npos) << e;
}

TEST(ImageData, IdxRejectsWrongMagic) {
  TempDir tmp;
  const std::vector<uint8_t> pixels(2 * 2 * 2, 9);
  write_bytes(tmp / "img", idx_images(2051, 2, 2, 2, pixels));
  write_bytes(tmp / "lab", idx_labels(2049, {0, 1}));
  write_bytes(tmp / "img_bad", idx_images(2049, 2, 2, 2, pixels));
  write_bytes(tmp / "lab_bad", idx_labels(2051, {0, 1}));
  std::string e = error_of([&] { read_idx(tmp / "img_bad", tmp / "lab"); });
  EXPECT_NE(e.find(tmp / "img_bad"), std::string::npos) << e;
  EXPECT_NE(e.find("bad magic number 2049 (expected 2051"), std::string::npos) << e;
  e = error_of([&] { read_idx(tmp / "img", tmp / "lab_bad"); });
  EXPECT_NE(e.find(tmp / "lab_bad"), std::string::npos) << e;
  EXPECT_NE(e.find("expected 2049"), std::string::npos) << e;
  // Swapped arguments are caught by the magic numbers too.
  e = error_of([&] { read_idx(tmp / "lab", tmp / "img"); });
  EXPECT_NE(e.find("looks like a labels file"), std::string::npos) << e;
  // A header cut short.
  write_bytes(tmp / "short", {0, 0, 8, 3, 0, 0});
  e = error_of([&] { read_idx(tmp / "short", tmp / "lab"); });
  EXPECT_NE(e.find("too short"), std::string::npos) << e;
  e = error_of([&] { read_idx(tmp / "missing", tmp / "lab"); });
  EXPECT_NE(e.find(tmp / "missing"), std::string::npos) << e;
}

TEST(ImageData, IdxRejectsTruncatedBodiesAndCountMismatch) {
  TempDir tmp;
  std::vector<uint8_t> pixels(3 * 4 * 5, 1);
  std::vector<uint8_t> img = idx_images(2051, 3, 4, 5, pixels);
  img.pop_back();
  write_bytes(tmp / "img_trunc", img);
  write_gzip(tmp / "img_trunc.gz", img);
  write_bytes(tmp / "img", idx_images(2051, 3, 4, 5, pixels));
  write_bytes(tmp / "lab", idx_labels(2049, {0, 1, 2}));
  std::vector<uint8_t> lab = idx_labels(2049, {0, 1, 2});
  lab.pop_back();
  write_bytes(tmp / "lab_trunc", lab);
  write_bytes(tmp / "lab2", idx_labels(2049, {0, 1}));

  for (const std::string name : {"img_trunc", "img_trunc.gz"}) {
    const std::string e = error_of([&] { read_idx(tmp / name, tmp / "lab"); });
    EXPECT_NE(e.find(tmp / name), std::string::npos) << e;
    EXPECT_NE(e.find("truncated idx3 body: expected 60 bytes"), std::string::npos) << e;
    EXPECT_NE(e.find("found 59"), std::string::npos) << e;
  }
  std::string e = error_of([&] { read_idx(tmp / "img", tmp / "lab_trunc"); });
  EXPECT_NE(e.find("truncated idx1 body: expected 3 bytes of labels, found 2"), std::string::npos)
      << e;
  e = error_of([&] { read_idx(tmp / "img", tmp / "lab2"); });
  EXPECT_NE(e.find("2 labels but"), std::string::npos) << e;
  EXPECT_NE(e.find("has 3 images"), std::string::npos) << e;

  // A gzip stream cut short is its own error (the compressed data, not the idx body).
  std::vector<uint8_t> gz;
  write_gzip(tmp / "full.gz", idx_images(2051, 3, 4, 5, pixels));
  gz = read_bytes(tmp / "full.gz");
  gz.resize(gz.size() - 12);
  write_bytes(tmp / "cut.gz", gz);
  e = error_of([&] { read_idx(tmp / "cut.gz", tmp / "lab"); });
  EXPECT_NE(e.find(tmp / "cut.gz"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated gzip"), std::string::npos) << e;
  // Corrupt deflate data.
  gz = read_bytes(tmp / "full.gz");
  for (size_t i = 12; i < gz.size() - 8; ++i) gz[i] ^= 0x5a;
  write_bytes(tmp / "bad.gz", gz);
  e = error_of([&] { read_idx(tmp / "bad.gz", tmp / "lab"); });
  EXPECT_NE(e.find(tmp / "bad.gz"), std::string::npos) << e;
  EXPECT_NE(e.find("gzip"), std::string::npos) << e;
}

TEST(ImageData, GzipConcatenatedMembersAreRead) {
  TempDir tmp;
  write_gzip(tmp / "a.gz", {1, 2, 3});
  write_gzip(tmp / "b.gz", {4, 5});
  std::vector<uint8_t> both = read_bytes(tmp / "a.gz");
  const std::vector<uint8_t> b = read_bytes(tmp / "b.gz");
  both.insert(both.end(), b.begin(), b.end());
  write_bytes(tmp / "ab.gz", both);
  EXPECT_EQ(read_file_maybe_gzip(tmp / "ab.gz"), (std::vector<uint8_t>{1, 2, 3, 4, 5}));
  write_bytes(tmp / "raw", {0x1f, 0x00, 7});
  EXPECT_EQ(read_file_maybe_gzip(tmp / "raw"), (std::vector<uint8_t>{0x1f, 0x00, 7}));
}

// ---- CIFAR --------------------------------------------------------------------------------------

namespace {
std::vector<uint8_t> cifar_records(const std::vector<std::vector<uint8_t>>& label_bytes,
                                   uint8_t base) {
  std::vector<uint8_t> v;
  for (size_t r = 0; r < label_bytes.size(); ++r) {
    v.insert(v.end(), label_bytes[r].begin(), label_bytes[r].end());
    for (int i = 0; i < 3072; ++i) v.push_back(uint8_t((i / 1024) * 80 + (i % 7) + base + r));
  }
  return v;
}
}  // namespace

TEST(ImageData, CifarBinaryBatches) {
  TempDir tmp;
  write_bytes(tmp / "data_batch_1.bin", cifar_records({{3}, {9}, {0}}, 0));
  write_bytes(tmp / "data_batch_2.bin", cifar_records({{5}, {1}}, 10));
  const ImageDataset d = read_cifar_binary({tmp / "data_batch_1.bin", tmp / "data_batch_2.bin"});
  EXPECT_EQ(d.images.shape(), (Shape{5, 3, 32, 32}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{3, 9, 0, 5, 1}));
  EXPECT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[0], "airplane");
  EXPECT_EQ(d.class_names[9], "truck");
  // Pixel i of a record -> channel i / 1024, row (i % 1024) / 32, column i % 32.
  for (int64_t n : {0, 1, 4})
    for (int i : {0, 1, 33, 1023, 1024, 2047, 2048 + 5 * 32 + 7, 3071}) {
      const int expected = (i / 1024) * 80 + (i % 7) + (n >= 3 ? 10 + int(n) - 3 : int(n));
      EXPECT_EQ(px(d, n, i / 1024, (i % 1024) / 32, i % 32), expected) << n << " " << i;
    }

  // batches.meta.txt beside the first file names the classes.
  std::ofstream(tmp / "batches.meta.txt") << "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n";
  EXPECT_EQ(read_cifar_binary({tmp / "data_batch_2.bin"}).class_names[1], "b");

  // CIFAR-100: (coarse, fine) label bytes, the fine one is used.
  write_bytes(tmp / "train.bin", cifar_records({{4, 72}, {19, 99}}, 0));
  const ImageDataset c100 = read_cifar_binary({tmp / "train.bin"}, 100);
  EXPECT_EQ(c100.labels, (std::vector<int64_t>{72, 99}));
  EXPECT_EQ(c100.num_classes(), 100);
  EXPECT_EQ(px(c100, 1, 2, 31, 31), 2 * 80 + 3071 % 7 + 1);

  // Sizes that are not whole records; labels out of range.
  std::string e = error_of([&] { read_cifar_binary({tmp / "train.bin"}, 10); });
  EXPECT_NE(e.find(tmp / "train.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("not a positive multiple of the 3073-byte"), std::string::npos) << e;
  std::vector<uint8_t> cut = cifar_records({{1}}, 0);
  cut.pop_back();
  write_bytes(tmp / "cut.bin", cut);
  e = error_of([&] { read_cifar_binary({tmp / "data_batch_1.bin", tmp / "cut.bin"}); });
  EXPECT_NE(e.find(tmp / "cut.bin"), std::string::npos) << e;
  EXPECT_NE(e.find("size 3072"), std::string::npos) << e;
  write_bytes(tmp / "badlabel.bin", cifar_records({{2}, {10}}, 0));
  e = error_of([&] { read_cifar_binary({tmp / "badlabel.bin"}); });
  EXPECT_NE(e.find("record 1 has label 10"), std::string::npos) << e;
  EXPECT_THROW(read_cifar_binary({tmp / "train.bin"}, 20), std::invalid_argument);
}

// ---- image folders ------------------------------------------------------------------------------

namespace {
// A 4x5 RGB pattern with distinct values.
std::vector<uint8_t> rgb_pattern(int h, int w) {
  std::vector<uint8_t> v;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) v.push_back(uint8_t(40 * c + 10 * y + x));
  return v;
}
}  // namespace

TEST(ImageData, ImageFolderDecodesEveryPngKindAndJpeg) {
  TempDir tmp;
  const int H = 4, W = 5;
  // cat/a.png: 8-bit RGB.
  write_png(tmp / "cat/a.png", W, H, PNG_COLOR_TYPE_RGB, 8, rgb_pattern(H, W));
  // cat/b.JPG: flat-colour RGB JPEG (lossy: compared within a tolerance).
  std::vector<uint8_t> flat;
  for (int i = 0; i < H * W; ++i) flat.insert(flat.end(), {200, 100, 50});
  write_jpeg(tmp / "cat/b.JPG", W, H, 3, flat);
  // dog/c.png: 8-bit gray.
  std::vector<uint8_t> gray;
  for (int i = 0; i < H * W; ++i) gray.push_back(uint8_t(i * 12));
  write_png(tmp / "dog/c.png", W, H, PNG_COLOR_TYPE_GRAY, 8, gray);
  // dog/d.png: palette (indices 0..3).
  const std::vector<png_color> pal = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
  std::vector<uint8_t> idx;
  for (int i = 0; i < H * W; ++i) idx.push_back(uint8_t(i % 4));
  write_png(tmp / "dog/d.png", W, H, PNG_COLOR_TYPE_PALETTE, 8, idx, pal);
  // dog/e.png: 16-bit RGB, samples k * 257 (-> k exactly) and 65535.
  std::vector<uint8_t> deep;
  for (int i = 0; i < H * W; ++i)
    for (int c = 0; c < 3; ++c) {
      const uint16_t v = c == 2 ? 65535 : uint16_t((i + 100 * c) * 257);
      deep.push_back(uint8_t(v >> 8));
      deep.push_back(uint8_t(v & 0xff));
    }
  write_png(tmp / "dog/e.png", W, H, PNG_COLOR_TYPE_RGB, 16, deep);
  // zebra/f.png: RGBA (alpha dropped, not composited); a stray text file is ignored.
  std::vector<uint8_t> rgba;
  for (int i = 0; i < H * W; ++i) rgba.insert(rgba.end(), {uint8_t(i), 7, 250, uint8_t(i * 3)});
  write_png(tmp / "zebra/f.png", W, H, PNG_COLOR_TYPE_RGBA, 8, rgba);
  std::ofstream(tmp / "zebra/notes.txt") << "not an image";
  // Hidden folders and files at the root are ignored.
  fs::create_directories(tmp.path / ".cache");
  std::ofstream(tmp / "README") << "x";

  const ImageDataset d = read_image_folder(tmp.path.string());
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog", "zebra"}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{0, 0, 1, 1, 1, 2}));
  EXPECT_EQ(d.images.shape(), (Shape{6, 3, H, W}));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int i = y * W + x;
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(px(d, 0, c, y, x), 40 * c + 10 * y + x);                  // RGB
        EXPECT_NEAR(px(d, 1, c, y, x), (c == 0 ? 200 : c == 1 ? 100 : 50), 3);  // JPEG
        EXPECT_EQ(px(d, 2, c, y, x), i * 12);                                // gray replicated
        const png_color p = pal[size_t(i % 4)];
        EXPECT_EQ(px(d, 3, c, y, x), c == 0 ? p.red : c == 1 ? p.green : p.blue);  // palette
        EXPECT_EQ(px(d, 4, c, y, x), c == 2 ? 255 : i + 100 * c);           // 16-bit
      }
      EXPECT_EQ(px(d, 5, 0, y, x), i);  // RGBA
      EXPECT_EQ(px(d, 5, 1, y, x), 7);
      EXPECT_EQ(px(d, 5, 2, y, x), 250);
    }

  // One channel: gray stays, RGB becomes luma (PIL's convert("L")).
  const ImageDataset g = read_image_folder(tmp.path.string(), 0, 0, 1);
  EXPECT_EQ(g.images.shape(), (Shape{6, 1, H, W}));
  EXPECT_EQ(px(g, 2, 0, 1, 2), 7 * 12);
  const int r = 40 * 0 + 10 + 2, gg = 40 + 10 + 2, b = 80 + 10 + 2;
  EXPECT_EQ(px(g, 0, 0, 1, 2), (r * 19595 + gg * 38470 + b * 7471 + 0x8000) >> 16);
}

TEST(ImageData, DecodePngBitDepthsAndInterlacing) {
  TempDir tmp;
  // 1-bit gray, 8 pixels a row: expanded to 0 / 255.
  write_png(tmp / "bits.png", 8, 2, PNG_COLOR_TYPE_GRAY, 1, {0xA0, 0x01});
  DecodedImage im = decode_image_file(tmp / "bits.png");
  EXPECT_EQ(im.channels, 1);
  EXPECT_EQ(im.pixels, (std::vector<uint8_t>{255, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255}));
  // 16-bit gray + alpha: gray scaled to 8 bits, alpha dropped.
  write_png(tmp / "ga16.png", 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16,
            {0x80, 0x80, 0x00, 0x00, 0xFF, 0xFF, 0x12, 0x34});
  im = decode_image_file(tmp / "ga16.png");
  EXPECT_EQ(im.channels, 1);
  EXPECT_EQ(im.pixels, (std::vector<uint8_t>{128, 255}));
  // Adam7-interlaced RGB decodes to the same pixels as the plain file.
  write_png(tmp / "plain.png", 9, 7, PNG_COLOR_TYPE_RGB, 8, rgb_pattern(7, 9));
  write_png(tmp / "inter.png", 9, 7, PNG_COLOR_TYPE_RGB, 8, rgb_pattern(7, 9), {}, true);
  EXPECT_EQ(decode_image_file(tmp / "inter.png").pixels, rgb_pattern(7, 9));
  EXPECT_EQ(decode_image_file(tmp / "plain.png").pixels, rgb_pattern(7, 9));
  // A file that is neither PNG nor JPEG by signature or extension.
  write_bytes(tmp / "x.gif", {'G', 'I', 'F', '8', '9', 'a'});
  const std::string e = error_of([&] { decode_image_file(tmp / "x.gif"); });
  EXPECT_NE(e.find("not a PNG or JPEG file"), std::string::npos) << e;
}

TEST(ImageData, ImageFolderMixedSizesNeedAResize) {
  TempDir tmp;
  std::vector<uint8_t> ramp = {0, 200};  // 1x2 gray
  write_png(tmp / "a/1.png", 2, 1, PNG_COLOR_TYPE_GRAY, 8, ramp);
  write_png(tmp / "a/2.png", 4, 3, PNG_COLOR_TYPE_RGB, 8, std::vector<uint8_t>(36, 90));
  write_jpeg(tmp / "b/3.jpeg", 16, 8, 1, std::vector<uint8_t>(128, 128));
  const std::string e = error_of([&] { read_image_folder(tmp.path.string()); });
  EXPECT_NE(e.find(tmp / "a/2.png"), std::string::npos) << e;
  EXPECT_NE(e.find("image is 3x4 but"), std::string::npos) << e;

  const ImageDataset d = read_image_folder(tmp.path.string(), 1, 4, 1);
  EXPECT_EQ(d.images.shape(), (Shape{3, 1, 1, 4}));
  // Bilinear, half-pixel centres (PyTorch align_corners=False): 1x2 [0, 200] -> 1x4.
  EXPECT_EQ(px(d, 0, 0, 0, 0), 0);
  EXPECT_EQ(px(d, 0, 0, 0, 1), 50);
  EXPECT_EQ(px(d, 0, 0, 0, 2), 150);
  EXPECT_EQ(px(d, 0, 0, 0, 3), 200);
  for (int x = 0; x < 4; ++x) {
    EXPECT_EQ(px(d, 1, 0, 0, x), 90);
    EXPECT_NEAR(px(d, 2, 0, 0, x), 128, 2);
  }
  EXPECT_THROW(read_image_folder(tmp.path.string(), 5, 0), std::invalid_argument);
  EXPECT_THROW(read_image_folder(tmp.path.string(), 0, 0, 2), std::invalid_argument);
}

TEST(ImageData, ImageFolderCorruptFilesAreErrorsNotCrashes) {
  TempDir tmp;
  write_png(tmp / "ok/a.png", 8, 8, PNG_COLOR_TYPE_RGB, 8, rgb_pattern(8, 8));
  std::vector<uint8_t> jpg_px(32 * 32 * 3);
  for (size_t i = 0; i < jpg_px.size(); ++i) jpg_px[i] = uint8_t(i * 31);
  write_jpeg(tmp / "ok/b.jpg", 32, 32, 3, jpg_px);
  const std::vector<uint8_t> png_bytes = read_bytes(tmp / "ok/a.png");
  const std::vector<uint8_t> jpg_bytes = read_bytes(tmp / "ok/b.jpg");
  ASSERT_NO_THROW(read_image_folder(tmp.path.string(), 8, 8));

  struct Case { std::string name; std::vector<uint8_t> bytes; std::string message; };
  std::vector<uint8_t> garbage(300);
  std::mt19937 rng(5);
  for (auto& b : garbage) b = uint8_t(rng());
  garbage[0] = 0x42;  // no JPEG/PNG signature
  std::vector<uint8_t> jpg_cut(jpg_bytes.begin(), jpg_bytes.begin() + long(jpg_bytes.size() / 2));
  std::vector<uint8_t> png_cut(png_bytes.begin(), png_bytes.begin() + long(png_bytes.size() - 30));
  std::vector<uint8_t> png_crc = png_bytes;
  png_crc[png_crc.size() - 20] ^= 0xff;  // inside the IDAT chunk (zlib checksum / chunk CRC)
  const std::vector<Case> cases = {
      {"bad/x.jpg", garbage, "Not a JPEG file"},
      {"bad/x.jpg", jpg_cut, "Premature end of JPEG file"},
      {"bad/x.jpeg", {}, "JPEG"},
      {"bad/x.png", garbage, "Not a PNG file"},
      {"bad/x.png", png_cut, "truncated PNG"},
      {"bad/x.png", png_crc, "IDAT: "},  // libpng: "IDAT: incorrect data check"
  };
  for (const Case& c : cases) {
    fs::remove_all(tmp.path / "bad");
    write_bytes(tmp / c.name, c.bytes);
    const std::string e = error_of([&] { read_image_folder(tmp.path.string(), 8, 8); });
    EXPECT_NE(e.find(tmp / c.name), std::string::npos) << c.message << ": " << e;
    EXPECT_NE(e.find(c.message), std::string::npos) << e;
    // The codec entry points report the same.
    EXPECT_THROW(decode_image(c.bytes.data(), c.bytes.size(), c.name), std::runtime_error);
  }
}

TEST(ImageData, ImageFolderStructureErrors) {
  TempDir tmp;
  std::string e = error_of([&] { read_image_folder(tmp.path.string()); });
  EXPECT_NE(e.find("no class folders"), std::string::npos) << e;
  e = error_of([&] { read_image_folder(tmp / "nowhere"); });
  EXPECT_NE(e.find("not a directory"), std::string::npos) << e;
  write_png(tmp / "full/a.png", 2, 2, PNG_COLOR_TYPE_GRAY, 8, {1, 2, 3, 4});
  fs::create_directories(tmp.path / "empty");
  std::ofstream(tmp / "empty/readme.txt") << "no images here";
  e = error_of([&] { read_image_folder(tmp.path.string()); });
  EXPECT_NE(e.find(tmp / "empty"), std::string::npos) << e;
  EXPECT_NE(e.find("class folder has no .png/.jpg/.jpeg images"), std::string::npos) << e;
}

// ---- pixel CSV ----------------------------------------------------------------------------------

TEST(ImageData, PixelCsvReadsSklearnDigits) {
  const std::string path = shared_data() + "/images/sklearn-digits/digits.csv.gz";
  if (!fs::exists(path)) GTEST_SKIP() << "no sklearn digits at " << path << " (set HONE_DATA)";
  // 64 pixel values 0..16, then the label; no header.
  const ImageDataset d = read_pixel_csv(path, 8, 8, 1, "-1", 16.0);
  EXPECT_EQ(d.images.shape(), (Shape{1797, 1, 8, 8}));
  EXPECT_EQ(d.num_classes(), 10);
  EXPECT_EQ(std::vector<int64_t>(d.labels.begin(), d.labels.begin() + 10),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  std::vector<int> counts(10);
  for (int64_t l : d.labels) counts[size_t(l)]++;
  EXPECT_EQ(counts, (std::vector<int>{178, 182, 177, 183, 181, 182, 181, 179, 174, 180}));
  // Row 0 starts 0,0,5,13,9,1,0,0: scaled by 255/16 and rounded.
  const std::vector<int> row0 = {0, 0, 80, 207, 143, 16, 0, 0};
  for (int x = 0; x < 8; ++x) EXPECT_EQ(px(d, 0, 0, 0, x), row0[size_t(x)]) << x;
  int mx = 0;
  for (int64_t i = 0; i < d.images.numel(); ++i) mx = std::max<int>(mx, d.images.data<uint8_t>()[i]);
  EXPECT_EQ(mx, 255);  // 16 -> 255
  // The same file addressed by the column index from the start.
  EXPECT_EQ(read_pixel_csv(path, 8, 8, 1, "64", 16.0).labels, d.labels);
  // Without a header the default "label" cannot name a column.
  const std::string e = error_of([&] { read_pixel_csv(path, 8, 8); });
  EXPECT_NE(e.find("no header"), std::string::npos) << e;
}

TEST(ImageData, PixelCsvHeaderFloatsAndErrors) {
  TempDir tmp;
  // Label in the middle, two channels of 1x2, floats in [0, 1], CRLF line ends and a blank line.
  std::ofstream(tmp / "a.csv") << "p0,p1,\"label\",p2,p3\r\n"
                                  "0,1,3,0.5,0.25\r\n"
                                  "\r\n"
                                  "1.0,0.0,1,1,0\r\n";
  const ImageDataset d = read_pixel_csv(tmp / "a.csv", 1, 2, 2, "label", 1.0);
  EXPECT_EQ(d.images.shape(), (Shape{2, 2, 1, 2}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(d.num_classes(), 4);
  EXPECT_EQ(px(d, 0, 0, 0, 0), 0);
  EXPECT_EQ(px(d, 0, 0, 0, 1), 255);
  EXPECT_EQ(px(d, 0, 1, 0, 0), 128);  // 127.5 rounds up
  EXPECT_EQ(px(d, 0, 1, 0, 1), 64);   // 63.75
  EXPECT_EQ(px(d, 1, 0, 0, 0), 255);

  std::ofstream(tmp / "bad_pixel.csv") << "label,a,b\n1,2,3\n0,x,4\n";
  std::string e = error_of([&] { read_pixel_csv(tmp / "bad_pixel.csv", 1, 2); });
  EXPECT_NE(e.find(tmp / "bad_pixel.csv"), std::string::npos) << e;
  EXPECT_NE(e.find("line 3, column 'a': bad pixel value 'x'"), std::string::npos) << e;
  std::ofstream(tmp / "range.csv") << "label,a,b\n1,2,300\n";
  e = error_of([&] { read_pixel_csv(tmp / "range.csv", 1, 2); });
  EXPECT_NE(e.find("line 2, column 'b': bad pixel value '300'"), std::string::npos) << e;
  std::ofstream(tmp / "label.csv") << "label,a,b\n1.5,2,3\n";
  e = error_of([&] { read_pixel_csv(tmp / "label.csv", 1, 2); });
  EXPECT_NE(e.find("line 2, column 'label': bad label '1.5'"), std::string::npos) << e;
  std::ofstream(tmp / "fields.csv") << "label,a,b\n1,2,3\n1,2\n";
  e = error_of([&] { read_pixel_csv(tmp / "fields.csv", 1, 2); });
  EXPECT_NE(e.find("line 3: expected 3 fields, found 2"), std::string::npos) << e;
  e = error_of([&] { read_pixel_csv(tmp / "fields.csv", 2, 2); });
  EXPECT_NE(e.find("expected 1 label + 4 pixel columns"), std::string::npos) << e;
  e = error_of([&] { read_pixel_csv(tmp / "fields.csv", 1, 2, 1, "target"); });
  EXPECT_NE(e.find("no column named 'target'"), std::string::npos) << e;
  std::ofstream(tmp / "noheader.csv") << "5,6,1\n7,8,2\n";
  e = error_of([&] { read_pixel_csv(tmp / "noheader.csv", 1, 2, 1, "-1", 5.5); });
  EXPECT_NE(e.find("line 1, column '1': bad pixel value '6'"), std::string::npos) << e;
  const ImageDataset nh = read_pixel_csv(tmp / "noheader.csv", 1, 2, 1, "0", 8.0);
  EXPECT_EQ(nh.labels, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(px(nh, 1, 0, 0, 1), 64);  // 2 * 255 / 8 = 63.75
  std::ofstream(tmp / "empty.csv") << "label,a,b\n";
  e = error_of([&] { read_pixel_csv(tmp / "empty.csv", 1, 2); });
  EXPECT_NE(e.find("no data rows"), std::string::npos) << e;
}
