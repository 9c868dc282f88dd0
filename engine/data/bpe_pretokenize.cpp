#include "engine/data/bpe_pretokenize.h"

#include <array>

#include "engine/data/unicode_class.h"

namespace hone {
namespace {

// ASCII classes by table: English text almost never leaves this path.
constexpr std::array<CharClass, 128> make_ascii_table() {
  std::array<CharClass, 128> t{};
  for (unsigned c = 0; c < 128; ++c) t[c] = ascii_char_class(static_cast<unsigned char>(c));
  return t;
}
constexpr std::array<CharClass, 128> kAscii = make_ascii_table();

struct Char {
  CharClass cls;
  int len;  // bytes
};

// Class and length of the character at s[pos] (pos < s.size(), s valid UTF-8).
inline Char char_at(std::string_view s, size_t pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return {kAscii[b], 1};
  char32_t cp = 0;
  const int len = utf8_decode(s, pos, &cp);
  // Invalid input is rejected before splitting; step one byte anyway so we cannot loop forever.
  if (len == 0) return {CharClass::Other, 1};
  return {char_class(cp), len};
}

// End of the run of characters of class cls starting at pos.
inline size_t run_end(std::string_view s, size_t pos, CharClass cls) {
  while (pos < s.size()) {
    const Char c = char_at(s, pos);
    if (c.cls != cls) break;
    pos += c.len;
  }
  return pos;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd) at s[pos] == '\'', or 0.
inline size_t contraction(std::string_view s, size_t pos) {
  if (pos + 1 >= s.size()) return 0;
  const char a = s[pos + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= s.size()) return 0;
  const char b = s[pos + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace

std::string_view Gpt2PreTokenizer::next() {
  const std::string_view s = text_;
  const size_t start = pos_;
  if (start >= s.size()) return {};
  size_t end;
  if (s[start] == '\'' && contraction(s, start) != 0) {
    end = start + contraction(s, start);
  } else {
    const Char first = char_at(s, start);
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020, then a run of one class.
    // The three classes are disjoint, so the class of the first non-space character decides.
    size_t body = start;
    CharClass cls = first.cls;
    if (s[start] == ' ' && start + 1 < s.size()) {
      const Char second = char_at(s, start + 1);
      if (second.cls != CharClass::Space) {
        body = start + 1;
        cls = second.cls;
      }
    }
    if (cls != CharClass::Space) {
      end = run_end(s, body, cls);
    } else {
      // "\s+(?!\S)" then "\s+": the whole run if it reaches the end of the text; otherwise the
      // run minus its last character, unless that would leave nothing.
      end = run_end(s, start, CharClass::Space);
      if (end < s.size()) {
        size_t last = end - 1;  // start of the run's last character (back up over UTF-8 tail)
        while ((static_cast<unsigned char>(s[last]) & 0xC0) == 0x80) --last;
        if (last > start) end = last;
      }
    }
  }
  pos_ = end;
  return s.substr(start, end - start);
}

std::vector<std::string> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string> out;
  Gpt2PreTokenizer pre(text);
  for (std::string_view p = pre.next(); !p.empty(); p = pre.next()) out.emplace_back(p);
  return out;
}

}  // namespace hone
