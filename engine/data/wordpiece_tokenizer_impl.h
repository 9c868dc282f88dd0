// Internal state of WordPieceTokenizer, shared by its loader (wordpiece_load.cpp) and its
// encoder/decoder (wordpiece_tokenizer.cpp). Not part of the public API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/data/wordpiece_tokenizer.h"

namespace hone {

// Hash that lets unordered_map<std::string, ...> be searched with a string_view (no copy).
struct WpStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using WpTokenMap = std::unordered_map<std::string, int32_t, WpStringHash, std::equal_to<>>;

struct WordPieceTokenizer::Impl {
  WordPieceOptions options;
  std::vector<std::string> tokens;  // id -> token (line of vocab.txt)
  WpTokenMap word_ids;              // every token, as written
  WpTokenMap cont_ids;              // tokens "##x" under the key "x": continuation lookups
                                    // need no "##" + substr string
  size_t max_word_bytes = 0, max_cont_bytes = 0;  // no longer substring can match
  int32_t unk = -1, cls = -1, sep = -1, pad = -1, mask = -1;
  // Special tokens split out of text before normalisation (HF's added-tokens trie), and a flag
  // per id for decode's skip_special.
  std::vector<std::pair<std::string, int32_t>> specials;
  std::vector<char> is_special;
};

}  // namespace hone
