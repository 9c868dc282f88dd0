#include "engine/data/unicode_class.h"

#include <algorithm>
#include <array>

namespace hone {
namespace unicode_detail {
struct CodeRange {
  char32_t lo, hi;
};
#include "engine/data/unicode_tables.inc"
}  // namespace unicode_detail

namespace {
using unicode_detail::CodeRange;

template <size_t N>
constexpr bool in_ranges(const CodeRange (&table)[N], char32_t cp) {
  // First range whose upper end is >= cp; cp is inside iff that range starts at or below it.
  const CodeRange* it = std::lower_bound(std::begin(table), std::end(table), cp,
                                         [](const CodeRange& r, char32_t c) { return r.hi < c; });
  return it != std::end(table) && it->lo <= cp;
}

// The Latin-1 block is by far the most common input, so it gets a direct table. constexpr, so
// it is ready before any other translation unit's static initialisers run.
constexpr std::array<CharClass, 256> make_latin1_table() {
  std::array<CharClass, 256> t{};
  for (char32_t cp = 0; cp < 256; ++cp) {
    if (in_ranges(unicode_detail::kLetterRanges, cp)) t[cp] = CharClass::Letter;
    else if (in_ranges(unicode_detail::kNumberRanges, cp)) t[cp] = CharClass::Number;
    else if (in_ranges(unicode_detail::kWhiteSpaceRanges, cp)) t[cp] = CharClass::Space;
  }
  return t;
}
constexpr std::array<CharClass, 256> kLatin1 = make_latin1_table();
}  // namespace

CharClass char_class(char32_t cp) {
  if (cp < 256) return kLatin1[cp];
  if (in_ranges(unicode_detail::kLetterRanges, cp)) return CharClass::Letter;
  if (in_ranges(unicode_detail::kNumberRanges, cp)) return CharClass::Number;
  if (in_ranges(unicode_detail::kWhiteSpaceRanges, cp)) return CharClass::Space;
  return CharClass::Other;
}

const char* unicode_tables_version() { return unicode_detail::kUnicodeVersion; }

int utf8_decode(std::string_view s, size_t pos, char32_t* cp) {
  const size_t n = s.size();
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int len;
  char32_t v, min;
  if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; v = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { len = 3; v = b0 & 0x0F; min = 0x800; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; v = b0 & 0x07; min = 0x10000; }
  else return 0;  // continuation byte, C0/C1 (always overlong) or F5..FF
  if (pos + len > n) return 0;
  for (int i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

size_t utf8_first_invalid(std::string_view s) {
  size_t i = 0;
  char32_t cp;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const int len = utf8_decode(s, i, &cp);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace hone
