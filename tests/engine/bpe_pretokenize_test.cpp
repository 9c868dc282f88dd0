// The pieces of the hand-written GPT-2 pattern, the Unicode classes behind it, and the two BPE
// merge algorithms (scan and heap) against a direct transcription of GPT2Tokenizer.bpe().
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "engine/data/bpe_byte_unicode.h"
#include "engine/data/bpe_merge.h"
#include "engine/data/bpe_pretokenize.h"
#include "engine/data/unicode_class.h"

namespace hone {
namespace {

using Pieces = std::vector<std::string>;

TEST(BpePreTokenize, SplitsLikeTheRegex) {
  const std::pair<std::string, Pieces> cases[] = {
      {"", {}},
      {"Hello world", {"Hello", " world"}},
      {"a  b", {"a", " ", " b"}},               // run gives its last space to the word
      {"a   b", {"a", "  ", " b"}},
      {"a\t\tb", {"a", "\t", "\t", "b"}},       // a lone \t before a non-space is its own piece
      {"Hello\n\nWorld", {"Hello", "\n", "\n", "World"}},
      {"end  ", {"end", "  "}},                 // at the end the run keeps everything
      {"x \n y", {"x", " \n", " y"}},
      {"it's", {"it", "'s"}},
      {"IT'S", {"IT", "'", "S"}},               // contractions are case-sensitive
      {"we'll", {"we", "'ll"}},
      {"WE'LL", {"WE", "'", "LL"}},
      {"''s", {"''", "s"}},                     // punctuation run swallows the apostrophe
      {" 's", {" '", "s"}},
      {"'sss", {"'s", "ss"}},
      {"1,000", {"1", ",", "000"}},
      {" 42!", {" 42", "!"}},
      {"a1", {"a", "1"}},
      {"?!?! ok", {"?!?!", " ok"}},
      {"<|endoftext|>", {"<|", "endoftext", "|>"}},
      {"a\xC2\xA0" "b", {"a", "\xC2\xA0", "b"}},  // U+00A0 is \s but not the optional " "
      {"caf\xC3\xA9", {"caf\xC3\xA9"}},         // é is a letter
      {"cafe\xCC\x81", {"cafe", "\xCC\x81"}},   // a combining mark is not \p{L}
      {"\xC2\xBD" "x", {"\xC2\xBD", "x"}},      // ½ is \p{N}
      {" \xF0\x9F\x98\x80!", {" \xF0\x9F\x98\x80!"}},  // emoji and '!' are one "other" run
      {"\x1C" " x", {"\x1C", " x"}},            // U+001C is not \s for regex/Oniguruma
  };
  for (const auto& [text, want] : cases) EXPECT_EQ(gpt2_pretokenize(text), want) << text;
}

TEST(BpeUnicodeClass, Samples) {
  EXPECT_EQ(char_class('a'), CharClass::Letter);
  EXPECT_EQ(char_class('7'), CharClass::Number);
  EXPECT_EQ(char_class(' '), CharClass::Space);
  EXPECT_EQ(char_class('\''), CharClass::Other);
  EXPECT_EQ(char_class(0x1C), CharClass::Other);
  EXPECT_EQ(char_class(0x85), CharClass::Space);
  EXPECT_EQ(char_class(0xA0), CharClass::Space);
  EXPECT_EQ(char_class(0xAA), CharClass::Letter);   // ª (Lo)
  EXPECT_EQ(char_class(0xB2), CharClass::Number);   // ² (No)
  EXPECT_EQ(char_class(0x301), CharClass::Other);   // combining acute (Mn)
  EXPECT_EQ(char_class(0x3000), CharClass::Space);
  EXPECT_EQ(char_class(0x200B), CharClass::Other);  // zero width space is not White_Space
  EXPECT_EQ(char_class(0x4E2D), CharClass::Letter);
  EXPECT_EQ(char_class(0x0663), CharClass::Number);
  EXPECT_EQ(char_class(0x1F600), CharClass::Other);
  EXPECT_EQ(char_class(0x20000), CharClass::Letter);
  EXPECT_EQ(char_class(0x10FFFF), CharClass::Other);
  EXPECT_STREQ(unicode_tables_version(), "14.0.0");
}

TEST(BpeUtf8, DecodeAndValidate) {
  char32_t cp = 0;
  EXPECT_EQ(utf8_decode("\xF0\x9F\x98\x80", 0, &cp), 4);
  EXPECT_EQ(cp, 0x1F600u);
  EXPECT_EQ(utf8_decode("\xEF\xBF\xBF", 0, &cp), 3);
  EXPECT_EQ(cp, 0xFFFFu);
  EXPECT_EQ(utf8_first_invalid("plain"), std::string_view::npos);
  EXPECT_EQ(utf8_first_invalid("ab\xED\xBF\xBF"), 2u);  // surrogate
  for (char32_t c : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFDu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    utf8_append(s, c);
    ASSERT_EQ(utf8_decode(s, 0, &cp), static_cast<int>(s.size()));
    EXPECT_EQ(cp, c);
  }
}

TEST(BpeByteUnicode, MatchesGpt2Alphabet) {
  EXPECT_EQ(bpe_byte_to_unicode(' '), 0x120u);   // Ġ
  EXPECT_EQ(bpe_byte_to_unicode('\n'), 0x10Au);  // Ċ
  EXPECT_EQ(bpe_byte_to_unicode('A'), static_cast<char32_t>('A'));
  EXPECT_EQ(bpe_byte_to_unicode(0xAD), 0x143u);  // soft hyphen is not "printable"
  EXPECT_EQ(bpe_byte_to_unicode(0xFF), 0xFFu);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(bpe_unicode_to_byte(bpe_byte_to_unicode(b)), b);
  EXPECT_EQ(bpe_unicode_to_byte(0x20), -1);  // ' ' itself is not in the alphabet
  EXPECT_EQ(bpe_bytes_to_symbols(" the"), "\xC4\xA0the");
}

// GPT2Tokenizer.bpe() transcribed literally, on strings, as the oracle.
std::vector<std::string> reference_bpe(std::vector<std::string> word,
                                       const std::map<std::pair<std::string, std::string>, int>& ranks) {
  while (word.size() >= 2) {
    int best = INT32_MAX;
    std::pair<std::string, std::string> bigram;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && it->second < best) {
        best = it->second;
        bigram = it->first;
      }
    }
    if (best == INT32_MAX) break;
    std::vector<std::string> next;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
        next.push_back(word[i] + word[i + 1]);
        i += 2;
      } else {
        next.push_back(word[i++]);
      }
    }
    word = std::move(next);
  }
  return word;
}

