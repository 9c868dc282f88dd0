#include "engine/data/image_dataset.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string_view>

#include <zlib.h>

#include "engine/data/image_codec.h"

namespace hone::data {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::vector<uint8_t> read_raw(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(path, "is a directory, expected a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, "read error");
  return bytes;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 16) != Z_OK) fail(path, "cannot initialise zlib");
  std::vector<uint8_t> out(std::max<size_t>(in.size() * 4, 1024));
  size_t in_pos = 0, out_pos = 0;
  bool finished = false;
  while (true) {
    if (zs.avail_in == 0 && in_pos < in.size()) {
      const size_t n = std::min<size_t>(in.size() - in_pos, size_t(1) << 30);
      zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
      zs.avail_in = static_cast<uInt>(n);
      in_pos += n;
    }
    if (out_pos == out.size()) out.resize(out.size() * 2);
    const size_t room = std::min<size_t>(out.size() - out_pos, size_t(1) << 30);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out_pos += room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (as `cat a.gz b.gz` makes); anything else ends the data.
      const size_t left = zs.avail_in + (in.size() - in_pos);
      const uint8_t* next = zs.next_in;
      if (left >= 2 && zs.avail_in >= 2 && next[0] == 0x1f && next[1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      finished = true;
      break;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos == in.size()) break;  // input ran out
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      const std::string msg = zs.msg ? zs.msg : ("zlib error " + std::to_string(rc));
      inflateEnd(&zs);
      fail(path, "corrupt gzip data: " + msg);
    }
  }
  inflateEnd(&zs);
  if (!finished)
    fail(path, "truncated gzip data (the compressed stream ends early; " + std::to_string(out_pos) +
                   " bytes decompressed)");
  out.resize(out_pos);
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::vector<std::string> numbered_names(int64_t k) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < k; ++i) names.push_back(std::to_string(i));
  return names;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_image_file(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

bool parse_number(std::string_view s, double& v) {
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(v);
}

void split_fields(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                           : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

std::vector<std::string> read_name_list(const fs::path& p) {
  std::vector<std::string> names;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) {
    const std::string_view t = trim(line);
    if (!t.empty()) names.emplace_back(t);
  }
  return names;
}

}  // namespace

std::vector<uint8_t> read_file_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> bytes = read_raw(path);
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(bytes, path);
  return bytes;
}

// ---- idx ------------------------------------------------------------------------------------

ImageDataset read_idx(const std::string& images_path, const std::string& labels_path,
                      int64_t num_classes) {
  if (num_classes < 0) throw std::invalid_argument("read_idx: num_classes must be >= 0");
  const std::vector<uint8_t> img = read_file_maybe_gzip(images_path);
  const uint32_t img_magic = img.size() >= 4 ? be32(img.data()) : 0;
  if (img.size() >= 4 && img_magic != 2051)
    fail(images_path, "bad magic number " + std::to_string(img_magic) +
                          " (expected 2051 for idx3 uint8 images" +
                          (img_magic == 2049 ? "; this looks like a labels file)" : ")"));
  if (img.size() < 16)
    fail(images_path, "too short for an idx3 header: " + std::to_string(img.size()) +
                          " bytes, expected at least 16");
  const uint64_t n = be32(img.data() + 4), rows = be32(img.data() + 8), cols = be32(img.data() + 12);
  if (n == 0 || rows == 0 || cols == 0)
    fail(images_path, "zero dimension in idx3 header (" + std::to_string(n) + " x " +
                          std::to_string(rows) + " x " + std::to_string(cols) + ")");
  const uint64_t body = n * rows * cols;
  if (img.size() - 16 != body)
    fail(images_path, std::string(img.size() - 16 < body ? "truncated" : "over-long") +
                          " idx3 body: expected " + std::to_string(body) + " bytes of pixels (" +
                          std::to_string(n) + " x " + std::to_string(rows) + " x " +
                          std::to_string(cols) + "), found " + std::to_string(img.size() - 16));

  const std::vector<uint8_t> lab = read_file_maybe_gzip(labels_path);
  const uint32_t lab_magic = lab.size() >= 4 ? be32(lab.data()) : 0;
  if (lab.size() >= 4 && lab_magic != 2049)
    fail(labels_path, "bad magic number " + std::to_string(lab_magic) +
                          " (expected 2049 for idx1 uint8 labels" +
                          (lab_magic == 2051 ? "; this looks like an images file)" : ")"));
  if (lab.size() < 8)
    fail(labels_path, "too short for an idx1 header: " + std::to_string(lab.size()) +
                          " bytes, expected at least 8");
  const uint64_t nl = be32(lab.data() + 4);
  if (lab.size() - 8 != nl)
    fail(labels_path, std::string(lab.size() - 8 < nl ? "truncated" : "over-long") +
                          " idx1 body: expected " + std::to_string(nl) + " bytes of labels, found " +
                          std::to_string(lab.size() - 8));
  if (nl != n)
    fail(labels_path, std::to_string(nl) + " labels but " + images_path + " has " +
                          std::to_string(n) + " images");

  ImageDataset d;
  d.labels.resize(n);
  int64_t max_label = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t l = lab[8 + i];
    if (num_classes > 0 && l >= num_classes)
      fail(labels_path, "label " + std::to_string(l) + " of example " + std::to_string(i) +
                            " is out of range [0, " + std::to_string(num_classes) + ")");
    d.labels[i] = l;
    max_label = std::max(max_label, l);
  }
  d.class_names = numbered_names(num_classes > 0 ? num_classes : max_label + 1);
  d.images = Tensor::empty({int64_t(n), 1, int64_t(rows), int64_t(cols)}, DType::U8);
  std::memcpy(d.images.data<uint8_t>(), img.data() + 16, body);
  return d;
}

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

