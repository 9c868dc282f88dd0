// WordPieceTokenizer: model inputs -- [CLS] a [SEP] (b [SEP]) with Hugging Face's truncation,
// and padded batches.
#include <algorithm>
#include <stdexcept>

#include "engine/data/wordpiece_tokenizer.h"

namespace hone {
namespace {

// HF's truncate_sequences with truncation=True ('longest_first'), truncation_side='right'.
void truncate(std::vector<int32_t>& a, std::vector<int32_t>* b, int64_t remove) {
  if (remove <= 0) return;
  const auto len_a = static_cast<int64_t>(a.size());
  if (!b) {
    // HF only logs an error when the sequence cannot absorb the cut (max_length below the
    // specials' count) and returns it whole; so do we.
    if (len_a > remove) a.resize(len_a - remove);
    return;
  }
  // Remove from the longer one until both are equal, then alternately, the odd one from b.
  const auto len_b = static_cast<int64_t>(b->size());
  const int64_t first = std::min(std::abs(len_b - len_a), remove);
  const int64_t second = remove - first;
  int64_t from_a, from_b;
  if (len_a > len_b) {
    from_a = first + second / 2;
    from_b = second - second / 2;
  } else {
    from_a = second / 2;
    from_b = first + second - second / 2;
  }
  a.resize(std::max<int64_t>(0, len_a - from_a));
  b->resize(std::max<int64_t>(0, len_b - from_b));
}

}  // namespace

Encoding WordPieceTokenizer::encode(std::string_view a, std::string_view b, int64_t max_length,
                                    bool has_b) const {
  const bool pair = has_b || !b.empty();
  std::vector<int32_t> ids_a = encode_ids(a);
  std::vector<int32_t> ids_b = pair ? encode_ids(b) : std::vector<int32_t>{};
  if (max_length > 0) {
    const int64_t total = static_cast<int64_t>(ids_a.size() + ids_b.size()) + (pair ? 3 : 2);
    truncate(ids_a, pair ? &ids_b : nullptr, total - max_length);
  }
  Encoding e;
  e.ids.reserve(ids_a.size() + ids_b.size() + 3);
  e.ids.push_back(cls_id());
  e.ids.insert(e.ids.end(), ids_a.begin(), ids_a.end());
  e.ids.push_back(sep_id());
  e.token_type_ids.assign(e.ids.size(), 0);
  if (pair) {
    e.ids.insert(e.ids.end(), ids_b.begin(), ids_b.end());
    e.ids.push_back(sep_id());
    e.token_type_ids.resize(e.ids.size(), 1);
  }
  e.attention_mask.assign(e.ids.size(), 1);
  return e;
}

WordPieceTokenizer::Batch WordPieceTokenizer::pad_batch(const std::vector<Encoding>& encodings,
                                                        int32_t pad_id) {
  const auto rows = static_cast<int64_t>(encodings.size());
  int64_t cols = 0;
  for (const Encoding& e : encodings) {
    if (e.token_type_ids.size() != e.ids.size() || e.attention_mask.size() != e.ids.size())
      throw std::invalid_argument("WordPieceTokenizer::pad_batch: an encoding's ids, token_type_ids "
                                  "and attention_mask differ in length");
    cols = std::max(cols, static_cast<int64_t>(e.ids.size()));
  }
  std::vector<int64_t> ids(rows * cols, pad_id), types(rows * cols, 0), mask(rows * cols, 0);
  for (int64_t r = 0; r < rows; ++r) {
    const Encoding& e = encodings[r];
    std::copy(e.ids.begin(), e.ids.end(), ids.begin() + r * cols);
    std::copy(e.token_type_ids.begin(), e.token_type_ids.end(), types.begin() + r * cols);
    std::copy(e.attention_mask.begin(), e.attention_mask.end(), mask.begin() + r * cols);
  }
  const Shape shape{rows, cols};
  return Batch{Tensor::from_vector(ids, shape), Tensor::from_vector(types, shape),
               Tensor::from_vector(mask, shape)};
}

}  // namespace hone
