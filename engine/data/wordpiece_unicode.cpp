#include "engine/data/wordpiece_unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace hone {
namespace wp_detail {
struct ClassRange {
  char32_t lo, hi;
  uint8_t cls;
};
struct CodePair {
  char32_t from, to;
};
struct Decomp {
  char32_t cp;
  uint16_t offset, length;  // into kWpDecompPool
};
struct CccRange {
  char32_t lo, hi;
  uint8_t ccc;
};
struct Compose {
  char32_t first, second, composite;
};
#include "engine/data/wordpiece_unicode_tables.inc"
}  // namespace wp_detail

namespace {
using namespace wp_detail;

// Hangul syllables decompose and compose arithmetically (Unicode ch. 3.12), not by table.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// The range of a sorted, disjoint range table holding cp, or nullptr.
template <class Range, size_t N>
constexpr const Range* find_range(const Range (&table)[N], char32_t cp) {
  const Range* it = std::lower_bound(std::begin(table), std::end(table), cp,
                                     [](const Range& r, char32_t c) { return r.hi < c; });
  return it != std::end(table) && it->lo <= cp ? it : nullptr;
}

// Most text is Latin-1 (and ASCII far more so); a direct table spares the binary search there.
// constexpr, so it is ready before any other translation unit's static initialisers run.
constexpr std::array<WpClass, 256> make_latin1_classes() {
  std::array<WpClass, 256> t{};
  for (char32_t cp = 0; cp < 256; ++cp) {
    const ClassRange* r = find_range(kWpClassRanges, cp);
    t[cp] = r ? static_cast<WpClass>(r->cls) : WpClass::Other;
  }
  return t;
}
constexpr std::array<WpClass, 256> kLatin1Classes = make_latin1_classes();
static_assert([] {
  for (unsigned c = 0; c < 128; ++c)
    if (kLatin1Classes[c] != wp_ascii_class(static_cast<unsigned char>(c))) return false;
  return true;
}(), "wp_ascii_class disagrees with the generated tables");

void append_decomposition(std::u32string& out, char32_t cp) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp < 0xC0) {  // nothing below U+00C0 decomposes
    out.push_back(cp);
    return;
  }
  const Decomp* it = std::lower_bound(std::begin(kWpDecomp), std::end(kWpDecomp), cp,
                                      [](const Decomp& d, char32_t c) { return d.cp < c; });
  if (it != std::end(kWpDecomp) && it->cp == cp)
    out.append(kWpDecompPool + it->offset, it->length);
  else
    out.push_back(cp);
}

// Canonical ordering: a stable sort of each run of non-starters by combining class.
void canonical_order(std::u32string& s) {
  for (size_t i = 0; i < s.size();) {
    if (wp_combining_class(s[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && wp_combining_class(s[j]) != 0) ++j;
    std::stable_sort(s.begin() + i, s.begin() + j, [](char32_t a, char32_t b) {
      return wp_combining_class(a) < wp_combining_class(b);
    });
    i = j;
  }
}

// The primary composite of a starter and the following character, or 0 if none.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const Compose* it = std::lower_bound(
      std::begin(kWpCompose), std::end(kWpCompose), std::pair(a, b),
      [](const Compose& c, const std::pair<char32_t, char32_t>& k) {
        return c.first != k.first ? c.first < k.first : c.second < k.second;
      });
  return it != std::end(kWpCompose) && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

WpClass wp_class(char32_t cp) {
  if (cp < 256) return kLatin1Classes[cp];
  const ClassRange* r = find_range(kWpClassRanges, cp);
  return r ? static_cast<WpClass>(r->cls) : WpClass::Other;
}

uint8_t wp_combining_class(char32_t cp) {
  if (cp < 0x300) return 0;  // the first combining mark is U+0300
  const CccRange* r = find_range(kWpCccRanges, cp);
  return r ? r->ccc : 0;
}

void wp_append_lower(std::u32string& out, char32_t cp) {
  if (cp < 128) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  if (cp == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: the one multi-character lowercase
    out.push_back('i');
    out.push_back(0x307);
    return;
  }
  const CodePair* it = std::lower_bound(std::begin(kWpLower), std::end(kWpLower), cp,
                                        [](const CodePair& p, char32_t c) { return p.from < c; });
  out.push_back(it != std::end(kWpLower) && it->from == cp ? it->to : cp);
}

void wp_nfd(std::u32string& s) {
  std::u32string out;
  out.reserve(s.size() + 8);
  for (char32_t cp : s) append_decomposition(out, cp);
  canonical_order(out);
  s.swap(out);
}

void wp_nfc(std::u32string& s) {
  wp_nfd(s);
  if (s.empty()) return;
  // Canonical composition (UAX #15): each character combines with the last starter unless a
  // character between them has a combining class >= its own ("blocked").
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t starter = wp_combining_class(s[0]) == 0 ? 0 : kNone;  // a leading non-starter has none
  size_t out = 1;
  int last_ccc = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const char32_t ch = s[i];
    const int ccc = wp_combining_class(ch);
    if (starter != kNone && (last_ccc < ccc || last_ccc == 0)) {
      if (const char32_t composite = compose_pair(s[starter], ch)) {
        s[starter] = composite;
        continue;
      }
    }
    if (ccc == 0) starter = out;
    last_ccc = ccc;
    s[out++] = ch;
  }
  s.resize(out);
}

const char* wp_unicode_version() { return kWpUnicodeVersion; }

}  // namespace hone
