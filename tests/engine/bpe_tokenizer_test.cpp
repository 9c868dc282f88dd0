// BpeTokenizer against Hugging Face's GPT-2 tokenizer: id parity on the fixture cases
// (tests/fixtures/tokenizer/gpt2_cases.json, written by make_gpt2_fixtures.py), lossless
// round trips, both file layouts, and clear errors for malformed files and invalid UTF-8.
#include "engine/data/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

#include "bpe_test_util.h"
#include "engine/data/bpe_byte_unicode.h"
#include "engine/data/bpe_json.h"
#include "engine/data/unicode_class.h"

namespace hone {
namespace {

using bpe_test::TempDir;

// Loading takes ~0.1 s; share one tokenizer across the tests.
const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok = BpeTokenizer::from_folder(bpe_test::gpt2_dir());
  return tok;
}

std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') out.push_back(static_cast<char>(c));
    else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

// The member of a JSON object with this key; fails the test if absent.
const json::Value& member(const json::Value& obj, const std::string& key) {
  for (const auto& [k, v] : obj.object)
    if (k == key) return v;
  ADD_FAILURE() << "fixture has no \"" << key << "\" (line " << obj.line << ")";
  static const json::Value null_value;
  return null_value;
}

uint64_t fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int k = 0; k < 4; ++k) h = (h ^ ((u >> (8 * k)) & 0xFF)) * 0x100000001B3ull;
  }
  return h;
}

TEST(BpeTokenizer, MatchesHuggingFaceOnFixtureCases) {
  HONE_SKIP_WITHOUT_GPT2();
  const json::Value doc = json::parse_file(bpe_test::fixture_path());
  const json::Value& cases = member(doc, "cases");
  ASSERT_GT(cases.array.size(), 200u);
  int failures = 0;
  for (const json::Value& c : cases.array) {
    const std::string& text = member(c, "text").string;
    std::vector<int32_t> want;
    for (const json::Value& id : member(c, "ids").array) want.push_back(static_cast<int32_t>(id.integer));
    const std::vector<int32_t> got = gpt2().encode(text);
    if (got != want && ++failures <= 10) {
      ADD_FAILURE() << "ids differ from Hugging Face for \"" << escaped(text) << "\" (fixture line "
                    << c.line << ")";
    }
    EXPECT_EQ(gpt2().decode(got), text) << "round trip of \"" << escaped(text) << "\"";
  }
  EXPECT_EQ(failures, 0);
}

TEST(BpeTokenizer, WholeTinyShakespeareMatchesAndRoundTrips) {
  HONE_SKIP_WITHOUT_GPT2();
  const std::string text = bpe_test::read_all(bpe_test::shakespeare_path());
  if (text.empty()) GTEST_SKIP() << "tinyshakespeare not found at " << bpe_test::shakespeare_path();
  const json::Value doc = json::parse_file(bpe_test::fixture_path());
  const json::Value& summary = member(doc, "tinyshakespeare");
  const std::vector<int32_t> ids = gpt2().encode(text);
  EXPECT_EQ(static_cast<int64_t>(text.size()), member(summary, "bytes").integer);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), member(summary, "num_tokens").integer);  // 338025
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(ids)));
  EXPECT_EQ(std::string(hex), member(summary, "ids_fnv1a64").string) << "ids differ from Hugging Face";
  EXPECT_EQ(gpt2().decode(ids), text);
}

