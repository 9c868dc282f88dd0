// Labelled image datasets for CNN fine-tuning: MNIST / Fashion-MNIST idx files, CIFAR-10/100
// binary batches, folders of PNG/JPEG files (one sub-folder per class), and CSV files of pixel
// rows (sklearn digits, Kaggle-style MNIST CSVs). Every reader returns the whole dataset in memory
// as uint8 [N, C, H, W]; transforms and batching are in image_transform.h / image_loader.h.
//
// Errors are std::runtime_error whose message starts with the offending file's path; bad arguments
// are std::invalid_argument.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hone::data {

struct ImageDataset {
  Tensor images;                         // uint8 [N, C, H, W], CPU, contiguous
  std::vector<int64_t> labels;           // N class ids in [0, num_classes())
  std::vector<std::string> class_names;  // id -> name
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  int64_t channels() const { return images.size(1); }
  int64_t height() const { return images.size(2); }
  int64_t width() const { return images.size(3); }
};

// The whole file, gunzipped when it starts with the gzip magic 1f 8b (several concatenated gzip
// members are read one after the other). Errors name the file: missing, unreadable, corrupt or
// truncated gzip data.
std::vector<uint8_t> read_file_maybe_gzip(const std::string& path);

// MNIST-format idx files (MNIST, Fashion-MNIST, KMNIST, EMNIST), each gzip-compressed or raw:
// images idx3 (magic 2051: uint8, 3 dims: count, rows, cols) -> [N, 1, rows, cols], labels idx1
// (magic 2049: count). The body must be exactly count*rows*cols (count) bytes: a truncated or
// over-long file is an error naming the file and the expected vs actual byte counts. The two
// counts must agree. With num_classes > 0 every label must be below it (an error names the first
// offending index), else num_classes = largest label + 1. class_names are "0", "1", ...; pass
// fashion_mnist_class_names() or your own afterwards if you want words.
ImageDataset read_idx(const std::string& images_path, const std::string& labels_path,
                      int64_t num_classes = 0);

// The 10 Fashion-MNIST class names in label order ("T-shirt/top", "Trouser", ...).
std::vector<std::string> fashion_mnist_class_names();

// CIFAR binary batches ("data_batch_1.bin" ... / "test_batch.bin", or CIFAR-100's "train.bin" /
// "test.bin"), concatenated in the given order: records of 1 label byte + 3072 pixel bytes
// (CIFAR-10), or 2 label bytes (coarse, fine) + 3072 when num_classes == 100 (the fine label is
// used). Pixels are 1024 R, 1024 G, 1024 B, each 32x32 row-major -> [N, 3, 32, 32]. A file size
// that is not a multiple of the record, or a label >= num_classes, is an error naming the file.
// class_names: the names in "batches.meta.txt" (CIFAR-10) / "fine_label_names.txt" (CIFAR-100)
// beside the first file when present, else CIFAR-10's built-in names / "0".."99".
ImageDataset read_cifar_binary(const std::vector<std::string>& batch_files, int num_classes = 10);

// A folder per class: root/<class>/<image>.png|.jpg|.jpeg (extension case-insensitive; other
// files and hidden entries are ignored). Class names are the sub-folder names sorted byte-wise
// (ids follow that order); files in a class are read in sorted order; the dataset lists classes
// one after the other. Images are decoded to 8 bits (image_codec.h: palette expanded, 16-bit
// scaled, alpha dropped) and converted to `channels` (1 or 3; gray -> RGB replicates, RGB -> gray
// is luma). With height and width > 0 every image whose size differs is resized to height x width
// (bilinear); with both 0 every image must have the first image's size (an error names the file
// and both sizes). Errors: an empty or missing root, a class folder without images (named), a
// file that fails to decode (named, with the decoder's message).
ImageDataset read_image_folder(const std::string& root, int64_t height = 0, int64_t width = 0,
                               int channels = 3);

// A CSV file (optionally gzip-compressed) of one image per line: a label column plus
// height*width*channels pixel columns, in column order, laid out as [C, H, W] (channel planes one
// after the other; for 1 channel simply row-major pixels).
//   - Header: the first line is a header when any of its fields is not a number. Then
//     `label_column` names the label's column (or, when no header field has that name and it is an
//     integer, is a 0-based column index). Without a header `label_column` must be a 0-based
//     column index, negative counting from the end ("-1": the last column, as in sklearn digits).
//   - Pixels: numbers (integers or decimals) in [0, max_value], stored as
//     round(value * 255 / max_value). max_value = 16 for sklearn digits, 1 for [0, 1] floats.
//   - Labels: non-negative integers; class_names "0".."K-1", K = largest label + 1.
// Blank lines are skipped; fields are trimmed of spaces and surrounding double quotes. Errors
// read "<path>: line N, column 'name': what" (the column's header name, or its index).
ImageDataset read_pixel_csv(const std::string& path, int64_t height, int64_t width,
                            int channels = 1, const std::string& label_column = "label",
                            double max_value = 255.0);

}  // namespace hone::data
