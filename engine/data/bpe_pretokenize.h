// GPT-2's pre-tokenisation, written out by hand (hone uses no regex library). It splits text
// exactly as Python's `regex` module does with
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The alternatives are tried in order at each position (leftmost-first, not longest):
//   - contractions are lowercase only: "'S" does not match, its "'" joins a punctuation run;
//   - " ?" is a single U+0020 only, never a tab or a no-break space;
//   - a whitespace run followed by a non-space gives its last character back, so that a
//     U+0020 can prefix the next word ("a  b" -> "a", " ", " b"); a run of one whitespace
//     character before a non-space is its own piece ("\nb" -> "\n", "b").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hone {

class Gpt2PreTokenizer {
 public:
  // text must be valid UTF-8 (the tokenizer checks before splitting) and outlive this object.
  explicit Gpt2PreTokenizer(std::string_view text) : text_(text) {}

  // Next piece (a view into text), or an empty view when the text is used up.
  std::string_view next();

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

// All pieces at once; for tests and tools.
std::vector<std::string> gpt2_pretokenize(std::string_view text);

}  // namespace hone
