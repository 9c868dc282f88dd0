// The data side of fine-tuning: documents from text files, token shards on disk and the window
// loader the trainer draws batches from, including every way a prepared folder can be corrupt.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

#include <nlohmann/json.hpp>

#include "engine/data/text_sources.h"
#include "engine/data/token_shards.h"

namespace hone::data {
namespace {
namespace fs = std::filesystem;
using Docs = std::vector<std::vector<int32_t>>;

class TokenShards : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hone_token_shards_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string path(const std::string& name) const { return (root_ / name).string(); }

  static void write_file(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  static std::string read_file(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path root_;
};

// The reference stream: each document followed by eot.
std::vector<int64_t> stream_of(const Docs& docs, size_t from, size_t to, int32_t eot) {
  std::vector<int64_t> out;
  for (size_t d = from; d < to; ++d) {
    out.insert(out.end(), docs[d].begin(), docs[d].end());
    out.push_back(eot);
  }
  return out;
}

// Every id of a split, read back through the loader (one sequential window covering all of it).
std::vector<int64_t> read_split(const std::string& dir, const std::string& split) {
  const int64_t n = TokenWindowLoader(dir, split, 1, 0).num_tokens();
  TokenWindowLoader loader(dir, split, n - 1, 0);
  Tensor x, y;
  EXPECT_TRUE(loader.next_sequential_batch(1, x, y));
  std::vector<int64_t> ids = x.to_vector<int64_t>();
  ids.push_back(y.to_vector<int64_t>().back());
  return ids;
}

Docs counting_docs(int n_docs, int len, int vocab) {
  Docs docs(static_cast<size_t>(n_docs));
  int next = 1;
  for (auto& d : docs)
    for (int i = 0; i < len; ++i) d.push_back(next++ % (vocab - 1) + 1);  // ids 1.., eot is 0
  return docs;
}

// True when `window` occurs as consecutive ids of `stream`.
bool is_substring(const std::vector<int64_t>& window, const std::vector<int64_t>& stream) {
  return std::search(stream.begin(), stream.end(), window.begin(), window.end()) != stream.end();
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an error mentioning " << needles.front();
  } catch (const std::exception& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// ---- writing and reading back ------------------------------------------------------------------

TEST_F(TokenShards, RoundTripUint16) {
  const Docs docs = {{1, 2, 3}, {4, 5}, {6, 7, 8, 9}};
  const nlohmann::json extra = {{"source", "unit"}, {"tokenizer", "gpt2"}};
  const auto stats = write_token_shards(root_.string(), docs, 100, 0, {.val_fraction = 0}, extra);
  EXPECT_EQ(stats.documents, 3);
  EXPECT_EQ(stats.dtype, "uint16");
  EXPECT_EQ(stats.train_tokens, 12);
  EXPECT_EQ(stats.val_tokens, 0);
  EXPECT_EQ(fs::file_size(path("train_000.bin")), 64u + 12 * 2);
  EXPECT_EQ(read_file(path("train_000.bin")).substr(0, 8), "HONETOK1");
  // Documents are separated by eot, with one after the last as well.
  EXPECT_EQ(read_split(root_.string(), "train"), (std::vector<int64_t>{1, 2, 3, 0, 4, 5, 0, 6, 7, 8, 9, 0}));

  const auto meta = nlohmann::json::parse(read_file(path("meta.json")));
  EXPECT_EQ(meta["dtype"], "uint16");
  EXPECT_EQ(meta["vocab_size"], 100);
  EXPECT_EQ(meta["eot_id"], 0);
  EXPECT_EQ(meta["train_tokens"], 12);
  EXPECT_EQ(meta["shards"]["train"], nlohmann::json::array({"train_000.bin"}));
  EXPECT_EQ(meta["shards"]["val"], nlohmann::json::array());
  EXPECT_EQ(meta["source"], "unit");
  EXPECT_EQ(meta["tokenizer"], "gpt2");
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(root_)) EXPECT_EQ(e.path().extension() != ".tmp", true);
}

TEST_F(TokenShards, RoundTripUint32) {
  const Docs docs = {{69999, 65536, 1}, {2, 70000 - 2}};
  const auto stats = write_token_shards(root_.string(), docs, 70000, 50000, {.val_fraction = 0.5});
  EXPECT_EQ(stats.dtype, "uint32");
  EXPECT_EQ(fs::file_size(path("train_000.bin")), 64u + 4 * 4);
  EXPECT_EQ(read_split(root_.string(), "train"), (std::vector<int64_t>{69999, 65536, 1, 50000}));
  EXPECT_EQ(read_split(root_.string(), "val"), (std::vector<int64_t>{2, 69998, 50000}));
  EXPECT_EQ(TokenWindowLoader(root_.string(), "val", 2, 0).vocab_size(), 70000);
}

TEST_F(TokenShards, VocabOf65536StillFitsUint16) {
  const auto stats = write_token_shards(root_.string(), {{65535, 7}}, 65536, 0, {.val_fraction = 0});
  EXPECT_EQ(stats.dtype, "uint16");
  EXPECT_EQ(read_split(root_.string(), "train"), (std::vector<int64_t>{65535, 7, 0}));
}

TEST_F(TokenShards, ShardCapSplitsFilesAndWindowsSpanThem) {
  const Docs docs = counting_docs(4, 6, 50);  // 28 ids
  write_token_shards(root_.string(), docs, 50, 0, {.val_fraction = 0, .shard_tokens = 5});
  for (const char* name : {"train_000.bin", "train_004.bin", "train_005.bin"}) EXPECT_TRUE(fs::exists(path(name)));
  EXPECT_FALSE(fs::exists(path("train_006.bin")));
  EXPECT_EQ(fs::file_size(path("train_005.bin")), 64u + 3 * 2);
  const auto ref = stream_of(docs, 0, 4, 0);
  EXPECT_EQ(read_split(root_.string(), "train"), ref);

  TokenWindowLoader loader(root_.string(), "train", 7, 3);
  for (int n = 0; n < 20; ++n) {
    Tensor x, y;
    loader.next_batch(4, x, y);
    const auto xv = x.to_vector<int64_t>(), yv = y.to_vector<int64_t>();
    for (int b = 0; b < 4; ++b) {
      std::vector<int64_t> window(xv.begin() + b * 7, xv.begin() + b * 7 + 7);
      window.push_back(yv[size_t(b * 7 + 6)]);
      EXPECT_TRUE(is_substring(window, ref));
    }
  }
}

TEST_F(TokenShards, SplitTakesTheLastDocuments) {
  const Docs docs = counting_docs(10, 3, 1000);
  const auto stats = write_token_shards(root_.string(), docs, 1000, 0, {.val_fraction = 0.2});
  EXPECT_EQ(read_split(root_.string(), "train"), stream_of(docs, 0, 8, 0));
  EXPECT_EQ(read_split(root_.string(), "val"), stream_of(docs, 8, 10, 0));
  EXPECT_EQ(stats.train_tokens, 32);
  EXPECT_EQ(stats.val_tokens, 8);
  const auto meta = nlohmann::json::parse(read_file(path("meta.json")));
  EXPECT_EQ(meta["split_by"], "documents");
  EXPECT_EQ(meta["val_documents"], 2);

  // A small fraction still holds out one document, and a large one leaves train one.
  write_token_shards(root_.string(), counting_docs(3, 3, 1000), 1000, 0, {.val_fraction = 0.01});
  EXPECT_EQ(nlohmann::json::parse(read_file(path("meta.json")))["val_documents"], 1);
  write_token_shards(root_.string(), counting_docs(3, 3, 1000), 1000, 0, {.val_fraction = 0.99});
  EXPECT_EQ(nlohmann::json::parse(read_file(path("meta.json")))["train_documents"], 1);
}

TEST_F(TokenShards, SingleDocumentIsSplitByTokens) {
  const Docs docs = counting_docs(1, 99, 1000);  // 99 ids + eot = 100
  const auto stats = write_token_shards(root_.string(), docs, 1000, 0, {.val_fraction = 0.1});
  EXPECT_EQ(stats.train_tokens, 90);
  EXPECT_EQ(stats.val_tokens, 10);
  const auto ref = stream_of(docs, 0, 1, 0);
  EXPECT_EQ(read_split(root_.string(), "train"), std::vector<int64_t>(ref.begin(), ref.begin() + 90));
  EXPECT_EQ(read_split(root_.string(), "val"), std::vector<int64_t>(ref.begin() + 90, ref.end()));
  EXPECT_EQ(nlohmann::json::parse(read_file(path("meta.json")))["split_by"], "tokens");
}

TEST_F(TokenShards, WriterRejectsBadArguments) {
  const std::string dir = root_.string();
  EXPECT_THROW(write_token_shards(dir, {}, 10, 0, {}), std::invalid_argument);
  expect_error([&] { write_token_shards(dir, {{1, 2}, {3, 10}}, 10, 0, {}); }, {"document 1, token 1", "id 10"});
  EXPECT_THROW(write_token_shards(dir, {{-1}}, 10, 0, {}), std::invalid_argument);
  EXPECT_THROW(write_token_shards(dir, {{1}}, 10, 10, {}), std::invalid_argument);  // eot outside vocab
  EXPECT_THROW(write_token_shards(dir, {{1}}, 10, 0, {.val_fraction = 1.0}), std::invalid_argument);
  EXPECT_THROW(write_token_shards(dir, {{1}}, 10, 0, {.shard_tokens = 0}), std::invalid_argument);
  EXPECT_THROW(write_token_shards(dir, {{1}}, 10, 0, {}, {{"dtype", "x"}}), std::invalid_argument);
  EXPECT_FALSE(fs::exists(path("train_000.bin")));  // nothing written on bad input
}

// ---- windows ---------------------------------------------------------------------------------

class TokenWindows : public TokenShards {
 protected:
  void SetUp() override {
    TokenShards::SetUp();
    docs_ = counting_docs(20, 50, 5000);  // 1020 ids, all distinct except eot
    write_token_shards(root_.string(), docs_, 5000, 0, {.val_fraction = 0.1, .shard_tokens = 300});
    ref_ = stream_of(docs_, 0, 18, 0);
  }
  static std::vector<int64_t> batch(TokenWindowLoader& l, int64_t B) {
    Tensor x, y;
    l.next_batch(B, x, y);
    auto v = x.to_vector<int64_t>();
    const auto t = y.to_vector<int64_t>();
    v.insert(v.end(), t.begin(), t.end());
    return v;
  }
  Docs docs_;
  std::vector<int64_t> ref_;
};

TEST_F(TokenWindows, TargetsAreInputsShiftedByOne) {
  TokenWindowLoader loader(root_.string(), "train", 16, 7);
  EXPECT_EQ(loader.num_tokens(), int64_t(ref_.size()));
  Tensor x, y;
  loader.next_batch(8, x, y);
  EXPECT_EQ(x.dtype(), DType::I64);
  EXPECT_EQ(x.shape(), (Shape{8, 16}));
  EXPECT_EQ(y.shape(), (Shape{8, 16}));
  const auto xv = x.to_vector<int64_t>(), yv = y.to_vector<int64_t>();
  for (int b = 0; b < 8; ++b) {
    for (int t = 0; t + 1 < 16; ++t) EXPECT_EQ(yv[size_t(b * 16 + t)], xv[size_t(b * 16 + t + 1)]);
    std::vector<int64_t> window(xv.begin() + b * 16, xv.begin() + b * 16 + 16);
    window.push_back(yv[size_t(b * 16 + 15)]);
    EXPECT_TRUE(is_substring(window, ref_));
  }
}

TEST_F(TokenWindows, SameSeedSameBatchesOtherSeedOthers) {
  TokenWindowLoader a(root_.string(), "train", 16, 42), b(root_.string(), "train", 16, 42),
      c(root_.string(), "train", 16, 43);
  for (int n = 0; n < 5; ++n) {
    const auto ba = batch(a, 4);
    EXPECT_EQ(ba, batch(b, 4));
    EXPECT_NE(ba, batch(c, 4));
  }
  // Window i of batch n depends on (seed, n, i) only, not on the batch size.
  TokenWindowLoader d(root_.string(), "train", 16, 42), e(root_.string(), "train", 16, 42);
  Tensor x2, y2, x4, y4;
  d.next_batch(2, x2, y2);
  e.next_batch(4, x4, y4);
  EXPECT_EQ(x2.to_vector<int64_t>(), x4.narrow(0, 0, 2).contiguous().to_vector<int64_t>());
}

TEST_F(TokenWindows, RestoreContinuesTheExactStream) {
  TokenWindowLoader a(root_.string(), "train", 16, 9);
  for (int n = 0; n < 3; ++n) batch(a, 4);
  EXPECT_EQ(a.position(), 3);
  const auto next1 = batch(a, 4), next2 = batch(a, 4);
  TokenWindowLoader b(root_.string(), "train", 16, 9);
  b.restore(3);
  EXPECT_EQ(batch(b, 4), next1);
  EXPECT_EQ(batch(b, 4), next2);
  EXPECT_EQ(b.position(), 5);
  EXPECT_THROW(b.restore(-1), std::invalid_argument);
}

TEST_F(TokenWindows, SequentialBatchesCoverTheSplitOnce) {
  TokenWindowLoader loader(root_.string(), "val", 7, 0);
  const auto val = stream_of(docs_, 18, 20, 0);  // 102 ids: 101 targets -> 15 windows
  ASSERT_EQ(loader.num_tokens(), 102);
  std::vector<int64_t> inputs, targets;
  std::vector<int64_t> rows;
  Tensor x, y;
  while (loader.next_sequential_batch(4, x, y)) {
    rows.push_back(x.size(0));
    const auto xv = x.to_vector<int64_t>(), yv = y.to_vector<int64_t>();
    inputs.insert(inputs.end(), xv.begin(), xv.end());
    targets.insert(targets.end(), yv.begin(), yv.end());
  }
  EXPECT_EQ(rows, (std::vector<int64_t>{4, 4, 4, 3}));
  ASSERT_EQ(targets.size(), 105u);
  // Every id after the first is a target exactly once, in order; then padding.
  EXPECT_EQ(std::vector<int64_t>(targets.begin(), targets.begin() + 101),
            std::vector<int64_t>(val.begin() + 1, val.end()));
  for (size_t i = 101; i < 105; ++i) EXPECT_EQ(targets[i], kIgnoreTarget);
  EXPECT_EQ(std::vector<int64_t>(inputs.begin(), inputs.begin() + 102), val);
  for (size_t i = 102; i < 105; ++i) EXPECT_EQ(inputs[i], 0);  // padded with eot
  EXPECT_FALSE(loader.next_sequential_batch(4, x, y));

  loader.reset_sequential();
  ASSERT_TRUE(loader.next_sequential_batch(4, x, y));
  EXPECT_EQ(x.to_vector<int64_t>(), std::vector<int64_t>(inputs.begin(), inputs.begin() + 28));
}

// ---- corrupt folders ---------------------------------------------------------------------------

class CorruptShards : public TokenShards {
 protected:
  void SetUp() override {
    TokenShards::SetUp();
    write_token_shards(root_.string(), counting_docs(4, 9, 40), 40, 0, {.val_fraction = 0.25});
    // train: 3 documents of 9 ids + eot = 30 ids
  }
  void load(int64_t seq_len = 4) { TokenWindowLoader(root_.string(), "train", seq_len, 0); }
  nlohmann::json meta() const { return nlohmann::json::parse(read_file(path("meta.json"))); }
  void set_meta(const nlohmann::json& m) const { write_file(path("meta.json"), m.dump()); }
  void patch_shard(size_t offset, const void* bytes, size_t n) const {
    std::string s = read_file(path("train_000.bin"));
    std::memcpy(s.data() + offset, bytes, n);
    write_file(path("train_000.bin"), s);
  }
};

TEST_F(CorruptShards, IntactFolderLoads) {
  load();
  EXPECT_EQ(TokenWindowLoader(root_.string(), "train", 4, 0).num_tokens(), 30);
}

TEST_F(CorruptShards, MissingMeta) {
  fs::remove(path("meta.json"));
  expect_error([&] { load(); }, {"meta.json", "missing"});
}

TEST_F(CorruptShards, InvalidMetaJson) {
  write_file(path("meta.json"), "{\"dtype\": ");
  expect_error([&] { load(); }, {"meta.json", "JSON"});
}

TEST_F(CorruptShards, MetaMissingOrBadFields) {
  auto m = meta();
  m.erase("vocab_size");
  set_meta(m);
  expect_error([&] { load(); }, {"meta.json", "vocab_size"});
  m = meta();
  m["vocab_size"] = 40;
  m["dtype"] = "int8";
  set_meta(m);
  expect_error([&] { load(); }, {"meta.json", "dtype"});
  m["dtype"] = "uint16";
  m["shards"]["train"] = {"../elsewhere.bin"};
  set_meta(m);
  expect_error([&] { load(); }, {"meta.json", "file names"});
}

TEST_F(CorruptShards, MissingShardFile) {
  fs::remove(path("train_000.bin"));
  expect_error([&] { load(); }, {"train_000.bin", "cannot open"});
}

TEST_F(CorruptShards, BadMagic) {
  patch_shard(0, "HONETOKX", 8);
  expect_error([&] { load(); }, {"train_000.bin", "magic"});
}

TEST_F(CorruptShards, TruncatedShard) {
  fs::resize_file(path("train_000.bin"), 64 + 30 * 2 - 1);
  expect_error([&] { load(); }, {"train_000.bin", "30 ids", "truncated"});
  fs::resize_file(path("train_000.bin"), 10);
  expect_error([&] { load(); }, {"train_000.bin", "64-byte header"});
}

TEST_F(CorruptShards, CountDisagreesWithFileSize) {
  const int64_t count = 31;
  patch_shard(16, &count, 8);
  expect_error([&] { load(); }, {"train_000.bin", "31 ids", "124 bytes"});
}

TEST_F(CorruptShards, TokenCountDisagreesWithMeta) {
  auto m = meta();
  m["train_tokens"] = 29;
  set_meta(m);
  expect_error([&] { load(); }, {"meta.json", "train_tokens", "30"});
}

TEST_F(CorruptShards, IdNotBelowVocab) {
  const uint16_t id = 40;
  patch_shard(64 + 2 * 5, &id, 2);
  expect_error([&] { load(); }, {"train_000.bin", "id 40", "position 5", "vocab_size 40"});
}

TEST_F(CorruptShards, SplitShorterThanAWindow) {
  expect_error([&] { load(30); }, {root_.string(), "30 tokens", "at least 31"});
  load(29);  // exactly T + 1 ids is enough
}

// ---- text sources --------------------------------------------------------------------------------

TEST_F(TokenShards, ReadsATextFileAsOneDocument) {
  write_file(path("a.txt"), "line one\nline two\n\nh\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E\n");
  const auto docs = read_documents(path("a.txt"));
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], "line one\nline two\n\nh\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E\n");
  write_file(path("bom.txt"), "\xEF\xBB\xBFhi");
  EXPECT_EQ(read_documents(path("bom.txt")), std::vector<std::string>{"hi"});
}

TEST_F(TokenShards, ReadsAFolderOfTextFilesSortedByName) {
  fs::create_directory(path("corpus"));
  write_file(path("corpus/b.txt"), "second");
  write_file(path("corpus/a.txt"), "first");
  write_file(path("corpus/notes.md"), "ignored");
  EXPECT_EQ(read_documents(path("corpus")), (std::vector<std::string>{"first", "second"}));
  fs::create_directory(path("empty"));
  write_file(path("empty/x.md"), "no txt here");
  expect_error([&] { read_documents(path("empty")); }, {path("empty"), "no *.txt"});
}

TEST_F(TokenShards, ReadsJsonLines) {
  write_file(path("d.jsonl"), "{\"text\": \"one\"}\n\n  \n{\"text\": \"two\\nlines\", \"id\": 2}\r\n{\"body\": \"x\", \"text\": \"\"}");
  EXPECT_EQ(read_documents(path("d.jsonl")), (std::vector<std::string>{"one", "two\nlines", ""}));
  write_file(path("e.jsonl"), "{\"body\": \"custom\"}\n");
  EXPECT_EQ(read_documents(path("e.jsonl"), "body"), std::vector<std::string>{"custom"});
}

TEST_F(TokenShards, BadJsonLinesNameTheLine) {
  write_file(path("bad.jsonl"), "{\"text\": \"ok\"}\n\n{\"text\": oops}\n");
  expect_error([&] { read_documents(path("bad.jsonl")); }, {path("bad.jsonl"), "line 3", "not valid JSON"});
  write_file(path("missing.jsonl"), "{\"text\": \"ok\"}\n{\"content\": \"x\"}\n");
  expect_error([&] { read_documents(path("missing.jsonl")); }, {path("missing.jsonl"), "line 2", "\"text\""});
  write_file(path("number.jsonl"), "{\"text\": 5}\n");
  expect_error([&] { read_documents(path("number.jsonl")); }, {"line 1", "expected a string"});
  write_file(path("array.jsonl"), "[\"text\"]\n");
  expect_error([&] { read_documents(path("array.jsonl")); }, {"line 1", "object"});
}

TEST_F(TokenShards, InvalidUtf8NamesTheOffset) {
  write_file(path("bad.txt"), "abc\xFF" "def");
  expect_error([&] { read_documents(path("bad.txt")); }, {path("bad.txt"), "UTF-8", "byte offset 3"});
  write_file(path("bad.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \"\xC3(\"}\n");
  expect_error([&] { read_documents(path("bad.jsonl")); }, {path("bad.jsonl"), "byte offset 25"});
  fs::create_directory(path("dir"));
  write_file(path("dir/a.txt"), "fine");
  write_file(path("dir/b.txt"), "x\xE2\x82");  // truncated sequence at the end
  expect_error([&] { read_documents(path("dir")); }, {path("dir/b.txt"), "byte offset 1"});
}

TEST(Utf8, RejectsEveryIllFormedKind) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("a\x80"), 1u);              // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xC0\x80"), 1u);          // overlong NUL
  EXPECT_EQ(find_invalid_utf8("ab\xE0\x80\x80"), 2u);     // overlong 3-byte
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);       // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);   // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xF0\x9F\x98"), 2u);     // truncated
}

TEST_F(TokenShards, MissingPathIsAClearError) {
  expect_error([&] { read_documents(path("nope.txt")); }, {path("nope.txt"), "no such file"});
}

}  // namespace
}  // namespace hone::data
