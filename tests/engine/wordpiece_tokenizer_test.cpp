// WordPieceTokenizer against Hugging Face's BertTokenizer (slow, transformers 4.40.2): id parity
// on the fixture cases (tests/fixtures/wordpiece/cases.json, written by make_fixtures.py) --
// hard texts, pairs with 'longest_first' truncation, SST-2 sentences, a synthetic cased vocab --
// plus padding, decoding, tokenizer_config.json, malformed vocab files and invalid UTF-8.
#include "engine/data/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "engine/data/bpe_json.h"
#include "engine/data/wordpiece_unicode.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

std::string data_dir() {
  if (const char* env = std::getenv("HONE_DATA"); env && *env) return env;
  return std::string(HONE_SOURCE_DIR) + "/../shared/data";
}
std::string bert_vocab() { return data_dir() + "/tokenizers/bert-base-uncased/vocab.txt"; }
std::string fixture_dir() { return std::string(HONE_SOURCE_DIR) + "/tests/fixtures/wordpiece"; }

#define SKIP_WITHOUT_BERT_VOCAB()                                                           \
  do {                                                                                      \
    if (!fs::exists(bert_vocab()))                                                          \
      GTEST_SKIP() << "BERT vocab not found at " << bert_vocab()                            \
                   << " (set HONE_DATA to the folder holding tokenizers/bert-base-uncased)"; \
  } while (0)

// Loading takes a few ms; share one tokenizer across the tests.
const WordPieceTokenizer& bert() {
  static const WordPieceTokenizer tok = WordPieceTokenizer::from_vocab(bert_vocab());
  return tok;
}

const json::Value& fixtures() {
  static const json::Value doc = json::parse_file(fixture_dir() + "/cases.json");
  return doc;
}

// The member of a JSON object with this key, or nullptr.
const json::Value* find(const json::Value& obj, const std::string& key) {
  for (const auto& [k, v] : obj.object)
    if (k == key) return &v;
  return nullptr;
}
const json::Value& member(const json::Value& obj, const std::string& key) {
  if (const json::Value* v = find(obj, key)) return *v;
  ADD_FAILURE() << "fixture has no \"" << key << "\" (line " << obj.line << ")";
  static const json::Value null_value;
  return null_value;
}
std::vector<int32_t> int_array(const json::Value& v) {
  std::vector<int32_t> out;
  for (const json::Value& x : v.array) out.push_back(static_cast<int32_t>(x.integer));
  return out;
}
std::vector<std::string> string_array(const json::Value& v) {
  std::vector<std::string> out;
  for (const json::Value& x : v.array) out.push_back(x.string);
  return out;
}

