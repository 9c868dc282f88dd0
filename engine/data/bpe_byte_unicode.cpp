#include "engine/data/bpe_byte_unicode.h"

#include <array>

#include "engine/data/unicode_class.h"

namespace hone {
namespace {

constexpr bool printable_latin1(unsigned b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 512> to_byte{};  // every image is below U+0200
  constexpr Tables() {
    to_byte.fill(-1);
    unsigned next = 0;
    for (unsigned b = 0; b < 256; ++b) {
      to_unicode[b] = printable_latin1(b) ? b : 256 + next++;
      to_byte[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};
constexpr Tables kTables;  // constexpr: no static-initialisation order issues

}  // namespace

char32_t bpe_byte_to_unicode(uint8_t byte) { return kTables.to_unicode[byte]; }

int bpe_unicode_to_byte(char32_t cp) { return cp < 512 ? kTables.to_byte[cp] : -1; }

std::string bpe_bytes_to_symbols(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8_append(out, kTables.to_unicode[b]);
  return out;
}

}  // namespace hone
