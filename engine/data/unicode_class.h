// Unicode helpers for the GPT-2 pre-tokeniser: strict UTF-8 decoding and the three character
// classes its pattern distinguishes (\p{L}, \p{N}, \s). Tables: unicode_tables.inc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hone {

enum class CharClass : uint8_t { Other = 0, Letter, Number, Space };

// Class of an ASCII character (c < 128), usable in constant expressions.
constexpr CharClass ascii_char_class(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CharClass::Letter;
  if (c >= '0' && c <= '9') return CharClass::Number;
  if (c == ' ' || (c >= '\t' && c <= '\r')) return CharClass::Space;  // \t \n \v \f \r
  return CharClass::Other;
}

// Class of one code point. Letter = general category L*, Number = N*, Space = White_Space;
// everything else (punctuation, symbols, marks, controls, unassigned) is Other.
CharClass char_class(char32_t cp);

// The Unicode version the tables were generated from (see unicode_tables_gen.py).
const char* unicode_tables_version();

// Decodes one UTF-8 sequence at s[pos]. On success stores the code point, returns its length
// (1..4). Returns 0 for anything Python would not accept as UTF-8: stray continuation bytes,
// truncated sequences, overlong forms, surrogates (U+D800..U+DFFF), values above U+10FFFF.
int utf8_decode(std::string_view s, size_t pos, char32_t* cp);

// Byte offset of the first invalid UTF-8 sequence in s, or std::string_view::npos if valid.
size_t utf8_first_invalid(std::string_view s);

// Appends the UTF-8 encoding of cp (assumed a valid scalar value).
template <class String>
void utf8_append(String& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace hone
