// GPT-2's bytes_to_unicode(): the reversible byte <-> character alphabet that lets BPE tokens
// be stored as printable strings in vocab.json / merges.txt. Bytes that are printable Latin-1
// ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 bytes map, in byte order, to
// U+0100, U+0101, ... (so ' ' = 0x20 becomes 'Ġ' U+0120 and '\n' becomes 'Ċ' U+010A).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hone {

char32_t bpe_byte_to_unicode(uint8_t byte);

// The byte a character stands for, or -1 if the character is not in the 256-character alphabet.
int bpe_unicode_to_byte(char32_t cp);

// Raw bytes -> their byte-level string (UTF-8), e.g. " the" -> "Ġthe".
std::string bpe_bytes_to_symbols(std::string_view bytes);

}  // namespace hone
