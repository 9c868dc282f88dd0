// Labelled text for sequence classification (SST-2, MNLI, IMDB-style data): reading CSV, TSV or
// JSON-lines files into (text, optional second text, label id) examples, a deterministic
// train/validation split, and the epoch sampler the classification trainer draws batches from.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hone::data {

struct LabeledExample {
  std::string text;
  std::string text_pair;  // empty when the dataset has a single text per example
  int64_t label = -1;     // -1 only when the options read no label column (a prediction file)
};

struct LabeledTextOptions {
  std::string text_column = "text";
  std::string text_pair_column = "";  // optional second text (sentence pairs: MNLI, QQP, ...)
  // The label's column. Empty reads an unlabelled file (e.g. GLUE's test.tsv): every label is -1.
  std::string label_column = "label";
  // CSV/TSV only. Without a header, columns are addressed by 0-based index written as a string
  // ("0", "1", ...) in the column options above.
  bool has_header = true;
  // "csv", "tsv", "jsonl", or "" to decide from the extension (.csv, .tsv, .jsonl / .json).
  std::string format = "";
  // Fixed label order (id -> name). Empty: discovered from the file (see read_labeled_text).
  std::vector<std::string> label_names = {};
};

struct LabeledDataset {
  std::vector<LabeledExample> examples;
  std::vector<std::string> label_names;  // id -> name
  int64_t num_labels() const { return static_cast<int64_t>(label_names.size()); }
};

// Reads the labelled examples in `path`.
//
// Formats:
//   - CSV as RFC 4180: fields separated by commas, optionally in double quotes; inside quotes a
//     doubled quote is a quote, and commas and line breaks are literal. Lines end in LF or CRLF.
//   - TSV as GLUE writes it: fields separated by tabs, no quoting at all (a quote is a character).
//   - JSON lines: one object per line; text columns must be strings, the label a string or number.
// A leading UTF-8 byte order mark is dropped and blank lines are skipped. Every CSV/TSV record
// must have as many fields as the first one (the header). Texts lose trailing '\r' characters
// (files edited on Windows); labels lose surrounding spaces and tabs.
//
// Labels, when `label_names` is empty:
//   - all labels numbers: integer labels, names "0".."K-1" with K = largest label + 1; a negative
//     or fractional label is an error;
//   - otherwise string labels: ids follow the sorted (byte-wise, like Python's sorted()) order
//     of the distinct names.
// With `label_names` given, a label equal to a name gets that name's id; failing that an integer
// label in [0, K) is taken as the id (so integer files can be given class names); anything else
// is an error naming the label. To read train/val/test with one mapping, read the first file and
// pass its label_names when reading the others.
//
// Errors are std::runtime_error: "<path>: line N, column 'c': what" for problems with a record
// (a missing column, a wrong field count, a bad or unknown label, invalid UTF-8, an unterminated
// quote), "<path>: ..." for the file as a whole (missing, empty, no examples, unknown extension).
// For a CSV record spanning several lines, N is the line where it starts. Bad options (an unknown
// format, repeated label names) are std::invalid_argument.
LabeledDataset read_labeled_text(const std::string& path, const LabeledTextOptions& options);

// Splits `d` at random into (train, val) with round(val_fraction * n) examples in val, at least
// one when val_fraction > 0 and n >= 2, and never all of them. With `stratify`, each label gets
// its proportional share of val (largest-remainder rounding, so the total is exact). Which
// examples go where depends only on (seed, the labels, n); both halves keep the file order and
// d's label_names. val_fraction must be in [0, 1).
std::pair<LabeledDataset, LabeledDataset> split_dataset(const LabeledDataset& d,
                                                        double val_fraction, uint64_t seed,
                                                        bool stratify = true);

// The order in which training visits examples: epoch after epoch, each a permutation of 0..n-1
// (a Philox-driven Fisher-Yates shuffle that depends only on (seed, epoch); the identity when
// !shuffle). next_batch(B) returns the next B indices of that endless stream; a batch that reaches
// the end of an epoch is completed from the next one, so every batch is full and every epoch
// still visits each example exactly once.
//
// position() counts the indices handed out so far (epoch = position / n, offset = position % n);
// a sampler built with the same (n, seed, shuffle) and restore(position) continues identically.
class ExampleSampler {
 public:
  ExampleSampler(int64_t n, uint64_t seed, bool shuffle = true);

  std::vector<int64_t> next_batch(int64_t B);
  int64_t epoch() const { return position_ / n_; }  // epoch of the next index
  int64_t offset_in_epoch() const { return position_ % n_; }
  int64_t position() const { return position_; }
  void restore(int64_t position);
  int64_t size() const { return n_; }

  // The order of epoch `e` (a pure function of n, seed, shuffle and e).
  std::vector<int64_t> epoch_order(int64_t e) const;

 private:
  int64_t n_;
  uint64_t seed_;
  bool shuffle_;
  int64_t position_ = 0;
  int64_t cached_epoch_ = -1;  // epoch whose order is in order_
  std::vector<int64_t> order_;
};

}  // namespace hone::data
