// BertTokenizer's basic tokenisation. The Python reference, in order:
//   1. PreTrainedTokenizer.tokenize: text = per-character str.lower()   (if do_lower_case)
//   2. _clean_text: drop NUL, U+FFFD, categories C* (but \t \n \r); whitespace -> " "
//   3. _tokenize_chinese_chars: " " + c + " " around each CJK ideograph
//   4. unicodedata.normalize("NFC"), then str.split()
//   5. per word: str.lower() (a no-op after step 1), accent stripping (NFD, drop Mn)
//   6. _run_split_on_punc: every punctuation character becomes a word of its own
// Steps 2-3 depend only on each character's class, and lower-casing never changes whether a
// character is dropped, a space or CJK (checked over all code points when the tables were
// made), so they run first here; steps 1 and 4-6 then work on one whitespace-delimited word at
// a time. Words of pure ASCII (nearly all English) take a shortcut: ASCII is unchanged by NFC,
// has no accents, and lower-cases byte by byte -- unless a non-ASCII character follows, which
// is why the shortcut is decided per whole word.
#include "engine/data/wordpiece_normalize.h"

#include <array>

#include "engine/data/unicode_class.h"
#include "engine/data/wordpiece_unicode.h"

namespace hone {
namespace {

// constexpr: a table computed at static-initialisation time could be read before it is filled.
constexpr std::array<WpClass, 128> kAsciiClass = [] {
  std::array<WpClass, 128> t{};
  for (unsigned c = 0; c < 128; ++c) t[c] = wp_ascii_class(static_cast<unsigned char>(c));
  return t;
}();

class Splitter {
 public:
  Splitter(const WpNormalizeFlags& flags, WpWords& out) : flags_(flags), out_(out) {}

  void run(std::string_view text) {
    for (size_t i = 0; i < text.size();) {
      const auto b = static_cast<unsigned char>(text[i]);
      if (b < 0x80) {
        ++i;
        const WpClass cls = kAsciiClass[b];
        if (cls == WpClass::Space) flush();
        else if (cls != WpClass::Drop) raw_.push_back(static_cast<char>(b));
        continue;
      }
      char32_t cp = 0;
      const int len = utf8_decode(text, i, &cp);
      if (len == 0) {  // the caller validated; never loop forever on a broken promise
        ++i;
        continue;
      }
      const WpClass cls = wp_class(cp);
      if (cls == WpClass::Space) {
        flush();
      } else if (cls != WpClass::Drop) {
        const bool own_word = flags_.chinese_chars && wp_is_chinese(cp);
        if (own_word) flush();
        raw_.append(text, i, len);
        raw_ascii_ = false;
        if (own_word) flush();
      }
      i += len;
    }
    flush();
  }

 private:
  // Steps 1 and 4-6 on the whitespace-delimited word gathered in raw_.
  void flush() {
    if (raw_.empty()) return;
    if (raw_ascii_) flush_ascii();
    else flush_unicode();
    raw_.clear();
    raw_ascii_ = true;
  }

  void flush_ascii() {
    for (const char c : raw_) {
      if (kAsciiClass[static_cast<unsigned char>(c)] == WpClass::Punct) {
        end_word();
        out_.text.push_back(c);
        end_word();
      } else {
        out_.text.push_back(flags_.lower_case && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
      }
    }
    end_word();
  }

  void flush_unicode() {
    chars_.clear();
    char32_t cp = 0;
    for (size_t i = 0; i < raw_.size();) {
      const int len = utf8_decode(raw_, i, &cp);
      if (flags_.lower_case) wp_append_lower(chars_, cp);
      else chars_.push_back(cp);
      i += len;
    }
    wp_nfc(chars_);
    // Step 5's str.lower() would change nothing: the characters are lower case already, and
    // no composition of lower-case characters is upper case (checked when generating tables).
    if (flags_.strip_accents) wp_nfd(chars_);
    for (const char32_t c : chars_) {
      const WpClass cls = wp_class(c);
      if (cls == WpClass::Mark && flags_.strip_accents) continue;
      if (cls == WpClass::Punct) {
        end_word();
        utf8_append(out_.text, c);
        end_word();
      } else {
        utf8_append(out_.text, c);
      }
    }
    end_word();
  }

  // Closes the word being written at the end of out_.text (if it has any bytes).
  void end_word() {
    const auto end = static_cast<uint32_t>(out_.text.size());
    if (end > word_start_) out_.spans.emplace_back(word_start_, end - word_start_);
    word_start_ = end;
  }

  const WpNormalizeFlags& flags_;
  WpWords& out_;
  uint32_t word_start_ = static_cast<uint32_t>(out_.text.size());
  std::string raw_;
  bool raw_ascii_ = true;
  std::u32string chars_;
};

}  // namespace

void wp_split_words(std::string_view text, const WpNormalizeFlags& flags, WpWords& out) {
  Splitter(flags, out).run(text);
}

}  // namespace hone