// Random merge tables over a 4-letter alphabet, including "out of order" ones (a merge using a
// symbol made by a later merge), which real files never have but the algorithms must survive.
TEST(BpeMerge, ScanAndHeapMatchReference) {
  std::mt19937 rng(7);
  for (int table = 0; table < 40; ++table) {
    std::vector<std::string> symbols = {"a", "b", "c", "d"};
    std::map<std::string, int32_t> ids = {{"a", 0}, {"b", 1}, {"c", 2}, {"d", 3}};
    std::map<std::pair<std::string, std::string>, int> ranks;
    BpeMergeTable merges;
    for (int k = 0; k < 30; ++k) {
      const std::string l = symbols[std::uniform_int_distribution<size_t>(0, symbols.size() - 1)(rng)];
      const std::string r = symbols[std::uniform_int_distribution<size_t>(0, symbols.size() - 1)(rng)];
      const std::string m = l + r;
      if (ranks.count({l, r}) || m.size() > 8) continue;
      if (!ids.count(m)) {
        ids[m] = static_cast<int32_t>(ids.size());
        symbols.push_back(m);
      }
      ranks[{l, r}] = merges.size();
      ASSERT_TRUE(merges.add(ids[l], ids[r], ids[m]));
    }
    for (int w = 0; w < 200; ++w) {
      const int n = std::uniform_int_distribution<int>(1, w < 150 ? 12 : 300)(rng);
      std::vector<std::string> word;
      std::vector<int32_t> sym;
      for (int i = 0; i < n; ++i) {
        const int c = std::uniform_int_distribution<int>(0, (table % 2) ? 1 : 3)(rng);
        word.push_back(std::string(1, static_cast<char>('a' + c)));
        sym.push_back(c);
      }
      std::vector<int32_t> want;
      for (const std::string& s : reference_bpe(word, ranks)) want.push_back(ids[s]);
      std::vector<int32_t> scan = sym, heap = sym;
      merges.apply_scan(scan);
      merges.apply_heap(heap);
      ASSERT_EQ(scan, want) << "table " << table << " word " << w;
      ASSERT_EQ(heap, want) << "table " << table << " word " << w;
    }
  }
}

}  // namespace
}  // namespace hone
