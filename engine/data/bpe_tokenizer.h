// Byte-level BPE tokenizer that encodes exactly as Hugging Face's GPT-2 tokenizer
// (GPT2Tokenizer / GPT2TokenizerFast, i.e. tokenizers' ByteLevel pre-tokenizer with the GPT-2
// pattern, add_prefix_space=False) and decodes losslessly.
//
//   text --(special tokens split out)--> pieces --(GPT-2 pattern, bpe_pretokenize.h)-->
//   pre-tokens --(bytes -> byte-level symbols, ranked merges, bpe_merge.h)--> ids
//
// Thread safety: all methods are const and safe to call concurrently; the pre-token cache is
// internally locked. Copies share the (immutable) model and the cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hone {

class BpeTokenizer {
 public:
  // From a folder holding vocab.json + merges.txt (Hugging Face names) or encoder.json +
  // vocab.bpe (OpenAI names; same content). Throws std::runtime_error naming the file and line
  // for malformed input: bad JSON, a merges line without exactly two symbols, a merge whose
  // symbols or result are not in the vocab, a duplicate merge or id, a byte with no token.
  static BpeTokenizer from_folder(const std::string& dir);
  static BpeTokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);

  // Text must be valid UTF-8, else std::invalid_argument naming the byte offset. With
  // allow_special (Hugging Face's default), special tokens such as "<|endoftext|>" written in
  // the text map to their id; otherwise they are encoded as ordinary text.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = true) const;

  // Concatenated bytes of the tokens: decode(encode(x)) == x for every valid x. Ids that split a
  // multi-byte character give the raw bytes (no replacement characters). Unknown id ->
  // std::out_of_range.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t eot_id() const;      // <|endoftext|>, or -1 if the vocab has none
  int64_t vocab_size() const;  // max id + 1 (50257 for GPT-2)

  // Tokens in vocab.json form (byte-level characters, e.g. "Ġthe" for " the").
  std::string token(int32_t id) const;      // std::out_of_range for an unknown id
  int32_t id(std::string_view token) const; // -1 if absent

  // Pre-token cache statistics, for benchmarks.
  struct CacheStats {
    int64_t hits = 0, misses = 0, size = 0;
  };
  CacheStats cache_stats() const;

  struct Impl;

 private:
  explicit BpeTokenizer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  std::shared_ptr<Impl> impl_;
};

}  // namespace hone