// ---- CIFAR ----------------------------------------------------------------------------------

ImageDataset read_cifar_binary(const std::vector<std::string>& batch_files, int num_classes) {
  if (num_classes != 10 && num_classes != 100)
    throw std::invalid_argument("read_cifar_binary: num_classes must be 10 or 100, got " +
                                std::to_string(num_classes));
  if (batch_files.empty()) throw std::invalid_argument("read_cifar_binary: no batch files given");
  const size_t label_bytes = num_classes == 100 ? 2 : 1, pixels = 3 * 32 * 32;
  const size_t record = label_bytes + pixels;
  std::vector<uint8_t> all;
  ImageDataset d;
  for (const std::string& path : batch_files) {
    const std::vector<uint8_t> bytes = read_file_maybe_gzip(path);
    if (bytes.empty() || bytes.size() % record != 0)
      fail(path, "size " + std::to_string(bytes.size()) + " is not a positive multiple of the " +
                     std::to_string(record) + "-byte CIFAR-" + std::to_string(num_classes) +
                     " record (" + std::to_string(label_bytes) + " label byte" +
                     (label_bytes > 1 ? "s" : "") + " + 3072 pixels)");
    const size_t n = bytes.size() / record;
    all.reserve(all.size() + n * pixels);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* r = bytes.data() + i * record;
      const int64_t label = r[label_bytes - 1];  // CIFAR-100: (coarse, fine) -> fine
      if (label >= num_classes)
        fail(path, "record " + std::to_string(i) + " has label " + std::to_string(label) +
                       ", out of range [0, " + std::to_string(num_classes) + ")");
      d.labels.push_back(label);
      all.insert(all.end(), r + label_bytes, r + record);
    }
  }
  const fs::path dir = fs::path(batch_files.front()).parent_path();
  std::vector<std::string> names =
      read_name_list(dir / (num_classes == 10 ? "batches.meta.txt" : "fine_label_names.txt"));
  if (int64_t(names.size()) != num_classes) {
    names = num_classes == 10
                ? std::vector<std::string>{"airplane", "automobile", "bird",  "cat",  "deer",
                                           "dog",      "frog",       "horse", "ship", "truck"}
                : numbered_names(num_classes);
  }
  d.class_names = std::move(names);
  d.images = Tensor::empty({d.size(), 3, 32, 32}, DType::U8);
  std::memcpy(d.images.data<uint8_t>(), all.data(), all.size());
  return d;
}

// ---- image folder -----------------------------------------------------------------------------

ImageDataset read_image_folder(const std::string& root, int64_t height, int64_t width,
                               int channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument("read_image_folder: channels must be 1 or 3, got " +
                                std::to_string(channels));
  if (height < 0 || width < 0 || (height == 0) != (width == 0))
    throw std::invalid_argument("read_image_folder: give both height and width (> 0) or neither");
  std::error_code ec;
  if (!fs::is_directory(root, ec)) fail(root, "not a directory");

  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (e.is_directory()) classes.push_back(name);
  }
  std::sort(classes.begin(), classes.end());
  if (classes.empty())
    fail(root, "no class folders (expected root/<class>/<image>.png|.jpg|.jpeg)");

  ImageDataset d;
  d.class_names = classes;
  std::vector<std::string> files;
  for (size_t c = 0; c < classes.size(); ++c) {
    const fs::path dir = fs::path(root) / classes[c];
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.' || !e.is_regular_file() || !is_image_file(e.path()))
        continue;
      names.push_back(name);
    }
    if (names.empty()) fail(dir.string(), "class folder has no .png/.jpg/.jpeg images");
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      files.push_back((dir / name).string());
      d.labels.push_back(int64_t(c));
    }
  }

  const int64_t n = int64_t(files.size());
  // The first image fixes the size when none is given.
  DecodedImage first = convert_channels(decode_image_file(files[0]), channels);
  const int64_t H = height > 0 ? height : first.height, W = width > 0 ? width : first.width;
  d.images = Tensor::empty({n, channels, H, W}, DType::U8);
  uint8_t* out = d.images.data<uint8_t>();
  const int64_t plane = H * W;

  auto store = [&](int64_t i, DecodedImage img) {
    img = convert_channels(img, channels);
    if (img.height != H || img.width != W) {
      if (height == 0)
        fail(files[size_t(i)], "image is " + std::to_string(img.height) + "x" +
                                   std::to_string(img.width) + " but " + files[0] + " is " +
                                   std::to_string(H) + "x" + std::to_string(W) +
                                   " (give a height and width to resize)");
      img = resize_bilinear(img, H, W);
    }
    uint8_t* dst = out + i * channels * plane;
    for (int64_t p = 0; p < plane; ++p)
      for (int c = 0; c < channels; ++c) dst[c * plane + p] = img.pixels[size_t(p * channels + c)];
  };
  store(0, std::move(first));

  // Decode the rest in parallel; the error reported is the one of the first failing file.
  std::atomic<int64_t> first_error{n};
  std::vector<std::string> errors(static_cast<size_t>(n));
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 1; i < n; ++i) {
    if (first_error.load() < i) continue;
    try {
      store(i, decode_image_file(files[size_t(i)]));
    } catch (const std::exception& e) {
      errors[size_t(i)] = e.what();
      int64_t cur = first_error.load();
      while (i < cur && !first_error.compare_exchange_weak(cur, i)) {
      }
    }
  }
  if (first_error.load() < n) throw std::runtime_error(errors[size_t(first_error.load())]);
  return d;
}

