// The Unicode operations Hugging Face's BertTokenizer performs, answered from tables generated
// by wordpiece_unicode_gen.py from Python's unicodedata (so they agree with the Python
// reference character for character): character classes, per-character str.lower(), and
// canonical normalisation (NFC, NFD).
#pragma once

#include <cstdint>
#include <string>

namespace hone {

// What BertTokenizer's basic tokenisation does with a character.
enum class WpClass : uint8_t {
  Other = 0,  // kept, part of a word
  Drop,       // removed by _clean_text: NUL, U+FFFD and every category C* except \t \n \r
  Space,      // separates words: space \t \n \r, Zs, and U+2028/U+2029 (str.split() splits there)
  Punct,      // a word by itself: ASCII 33-47, 58-64, 91-96, 123-126 and categories P*
  Mark,       // category Mn: removed by accent stripping
};

WpClass wp_class(char32_t cp);

// wp_class for ASCII (c < 128), usable in constant expressions (so that other translation
// units can build tables from it without depending on static initialisation order).
constexpr WpClass wp_ascii_class(unsigned char c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return WpClass::Space;
  if (c < 0x20 || c == 0x7F) return WpClass::Drop;  // Cc
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
    return WpClass::Punct;
  return WpClass::Other;
}

// _is_chinese_char: the CJK ideograph blocks BertTokenizer pads with spaces. (Not kana, not
// Hangul, not CJK punctuation.)
constexpr bool wp_is_chinese(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Appends Python's chr(cp).lower() (one code point, or two for U+0130 'İ' -> "i̇").
void wp_append_lower(std::u32string& out, char32_t cp);

// unicodedata.normalize("NFD" / "NFC", s), in place.
void wp_nfd(std::u32string& s);
void wp_nfc(std::u32string& s);

// Canonical combining class (0 for starters).
uint8_t wp_combining_class(char32_t cp);

// The Unicode version of the tables ("14.0.0").
const char* wp_unicode_version();

}  // namespace hone