std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A fresh empty directory, removed by the destructor.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() /
           ("hone_wp_" + tag + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The message of the exception fn throws (fails the test if it throws none of type E).
template <class E, class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

constexpr const char* kMiniVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\n##s\n,\n";

TEST(WordPieceTokenizer, SpecialIdsOfBertBaseUncased) {
  SKIP_WITHOUT_BERT_VOCAB();
  const json::Value& ids = member(fixtures(), "special_ids");
  EXPECT_EQ(bert().cls_id(), member(ids, "cls").integer);
  EXPECT_EQ(bert().sep_id(), member(ids, "sep").integer);
  EXPECT_EQ(bert().pad_id(), member(ids, "pad").integer);
  EXPECT_EQ(bert().unk_id(), member(ids, "unk").integer);
  EXPECT_EQ(bert().mask_id(), member(ids, "mask").integer);
  EXPECT_EQ(bert().vocab_size(), 30522);
  EXPECT_EQ(bert().token(bert().id("##ing")), "##ing");
  EXPECT_EQ(bert().id("not-a-token"), -1);
  EXPECT_THROW(bert().token(30522), std::out_of_range);
  // The fixtures were made with the Unicode version the tables come from.
  EXPECT_EQ(member(fixtures(), "unicode").string, wp_unicode_version());
}

TEST(WordPieceTokenizer, MatchesHuggingFaceOnHardTexts) {
  SKIP_WITHOUT_BERT_VOCAB();
  const json::Value& cases = member(fixtures(), "single");
  ASSERT_GT(cases.array.size(), 150u);
  int failures = 0;
  for (const json::Value& c : cases.array) {
    const std::string& text = member(c, "text").string;
    const std::vector<int32_t> want = int_array(member(c, "ids"));
    const Encoding got = bert().encode(text);
    const bool ok = got.ids == want &&
                    bert().tokenize(text) == string_array(member(c, "tokens")) &&
                    bert().decode(got.ids) == member(c, "decode").string &&
                    bert().decode(got.ids, /*skip_special=*/false) == member(c, "decode_all").string;
    if (!ok && ++failures <= 10)
      ADD_FAILURE() << "differs from Hugging Face for \"" << escaped(text) << "\" (cases.json line "
                    << c.line << ")";
    EXPECT_EQ(got.token_type_ids, std::vector<int32_t>(got.ids.size(), 0));
    EXPECT_EQ(got.attention_mask, std::vector<int32_t>(got.ids.size(), 1));
  }
  EXPECT_EQ(failures, 0);
}

TEST(WordPieceTokenizer, MatchesHuggingFaceOnPairsAndTruncation) {
  SKIP_WITHOUT_BERT_VOCAB();
  const json::Value& cases = member(fixtures(), "pairs");
  ASSERT_GT(cases.array.size(), 100u);
  int failures = 0;
  for (const json::Value& c : cases.array) {
    const json::Value* b = find(c, "b");
    const Encoding got = bert().encode(member(c, "a").string, b ? b->string : "",
                                       member(c, "max_length").integer, /*has_b=*/b != nullptr);
    if ((got.ids != int_array(member(c, "ids")) ||
         got.token_type_ids != int_array(member(c, "token_type_ids"))) &&
        ++failures <= 10)
      ADD_FAILURE() << "differs from Hugging Face (cases.json line " << c.line << ")";
    EXPECT_EQ(got.attention_mask, std::vector<int32_t>(got.ids.size(), 1));
  }
  EXPECT_EQ(failures, 0);
}

TEST(WordPieceTokenizer, MatchesHuggingFaceOnSst2Sentences) {
  SKIP_WITHOUT_BERT_VOCAB();
  const json::Value& cases = member(fixtures(), "sst2");
  ASSERT_EQ(cases.array.size(), 200u);
  int failures = 0;
  for (const json::Value& c : cases.array) {
    if (bert().encode(member(c, "text").string).ids != int_array(member(c, "ids")) && ++failures <= 10)
      ADD_FAILURE() << "differs from Hugging Face for \"" << escaped(member(c, "text").string)
                    << "\" (cases.json line " << c.line << ")";
  }
  EXPECT_EQ(failures, 0);
}

TEST(WordPieceTokenizer, MatchesHuggingFaceWithCasedVocab) {
  const std::string vocab = fixture_dir() + "/cased_vocab.txt";
  WordPieceOptions keep_accents;
  keep_accents.lower_case = false;
  keep_accents.strip_accents = false;  // HF's strip_accents=None with do_lower_case=False
  WordPieceOptions strip = keep_accents;
  strip.strip_accents = true;
  const auto cased = WordPieceTokenizer::from_vocab(vocab, keep_accents);
  const auto cased_strip = WordPieceTokenizer::from_vocab(vocab, strip);
  const json::Value& cases = member(fixtures(), "cased");
  ASSERT_GT(cases.array.size(), 20u);
  for (const json::Value& c : cases.array) {
    const auto& tok = member(c, "strip_accents").boolean ? cased_strip : cased;
    const std::string& text = member(c, "text").string;
    EXPECT_EQ(tok.encode(text).ids, int_array(member(c, "ids")))
        << "\"" << escaped(text) << "\" (cases.json line " << c.line << ")";
    EXPECT_EQ(tok.tokenize(text), string_array(member(c, "tokens"))) << "cases.json line " << c.line;
  }
  // Case matters: "Hello" is a token, "hello" is not.
  EXPECT_EQ(cased.tokenize("Hello"), std::vector<std::string>{"Hello"});
  EXPECT_NE(cased.tokenize("hello"), std::vector<std::string>{"Hello"});
}

TEST(WordPieceTokenizer, GreedyLongestMatchAndLongWords) {
  TempDir dir("greedy");
  write_file(dir.file("vocab.txt"), kMiniVocab);
  WordPieceOptions o;
  o.max_input_chars_per_word = 9;
  const auto tok = WordPieceTokenizer::from_vocab(dir.file("vocab.txt"), o);
  EXPECT_EQ(tok.tokenize("UnAffable, hellos"),
            (std::vector<std::string>{"un", "##aff", "##able", ",", "hello", "##s"}));
  // A word with an unmatchable part is one [UNK], not a partial match.
  EXPECT_EQ(tok.tokenize("unaffx hello"), (std::vector<std::string>{"[UNK]", "hello"}));
  // Longer than max_input_chars_per_word (in code points, not bytes): [UNK].
  EXPECT_EQ(tok.tokenize("unaffables"), std::vector<std::string>{"[UNK]"});
  EXPECT_EQ(tok.convert({"un", "##aff", "nope", "[MASK]"}), (std::vector<int32_t>{5, 6, 1, 4}));
}

TEST(WordPieceTokenizer, PadBatchShapesAndMasks) {
  TempDir dir("pad");
  write_file(dir.file("vocab.txt"), kMiniVocab);
  const auto tok = WordPieceTokenizer::from_vocab(dir.file("vocab.txt"));
  const std::vector<Encoding> encs = {tok.encode("hello"), tok.encode("unaffable", "hellos"),
                                      tok.encode("")};
  const auto batch = WordPieceTokenizer::pad_batch(encs, tok.pad_id());
  ASSERT_EQ(batch.input_ids.shape(), (Shape{3, 8}));
  EXPECT_EQ(batch.input_ids.dtype(), DType::I64);
  EXPECT_EQ(batch.token_type_ids.shape(), (Shape{3, 8}));
  EXPECT_EQ(batch.attention_mask.dtype(), DType::I64);
  EXPECT_EQ(batch.input_ids.to_vector<int64_t>(),
            (std::vector<int64_t>{2, 8, 3, 0, 0, 0, 0, 0,  //
                                  2, 5, 6, 7, 3, 8, 9, 3,  //
                                  2, 3, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(batch.token_type_ids.to_vector<int64_t>(),
            (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 0, 0,  //
                                  0, 0, 0, 0, 0, 1, 1, 1,  //
                                  0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(batch.attention_mask.to_vector<int64_t>(),
            (std::vector<int64_t>{1, 1, 1, 0, 0, 0, 0, 0,  //
                                  1, 1, 1, 1, 1, 1, 1, 1,  //
                                  1, 1, 0, 0, 0, 0, 0, 0}));
  const auto empty = WordPieceTokenizer::pad_batch({}, 0);
  EXPECT_EQ(empty.input_ids.shape(), (Shape{0, 0}));
  Encoding broken = encs[0];
  broken.attention_mask.pop_back();
  EXPECT_THROW(WordPieceTokenizer::pad_batch({broken}, 0), std::invalid_argument);
}

TEST(WordPieceTokenizer, EncodeWithoutTruncationAndEmptySecondSequence) {
  TempDir dir("trunc");
  write_file(dir.file("vocab.txt"), kMiniVocab);
  const auto tok = WordPieceTokenizer::from_vocab(dir.file("vocab.txt"));
  std::string many;
  for (int i = 0; i < 600; ++i) many += "hello ";
  EXPECT_EQ(tok.encode(many).ids.size(), 512u);
  EXPECT_EQ(tok.encode(many, {}, 0).ids.size(), 602u);   // max_length <= 0: no truncation
  EXPECT_EQ(tok.encode(many, {}, -1).ids.size(), 602u);
  // HF's tokenizer(a, ""): a pair whose second sequence is empty.
  EXPECT_EQ(tok.encode("hello", "", 512, /*has_b=*/true).ids, (std::vector<int32_t>{2, 8, 3, 3}));
  EXPECT_EQ(tok.encode("hello", "", 512).ids, (std::vector<int32_t>{2, 8, 3}));
}

TEST(WordPieceTokenizer, DecodeJoinsPiecesAndSkipsSpecials) {
  TempDir dir("decode");
  write_file(dir.file("vocab.txt"), kMiniVocab);
  const auto tok = WordPieceTokenizer::from_vocab(dir.file("vocab.txt"));
  const std::vector<int32_t> ids = tok.encode("unaffable, hellos [MASK]").ids;
  EXPECT_EQ(tok.decode(ids), "unaffable, hellos");
  EXPECT_EQ(tok.decode(ids, false), "[CLS] unaffable, hellos [MASK] [SEP]");
  EXPECT_EQ(tok.decode({}), "");
  EXPECT_EQ(tok.decode({2, 1, 0, 4, 3}), "");  // [UNK] is special too
  EXPECT_EQ(tok.decode({6, 8}), "##aff hello");  // a leading continuation keeps its "##"
  EXPECT_THROW(tok.decode({11}), std::out_of_range);
  EXPECT_THROW(tok.decode({-1}), std::out_of_range);
}

TEST(WordPieceTokenizer, InvalidUtf8NamesTheByteOffset) {
  TempDir dir("utf8");
  write_file(dir.file("vocab.txt"), kMiniVocab);
  const auto tok = WordPieceTokenizer::from_vocab(dir.file("vocab.txt"));
  const std::pair<std::string, size_t> bad[] = {
      {"ab\xFF" "c", 2},            // never valid
      {"hello \x80", 6},            // stray continuation byte
      {"x\xC3", 1},                 // truncated sequence
      {"\xC0\xAF", 0},              // overlong '/'
      {"ok \xED\xA0\x80", 3},       // surrogate U+D800
      {"\xF4\x90\x80\x80", 0},      // above U+10FFFF
  };
  for (const auto& [text, offset] : bad) {
    const std::string msg = error_of<std::invalid_argument>([&] { tok.encode(text); });
    EXPECT_NE(msg.find("byte offset " + std::to_string(offset)), std::string::npos)
        << escaped(text) << ": " << msg;
    EXPECT_THROW(tok.tokenize(text), std::invalid_argument);
    EXPECT_THROW(tok.encode("fine", text), std::invalid_argument);
  }
}

TEST(WordPieceTokenizer, MalformedVocabFilesNameFileAndLine) {
  TempDir dir("malformed");
  const std::string path = dir.file("vocab.txt");
  auto load_error = [&](const std::string& text) {
    write_file(path, text);
    return error_of<std::runtime_error>([&] { WordPieceTokenizer::from_vocab(path); });
  };
  auto expect_has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << "\"" << msg << "\" lacks \"" << part << "\"";
  };
  std::string msg = load_error("");
  expect_has(msg, path);
  expect_has(msg, "empty");
  msg = load_error("[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n");
  expect_has(msg, path + ":3:");
  expect_has(msg, "empty line");
  msg = load_error("[PAD]\n[UNK]\n[CLS]\nfoo\n[SEP]\nfoo\n");
  expect_has(msg, path + ":6:");
  expect_has(msg, "duplicate token \"foo\" (first on line 4)");
  msg = load_error("[PAD]\n[UNK]\n[CLS]\nbad\xFFtoken\n[SEP]\n");
  expect_has(msg, path + ":4:");
  expect_has(msg, "invalid UTF-8");
  for (const char* missing : {"[UNK]", "[CLS]", "[SEP]", "[PAD]"}) {
    std::string text;
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "word"})
      if (std::string(t) != missing) text += std::string(t) + "\n";
    msg = load_error(text);
    expect_has(msg, path);
    expect_has(msg, std::string("no ") + missing);
  }
  msg = error_of<std::runtime_error>([&] { WordPieceTokenizer::from_vocab(dir.file("absent.txt")); });
  expect_has(msg, dir.file("absent.txt"));
  // [MASK] is optional.
  write_file(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
  EXPECT_EQ(WordPieceTokenizer::from_vocab(path).mask_id(), -1);
}

TEST(WordPieceTokenizer, VocabLineEndingsFollowPython) {
  // Python's text-mode readlines() ends lines at \n, \r\n and a lone \r; no final newline needed.
  TempDir dir("eol");
  write_file(dir.file("vocab.txt"), "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\r\nhello");
  const auto tok = WordPieceTokenizer::from_vocab(dir.file("vocab.txt"));
  EXPECT_EQ(tok.vocab_size(), 5);
  EXPECT_EQ(tok.encode("Hello").ids, (std::vector<int32_t>{2, 4, 3}));
}

TEST(WordPieceTokenizer, FromFolderReadsTokenizerConfig) {
  TempDir dir("config");
  write_file(dir.file("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nCaf\xC3\xA9\nCafe\ncafe\n");
  const std::string cafe = "Caf\xC3\xA9";
  // No config: BERT's defaults (lower-case, strip accents).
  auto tok = WordPieceTokenizer::from_folder(dir.path.string());
  EXPECT_TRUE(tok.options().lower_case && tok.options().strip_accents);
  EXPECT_EQ(tok.tokenize(cafe), std::vector<std::string>{"cafe"});
  // do_lower_case false, strip_accents absent (None): follows lower-case, so accents stay.
  write_file(dir.file("tokenizer_config.json"), R"({"do_lower_case": false, "model_max_length": 512})");
  tok = WordPieceTokenizer::from_folder(dir.path.string());
  EXPECT_FALSE(tok.options().lower_case || tok.options().strip_accents);
  EXPECT_EQ(tok.tokenize(cafe), std::vector<std::string>{cafe});
  write_file(dir.file("tokenizer_config.json"),
             R"({"do_lower_case": false, "strip_accents": true, "tokenize_chinese_chars": false})");
  tok = WordPieceTokenizer::from_folder(dir.path.string());
  EXPECT_TRUE(!tok.options().lower_case && tok.options().strip_accents &&
              !tok.options().tokenize_chinese_chars);
  EXPECT_EQ(tok.tokenize(cafe), std::vector<std::string>{"Cafe"});
  write_file(dir.file("tokenizer_config.json"), R"({"do_lower_case": true, "strip_accents": null})");
  EXPECT_TRUE(WordPieceTokenizer::from_folder(dir.path.string()).options().strip_accents);
  // Errors name the file.
  write_file(dir.file("tokenizer_config.json"), "{not json");
  std::string msg = error_of<std::runtime_error>([&] { WordPieceTokenizer::from_folder(dir.path.string()); });
  EXPECT_NE(msg.find(dir.file("tokenizer_config.json")), std::string::npos) << msg;
  write_file(dir.file("tokenizer_config.json"), R"({"do_lower_case": "yes"})");
  msg = error_of<std::runtime_error>([&] { WordPieceTokenizer::from_folder(dir.path.string()); });
  EXPECT_NE(msg.find("do_lower_case"), std::string::npos) << msg;
  fs::remove(dir.file("vocab.txt"));
  msg = error_of<std::runtime_error>([&] { WordPieceTokenizer::from_folder(dir.path.string()); });
  EXPECT_NE(msg.find("vocab.txt"), std::string::npos) << msg;
}

TEST(WordPieceTokenizer, ConcurrentEncodesAgree) {
  SKIP_WITHOUT_BERT_VOCAB();
  const json::Value& cases = member(fixtures(), "sst2");
  std::vector<std::vector<int32_t>> want;
  for (const json::Value& c : cases.array) want.push_back(bert().encode(member(c, "text").string).ids);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < want.size(); ++i)
        mismatches[t] += bert().encode(member(cases.array[i], "text").string).ids != want[i];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace hone