TEST(BpeTokenizer, KnownIdsAndAccessors) {
  HONE_SKIP_WITHOUT_GPT2();
  const BpeTokenizer& tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.eot_id(), 50256);
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok.token(995), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(tok.id("\xC4\xA0world"), 995);
  EXPECT_EQ(tok.id("no such token"), -1);
  EXPECT_EQ(tok.token(50256), "<|endoftext|>");
  EXPECT_THROW(tok.token(50257), std::out_of_range);
  EXPECT_THROW(tok.token(-1), std::out_of_range);
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(BpeTokenizer, SpecialTokensOnlyWhenAllowed) {
  HONE_SKIP_WITHOUT_GPT2();
  const BpeTokenizer& tok = gpt2();
  EXPECT_EQ(tok.encode("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
  const std::vector<int32_t> plain = tok.encode("<|endoftext|>", /*allow_special=*/false);
  EXPECT_EQ(plain, (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(tok.decode(plain), "<|endoftext|>");
  EXPECT_EQ(tok.decode({50256}), "<|endoftext|>");
}

TEST(BpeTokenizer, UnknownIdInDecodeThrows) {
  HONE_SKIP_WITHOUT_GPT2();
  EXPECT_THROW(gpt2().decode({15496, 50257}), std::out_of_range);
  EXPECT_THROW(gpt2().decode({-5}), std::out_of_range);
}

TEST(BpeTokenizer, InvalidUtf8IsRejectedWithOffset) {
  HONE_SKIP_WITHOUT_GPT2();
  const std::pair<std::string, size_t> bad[] = {
      {"abc\xFF", 3},            // never valid
      {"ok \x80", 3},            // stray continuation byte
      {"x\xC0\xAF", 1},          // overlong '/'
      {"\xE0\x80\xAF", 0},       // overlong 3-byte
      {"ab\xED\xA0\x80", 2},     // UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},   // above U+10FFFF
      {"euro \xE2\x82", 5},      // truncated at end
      {"\xE2\x82 x", 0},         // truncated in the middle
  };
  for (const auto& [text, offset] : bad) {
    try {
      gpt2().encode(text);
      ADD_FAILURE() << "no error for \"" << escaped(text) << "\"";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(offset)), std::string::npos)
          << e.what();
    }
  }
}

// Random strings of valid UTF-8 drawn from every kind of code point (including unassigned and
// private-use ones and characters newer than the tables) must survive encode -> decode.
TEST(BpeTokenizer, RandomUtf8RoundTrips) {
  HONE_SKIP_WITHOUT_GPT2();
  std::mt19937 rng(20240601);
  const std::pair<char32_t, char32_t> ranges[] = {
      {0x00, 0x7F}, {0x20, 0x7E}, {0x80, 0x7FF}, {0x800, 0xD7FF}, {0xE000, 0xFFFF},
      {0x10000, 0x10FFFF}, {0x1F300, 0x1FAFF}, {0x2000, 0x206F}};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s;
    const int n = std::uniform_int_distribution<int>(0, 60)(rng);
    for (int i = 0; i < n; ++i) {
      const auto& r = ranges[std::uniform_int_distribution<int>(0, 7)(rng)];
      utf8_append(s, std::uniform_int_distribution<char32_t>(r.first, r.second)(rng));
    }
    ASSERT_EQ(gpt2().decode(gpt2().encode(s)), s) << "\"" << escaped(s) << "\"";
  }
}

// Long pre-tokens take the heap merge path; they must give the same ids when split differently.
TEST(BpeTokenizer, LongPreTokensRoundTrip) {
  HONE_SKIP_WITHOUT_GPT2();
  for (const std::string& s : {std::string(5000, 'a'), std::string(3000, '7'), std::string(2000, '!'),
                               std::string(4000, ' ') + "x", std::string(10000, '\n')}) {
    const std::vector<int32_t> ids = gpt2().encode(s);
    EXPECT_EQ(gpt2().decode(ids), s);
    EXPECT_LT(ids.size(), s.size());
  }
}

TEST(BpeTokenizer, ConcurrentEncodesAgree) {
  HONE_SKIP_WITHOUT_GPT2();
  const std::string text = bpe_test::read_all(bpe_test::shakespeare_path()).substr(0, 200000);
  const std::vector<int32_t> want = gpt2().encode(text);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { got[t] = gpt2().encode(text); });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

// ---- file layouts and malformed files ----

TEST(BpeTokenizerFiles, HuggingFaceAndOpenAiLayoutsAgree) {
  HONE_SKIP_WITHOUT_GPT2();
  namespace fs = std::filesystem;
  const fs::path src(bpe_test::gpt2_dir());
  const bool openai = fs::exists(src / "encoder.json");
  TempDir hf("hf"), oa("oa");
  fs::copy_file(src / (openai ? "encoder.json" : "vocab.json"), hf.file("vocab.json"));
  fs::copy_file(src / (openai ? "vocab.bpe" : "merges.txt"), hf.file("merges.txt"));
  fs::copy_file(src / (openai ? "encoder.json" : "vocab.json"), oa.file("encoder.json"));
  fs::copy_file(src / (openai ? "vocab.bpe" : "merges.txt"), oa.file("vocab.bpe"));
  const BpeTokenizer a = BpeTokenizer::from_folder(hf.path.string());
  const BpeTokenizer b = BpeTokenizer::from_folder(oa.path.string());
  const BpeTokenizer c = BpeTokenizer::from_files(hf.file("vocab.json"), hf.file("merges.txt"));
  EXPECT_EQ(a.vocab_size(), b.vocab_size());
  const std::string text = bpe_test::read_all(bpe_test::shakespeare_path()).substr(0, 50000) +
                           " caf\xC3\xA9 \xF0\x9F\x98\x80 <|endoftext|> 12345";
  const std::vector<int32_t> ids = a.encode(text);
  EXPECT_EQ(b.encode(text), ids);
  EXPECT_EQ(c.encode(text), ids);
  EXPECT_EQ(gpt2().encode(text), ids);
}

TEST(BpeTokenizerFiles, MissingFolderNamesIt) {
  try {
    BpeTokenizer::from_folder("/nonexistent/tokenizer/dir");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer/dir"), std::string::npos) << e.what();
  }
}

// A tiny byte-level vocab: all 256 byte symbols (ids 0..255) plus a few merged tokens.
struct TinyVocab {
  std::string vocab_json;
  TinyVocab() {
    vocab_json = "{\n";
    for (int b = 0; b < 256; ++b) {
      // Byte-level symbols as \u escapes, the way Hugging Face writes the non-ASCII ones.
      char buf[32];
      std::snprintf(buf, sizeof buf, "\"\\u%04x\": %d,\n",
                    static_cast<unsigned>(bpe_byte_to_unicode(static_cast<uint8_t>(b))), b);
      vocab_json += buf;
    }
    vocab_json += "\"he\": 256,\n\"ll\": 257,\n\"hell\": 258,\n\"<|endoftext|>\": 259\n}\n";
  }
};

std::string load_error(const std::string& vocab, const std::string& merges) {
  try {
    BpeTokenizer::from_files(vocab, merges);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(BpeTokenizerFiles, TinyVocabLoadsAndMerges) {
  TempDir d("tiny");
  bpe_test::write_all(d.file("vocab.json"), TinyVocab().vocab_json);
  bpe_test::write_all(d.file("merges.txt"), "#version: 0.2\nh e\nl l\nhe ll\n");
  const BpeTokenizer tok = BpeTokenizer::from_folder(d.path.string());
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.eot_id(), 259);
  EXPECT_EQ(tok.encode("hello"), (std::vector<int32_t>{258, 'o'}));
  EXPECT_EQ(tok.encode("hel<|endoftext|>"), (std::vector<int32_t>{256, 'l', 259}));
  EXPECT_EQ(tok.decode(tok.encode("hello hell")), "hello hell");
}

TEST(BpeTokenizerFiles, MalformedFilesGiveErrorsNamingFileAndLine) {
  TempDir d("bad");
  const std::string vocab = TinyVocab().vocab_json;
  const std::string good_vocab = d.file("vocab.json"), merges = d.file("merges.txt");
  bpe_test::write_all(good_vocab, vocab);
  bpe_test::write_all(merges, "#version: 0.2\nh e\n");
  ASSERT_EQ(load_error(good_vocab, merges), "");

  auto expect_error = [&](const std::string& err, const std::string& file, const std::string& what) {
    EXPECT_NE(err.find(file + ":"), std::string::npos) << "error does not name " << file << ": " << err;
    EXPECT_NE(err.find(what), std::string::npos) << "error lacks \"" << what << "\": " << err;
  };

  // Truncated JSON (cut in the middle of a token string).
  const std::string truncated = d.file("truncated.json");
  bpe_test::write_all(truncated, vocab.substr(0, vocab.size() / 2));
  expect_error(load_error(truncated, merges), truncated, "malformed JSON");

  // Not JSON at all / wrong shape / bad id.
  const std::string garbage = d.file("garbage.json");
  bpe_test::write_all(garbage, "{\"a\": 1,, }");
  expect_error(load_error(garbage, merges), garbage + ":1", "malformed JSON");
  const std::string array = d.file("array.json");
  bpe_test::write_all(array, "[1, 2]");
  expect_error(load_error(array, merges), array, "expected a JSON object");
  const std::string bad_id = d.file("bad_id.json");
  bpe_test::write_all(bad_id, "{\"a\": 1.5}");
  expect_error(load_error(bad_id, merges), bad_id, "not an integer");
  const std::string dup_id = d.file("dup_id.json");
  bpe_test::write_all(dup_id, vocab.substr(0, vocab.rfind('}')) + ", \"zz\": 256}");
  expect_error(load_error(dup_id, merges), dup_id, "used by both");
  const std::string no_bytes = d.file("no_bytes.json");
  bpe_test::write_all(no_bytes, "{\"a\": 0}");
  expect_error(load_error(no_bytes, merges), no_bytes, "no token for byte");

  // Merges: three fields on line 3, a symbol not in the vocab, a result not in the vocab.
  const std::string three = d.file("three.txt");
  bpe_test::write_all(three, "#version: 0.2\nh e\nl l x\n");
  expect_error(load_error(good_vocab, three), three + ":3", "expected two symbols");
  const std::string one = d.file("one.txt");
  bpe_test::write_all(one, "#version: 0.2\nhe\n");
  expect_error(load_error(good_vocab, one), one + ":2", "expected two symbols");
  const std::string unknown = d.file("unknown.txt");
  bpe_test::write_all(unknown, "#version: 0.2\nh e\nhe xyz\n");
  expect_error(load_error(good_vocab, unknown), unknown + ":3", "\"xyz\" is not in the vocab");
  const std::string no_result = d.file("no_result.txt");
  bpe_test::write_all(no_result, "#version: 0.2\na b\n");
  expect_error(load_error(good_vocab, no_result), no_result + ":2", "merge result \"ab\"");
  const std::string dup = d.file("dup.txt");
  bpe_test::write_all(dup, "#version: 0.2\nh e\nl l\nh e\n");
  expect_error(load_error(good_vocab, dup), dup + ":4", "first on line 2");

  // Missing files.
  expect_error(load_error(d.file("nope.json"), merges), d.file("nope.json"), "cannot open");
  expect_error(load_error(good_vocab, d.file("nope.txt")), d.file("nope.txt"), "cannot open");
}

TEST(BpeTokenizerFiles, TruncatedRealVocabNamesFileAndLine) {
  HONE_SKIP_WITHOUT_GPT2();
  namespace fs = std::filesystem;
  const fs::path src(bpe_test::gpt2_dir());
  const bool openai = fs::exists(src / "encoder.json");
  const std::string vocab = bpe_test::read_all((src / (openai ? "encoder.json" : "vocab.json")).string());
  TempDir d("realtrunc");
  bpe_test::write_all(d.file("vocab.json"), vocab.substr(0, vocab.size() - 100));
  fs::copy_file(src / (openai ? "vocab.bpe" : "merges.txt"), d.file("merges.txt"));
  try {
    BpeTokenizer::from_folder(d.path.string());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(d.file("vocab.json") + ":"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hone
