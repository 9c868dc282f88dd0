// Text -> words, exactly as Hugging Face's BertTokenizer (slow, transformers 4.40.2) splits text
// before WordPiece: PreTrainedTokenizer.tokenize's per-character lower-casing, then
// BasicTokenizer (clean text, pad CJK ideographs, NFC, whitespace split, lower-case, strip
// accents, split punctuation). Special tokens ("[MASK]") are split out before this step by the
// caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hone {

struct WpNormalizeFlags {
  bool lower_case = true;      // per-character str.lower()
  bool strip_accents = true;   // NFD, then drop category Mn (HF's None already resolved)
  bool chinese_chars = true;   // CJK ideographs become words of their own
};

// Words as byte spans of one buffer, so that splitting a sentence allocates nothing once the
// buffers have grown.
struct WpWords {
  std::string text;
  std::vector<std::pair<uint32_t, uint32_t>> spans;  // (offset, length) into text
  void clear() {
    text.clear();
    spans.clear();
  }
  size_t size() const { return spans.size(); }
  std::string_view operator[](size_t i) const {
    return std::string_view(text).substr(spans[i].first, spans[i].second);
  }
};

// Appends the words of `text` (valid UTF-8; the caller checks) to `out`. Every word is
// non-empty UTF-8.
void wp_split_words(std::string_view text, const WpNormalizeFlags& flags, WpWords& out);

}  // namespace hone
