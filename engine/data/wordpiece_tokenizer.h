// WordPiece tokenizer that encodes exactly as Hugging Face's BertTokenizer (slow, transformers
// 4.40.2) -- and, where the two agree, BertTokenizerFast -- for BERT-family models
// (bert-base-uncased, MiniLM, ...).
//
//   text --(special tokens such as "[MASK]" split out)--> pieces
//        --(basic tokenisation, wordpiece_normalize.h)--> words
//        --(greedy longest-match-first against vocab.txt, "##" continuations)--> ids
//
// Thread safety: all methods are const and safe to call concurrently. Copies share the
// (immutable) vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/tensor.h"

namespace hone {

struct WordPieceOptions {
  bool lower_case = true;
  // Hugging Face's strip_accents=None means "follow lower_case". This is a plain bool, so set it
  // yourself: a cased model (lower_case = false) normally wants strip_accents = false too.
  // from_folder resolves None from tokenizer_config.json.
  bool strip_accents = true;
  bool tokenize_chinese_chars = true;
  int64_t max_input_chars_per_word = 100;  // longer words (in code points) become [UNK]
};

struct Encoding {
  std::vector<int32_t> ids, token_type_ids, attention_mask;
};

class WordPieceTokenizer {
 public:
  // vocab.txt (one token per line, id = line index) in `dir`; options from tokenizer_config.json
  // beside it when present (do_lower_case, strip_accents, tokenize_chinese_chars), else the
  // defaults. Throws std::runtime_error naming the file (and line) for an empty vocab, an empty
  // line, a duplicate token, invalid UTF-8, a missing [UNK]/[CLS]/[SEP]/[PAD], bad JSON.
  static WordPieceTokenizer from_folder(const std::string& dir);
  static WordPieceTokenizer from_vocab(const std::string& vocab_txt, WordPieceOptions options = {});

  // Wordpieces ("##"-prefixed continuations), no [CLS]/[SEP]. Special tokens written in the text
  // ("[MASK]", exact case) stay single tokens, as in Hugging Face. Text must be valid UTF-8,
  // else std::invalid_argument naming the byte offset (also for encode).
  std::vector<std::string> tokenize(std::string_view text) const;
  // Ids of tokens; tokens not in the vocab map to [UNK].
  std::vector<int32_t> convert(const std::vector<std::string>& tokens) const;
  // Ids of the wordpieces of text, no [CLS]/[SEP].
  std::vector<int32_t> encode_ids(std::string_view text) const;

  // [CLS] a [SEP], or [CLS] a [SEP] b [SEP] when has_b or b is non-empty (has_b with an empty b
  // gives HF's tokenizer(a, "") = [CLS] a [SEP] [SEP]). If max_length > 0 and the result is
  // longer, truncates like HF's truncation=True ('longest_first': for a pair, tokens come off the
  // end of the longer sequence, ties from b; a single sequence too short to absorb the cut is
  // left whole, as HF does). token_type_ids: 0 for [CLS] a [SEP], 1 for b [SEP]. attention_mask:
  // all 1 (no padding here).
  Encoding encode(std::string_view a, std::string_view b = {}, int64_t max_length = 512,
                  bool has_b = false) const;

  // Pads a batch to its longest sequence: input_ids with pad_id, token_type_ids and
  // attention_mask with 0. Int64 tensors [B, T] (B = 0 gives [0, 0]).
  struct Batch {
    Tensor input_ids, token_type_ids, attention_mask;
  };
  static Batch pad_batch(const std::vector<Encoding>& encodings, int32_t pad_id);

  // HF's decode(ids, skip_special_tokens, clean_up_tokenization_spaces=True): tokens joined by
  // spaces, " ##" removed, then " ." -> "." and the like. skip_special drops [CLS] [SEP] [PAD]
  // [MASK] and [UNK]. Unknown id -> std::out_of_range (HF would print [UNK]).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

  int32_t cls_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  int32_t mask_id() const;  // -1 if the vocab has no [MASK]
  int64_t vocab_size() const;
  const WordPieceOptions& options() const;

  std::string token(int32_t id) const;       // std::out_of_range for an unknown id
  int32_t id(std::string_view token) const;  // -1 if absent

  struct Impl;

 private:
  explicit WordPieceTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace hone