// ---- pixel CSV ----------------------------------------------------------------------------------

ImageDataset read_pixel_csv(const std::string& path, int64_t height, int64_t width, int channels,
                            const std::string& label_column, double max_value) {
  if (height < 1 || width < 1 || channels < 1)
    throw std::invalid_argument("read_pixel_csv: height, width and channels must be positive");
  if (!(max_value > 0) || !std::isfinite(max_value))
    throw std::invalid_argument("read_pixel_csv: max_value must be positive");
  const std::vector<uint8_t> bytes = read_file_maybe_gzip(path);
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  const int64_t npix = height * width * channels;
  const double scale = 255.0 / max_value;
  std::vector<std::string_view> fields;
  std::vector<std::string> names;  // column names for messages
  int64_t ncols = -1, label_idx = -1, line_no = 0;
  std::vector<uint8_t> pixels;
  ImageDataset d;
  int64_t max_label = -1;
  auto where = [&](int64_t col) {
    return "line " + std::to_string(line_no) + ", column '" + names[size_t(col)] + "'";
  };

  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (trim(line).empty()) continue;
    split_fields(line, fields);

    if (ncols < 0) {  // the first line: header or data?
      ncols = int64_t(fields.size());
      bool header = false;
      double v;
      for (const auto& f : fields) header = header || !parse_number(f, v);
      if (header) {
        for (const auto& f : fields) names.emplace_back(f);
        for (int64_t c = 0; c < ncols; ++c)
          if (names[size_t(c)] == label_column) label_idx = c;
      } else {
        for (int64_t c = 0; c < ncols; ++c) names.push_back(std::to_string(c));
      }
      if (label_idx < 0) {
        int64_t idx = 0;
        const auto r = std::from_chars(label_column.data(), label_column.data() + label_column.size(), idx);
        if (r.ec != std::errc() || r.ptr != label_column.data() + label_column.size())
          fail(path, header ? "no column named '" + label_column + "' in the header"
                            : "the file has no header: give label_column as a 0-based column "
                              "index (e.g. \"-1\" for the last column), not '" + label_column + "'");
        if (idx < 0) idx += ncols;
        if (idx < 0 || idx >= ncols)
          fail(path, "label column index " + label_column + " is out of range for " +
                         std::to_string(ncols) + " columns");
        label_idx = idx;
      }
      if (ncols - 1 != npix)
        fail(path, "line " + std::to_string(line_no) + ": expected 1 label + " +
                       std::to_string(npix) + " pixel columns (" + std::to_string(channels) +
                       " x " + std::to_string(height) + " x " + std::to_string(width) +
                       "), found " + std::to_string(ncols) + " columns");
      if (header) continue;
    }

    if (int64_t(fields.size()) != ncols)
      fail(path, "line " + std::to_string(line_no) + ": expected " + std::to_string(ncols) +
                     " fields, found " + std::to_string(fields.size()));
    double v = 0;
    if (!parse_number(fields[size_t(label_idx)], v) || v < 0 || v != std::floor(v) || v > 1e9)
      fail(path, where(label_idx) + ": bad label '" + std::string(fields[size_t(label_idx)]) +
                     "' (expected a non-negative integer)");
    d.labels.push_back(int64_t(v));
    max_label = std::max(max_label, int64_t(v));
    for (int64_t c = 0; c < ncols; ++c) {
      if (c == label_idx) continue;
      if (!parse_number(fields[size_t(c)], v) || v < 0 || v > max_value)
        fail(path, where(c) + ": bad pixel value '" + std::string(fields[size_t(c)]) +
                       "' (expected a number in [0, " + std::to_string(max_value) + "])");
      pixels.push_back(uint8_t(std::min(255.0, std::floor(v * scale + 0.5))));
    }
  }
  if (d.labels.empty()) fail(path, "no data rows");
  d.class_names = numbered_names(max_label + 1);
  d.images = Tensor::empty({d.size(), channels, height, width}, DType::U8);
  std::memcpy(d.images.data<uint8_t>(), pixels.data(), pixels.size());
  return d;
}

}  // namespace hone::data
