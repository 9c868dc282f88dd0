// Labelled text for classification: CSV/TSV/JSONL reading, label mapping, every error message
// (file, line, column), the deterministic split and the epoch sampler.
#include "engine/data/labeled_text.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

namespace hone::data {
namespace {
namespace fs = std::filesystem;

class LabeledText : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hone_labeled_text_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `bytes` to a file `name` in the test's folder and returns its path.
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  // Reading `bytes` as `name` must fail with a runtime_error whose message holds every piece.
  void expect_error(const std::string& name, const std::string& bytes, const LabeledTextOptions& o,
                    std::initializer_list<std::string> pieces) {
    const std::string path = write(name, bytes);
    try {
      read_labeled_text(path, o);
      ADD_FAILURE() << "no error for " << name;
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path + ": "), std::string::npos) << msg;
      for (const std::string& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << msg;
    }
  }

  std::string dir_;
};

std::vector<int64_t> labels_of(const LabeledDataset& d) {
  std::vector<int64_t> out;
  for (const auto& e : d.examples) out.push_back(e.label);
  return out;
}

// ---- formats
// ----------------------------------------------------------------------------------------

TEST_F(LabeledText, CsvQuotesEmbeddedNewlinesAndCrlf) {
  const std::string path = write("a.csv",
                                 "\xEF\xBB\xBFid,text,label\r\n"
                                 "1,\"Hello, world\",pos\r\n"
                                 "2,\"She said \"\"hi\"\"\nand left\",neg\r\n"
                                 "\r\n"  // blank line: skipped
                                 "3,plain \"quote\" inside,pos\r\n"
                                 "4,\"\",neg");  // empty quoted text, no final line break
  const LabeledDataset d = read_labeled_text(path, {});
  ASSERT_EQ(d.examples.size(), 4u);
  EXPECT_EQ(d.examples[0].text, "Hello, world");
  EXPECT_EQ(d.examples[1].text, "She said \"hi\"\nand left");
  EXPECT_EQ(d.examples[2].text, "plain \"quote\" inside");
  EXPECT_EQ(d.examples[3].text, "");
  EXPECT_EQ(d.examples[0].text_pair, "");
  // String labels: ids in sorted order of the names.
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{1, 0, 1, 0}));
}

TEST_F(LabeledText, CsvLineNumbersCountEmbeddedNewlines) {
  // The record with the bad label starts on line 5: line 3's record spans lines 3-4.
  LabeledTextOptions o;
  o.label_names = {"neg", "pos"};
  expect_error("b.csv", "text,label\nok,pos\n\"two\nlines\",neg\nbad,maybe\n", o,
               {"line 5", "column 'label'", "unknown label 'maybe'", "neg, pos"});
}

TEST_F(LabeledText, TsvGlueStyle) {
  // GLUE's TSV has no quoting: quotes are characters and the trailing space is kept.
  const std::string path = write("train.tsv",
                                 "sentence\tlabel\n"
                                 "it 's a \"great\" film \t1\n"
                                 "dull , dull , dull \t0\r\n"
                                 "\n");
  const LabeledDataset d = read_labeled_text(path, {.text_column = "sentence"});
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].text, "it 's a \"great\" film ");
  EXPECT_EQ(d.examples[1].text, "dull , dull , dull ");
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{1, 0}));
}

TEST_F(LabeledText, TsvSentencePairsWithStringLabels) {
  // MNLI-like: two texts, three string labels (sorted: contradiction, entailment, neutral).
  const std::string path = write("mnli.tsv",
                                 "index\tsentence1\tsentence2\tgold_label\n"
                                 "0\tA man sleeps.\tA person rests.\tentailment\n"
                                 "1\tA man sleeps.\tA man runs.\tcontradiction\n"
                                 "2\tA man sleeps.\tHe is tall.\tneutral\n");
  const LabeledDataset d = read_labeled_text(
      path,
      {.text_column = "sentence1", .text_pair_column = "sentence2", .label_column = "gold_label"});
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[1].text, "A man sleeps.");
  EXPECT_EQ(d.examples[1].text_pair, "A man runs.");
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"contradiction", "entailment", "neutral"}));
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{1, 0, 2}));
}

TEST_F(LabeledText, Jsonl) {
  const std::string path = write("d.jsonl",
                                 "{\"text\": \"good\", \"label\": 2}\n"
                                 "\n"
                                 "{\"text\": \"bad\\r\", \"label\": 0, \"extra\": [1]}\r\n"
                                 "{\"text\": \"caf\\u00e9\", \"label\": \"1\"}\n");
  const LabeledDataset d = read_labeled_text(path, {});
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[1].text, "bad");  // trailing '\r' stripped
  EXPECT_EQ(d.examples[2].text, "caf\xC3\xA9");
  // Integer labels: names 0..max, even for a class with no example.
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{2, 0, 1}));
  // .json and an explicit format read the same.
  EXPECT_EQ(
      read_labeled_text(write("d.json", "{\"text\":\"x\",\"label\":\"a\"}\n"), {}).label_names,
      std::vector<std::string>{"a"});
  EXPECT_EQ(
      read_labeled_text(write("d.txt", "{\"text\":\"x\",\"label\":\"a\"}\n"), {.format = "jsonl"})
          .examples.size(),
      1u);
}

TEST_F(LabeledText, HeaderlessIndexColumns) {
  // CoLA-style TSV without a header: source, label, original label, sentence.
  const std::string tsv = write("cola.tsv",
                                "gj04\t1\t\tOur friends won't buy this analysis.\n"
                                "gj04\t0\t*\tThey drank the pub.\n");
  LabeledTextOptions o{.text_column = "3", .label_column = "1", .has_header = false};
  const LabeledDataset d = read_labeled_text(tsv, o);
  ASSERT_EQ(d.examples.size(), 2u);  // the first line is data, not a header
  EXPECT_EQ(d.examples[1].text, "They drank the pub.");
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{1, 0}));

  const std::string csv = write("h.csv", "hello,pos,\"a, b\"\nbye,neg,c\n");
  const LabeledDataset c = read_labeled_text(
      csv, {.text_column = "0", .text_pair_column = "2", .label_column = "1", .has_header = false});
  EXPECT_EQ(c.examples[0].text_pair, "a, b");
  EXPECT_EQ(labels_of(c), (std::vector<int64_t>{1, 0}));
}

TEST_F(LabeledText, GivenLabelNamesFixTheMapping) {
  // The validation file lacks "neutral" and lists labels in another order: the ids must still be
  // the training file's.
  const std::string train = write("train.csv", "text,label\na,pos\nb,neutral\nc,neg\n");
  const std::string val = write("val.csv", "text,label\nd,pos\ne,neg\n");
  const LabeledDataset t = read_labeled_text(train, {});
  EXPECT_EQ(t.label_names, (std::vector<std::string>{"neg", "neutral", "pos"}));
  const LabeledDataset v = read_labeled_text(val, {.label_names = t.label_names});
  EXPECT_EQ(v.label_names, t.label_names);
  EXPECT_EQ(labels_of(v), (std::vector<int64_t>{2, 0}));
  // Integer labels can be given names; a label is matched by name first, then as an id.
  const std::string ints = write("i.csv", "text,label\nx,1\ny, 0 \nz,negative\n");
  const LabeledDataset n = read_labeled_text(ints, {.label_names = {"negative", "positive"}});
  EXPECT_EQ(labels_of(n), (std::vector<int64_t>{1, 0, 0}));
  // Listing labels as names is how to use labels that are not ids, such as -1 / 1.
  const std::string signs = write("s.csv", "text,label\nx,-1\ny,1\n");
  EXPECT_EQ(labels_of(read_labeled_text(signs, {.label_names = {"-1", "1"}})),
            (std::vector<int64_t>{0, 1}));
  EXPECT_THROW(read_labeled_text(ints, {.label_names = {"a", "a"}}), std::invalid_argument);
}

TEST_F(LabeledText, MixedLabelsAreStrings) {
  // Not all numbers: every label is a name, "10" sorting before "2" byte-wise.
  const std::string path = write("m.csv", "text,label\na,2\nb,10\nc,x\n");
  const LabeledDataset d = read_labeled_text(path, {});
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"10", "2", "x"}));
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{1, 0, 2}));
}

TEST_F(LabeledText, UnlabelledFile) {
  // GLUE's test.tsv has no label column: read it with an empty label_column.
  const std::string path = write("test.tsv", "index\tsentence\n0\tfine\n1\tgreat\n");
  const LabeledDataset d = read_labeled_text(
      path, {.text_column = "sentence", .label_column = "", .label_names = {"0", "1"}});
  EXPECT_EQ(labels_of(d), (std::vector<int64_t>{-1, -1}));
  EXPECT_EQ(d.label_names, (std::vector<std::string>{"0", "1"}));
}

// ---- errors
// -------------------------------------------------------------------------------------------

TEST_F(LabeledText, ErrorsNameFileLineAndColumn) {
  const LabeledTextOptions o;
  expect_error("missing_col.csv", "sentence,label\nx,1\n", o,
               {"line 1", "column 'text'", "no such column", "sentence, label"});
  expect_error("twice.csv", "text,text,label\nx,y,1\n", o, {"line 1", "column 'text'", "twice"});
  expect_error("fields.csv", "text,label\nx,1\ny,1,extra\n", o,
               {"line 3", "expected 2 fields", "found 3"});
  expect_error("fields.tsv", "text\tlabel\nx\n", o, {"line 2", "expected 2 fields", "found 1"});
  expect_error("negative.csv", "text,label\nx,1\ny,-2\n", o,
               {"line 3", "column 'label'", "negative label -2"});
  expect_error("fraction.csv", "text,label\nx,1\ny,1.5\n", o,
               {"line 3", "column 'label'", "1.5 is not an integer"});
  expect_error("huge.csv", "text,label\nx,123456789012\n", o, {"line 2", "too large"});
  expect_error("empty_label.csv", "text,label\nx,\n", o,
               {"line 2", "column 'label'", "empty label"});
  expect_error("utf8.csv", "text,label\nok,1\nbad \xC3\x28 byte,1\n", o,
               {"line 3", "column 'text'", "not valid UTF-8 at byte offset 4"});
  expect_error("utf8.tsv", "text\tlabel\nx\t\xFF\n", o,
               {"line 2", "column 'label'", "not valid UTF-8"});
  expect_error("open.csv", "text,label\nx,1\n\"never\nclosed,1\n", o,
               {"line 3", "field 1", "never closed"});
  expect_error("after.csv", "text,label\n\"a\"b,1\n", o, {"line 2", "field 1", "closing quote"});
  expect_error("empty.csv", "", o, {"empty file"});
  expect_error("blank.tsv", "\xEF\xBB\xBF\n\n", o, {"empty file"});
  expect_error("header_only.csv", "text,label\n", o, {"no examples"});
  expect_error("x.txt", "text,label\nx,1\n", o, {"extension '.txt'"});
  // Without a header, columns are indices.
  LabeledTextOptions h{.has_header = false};
  expect_error("noheader.csv", "x,1\n", h, {"line 1", "column 'text'", "0-based"});
  h.text_column = "0";
  h.label_column = "5";
  expect_error("noheader2.csv", "\nx,1\n", h, {"line 2", "column '5'", "2 fields"});
  // Given label names: an unknown label (or an id past them) is named.
  expect_error("unknown.csv", "text,label\nx,a\ny,2\n", {.label_names = {"a", "b"}},
               {"line 3", "column 'label'", "unknown label '2'"});
  // JSONL.
  expect_error("j1.jsonl", "{\"text\":\"a\",\"label\":1}\nnot json\n", o,
               {"line 2", "not valid JSON"});
  expect_error("j2.jsonl", "[1]\n", o, {"line 1", "expected a JSON object"});
  expect_error("j3.jsonl", "{\"text\":\"a\"}\n", o, {"line 1", "column 'label'", "no such field"});
  expect_error("j4.jsonl", "{\"text\":3,\"label\":1}\n", o,
               {"line 1", "column 'text'", "expected a string"});
  expect_error("j5.jsonl", "{\"text\":\"a\",\"label\":true}\n", o,
               {"line 1", "column 'label'", "boolean"});
  expect_error("j6.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\",\"label\":0.5}\n", o,
               {"line 2", "column 'label'", "0.5 is not an integer"});
  expect_error("j7.jsonl", "\n{\"text\":\"a\xE2\x82\",\"label\":1}\n", o,
               {"line 2", "not valid UTF-8 at byte offset 10 of the line"});
  // The file itself.
  EXPECT_THROW(read_labeled_text(dir_ + "/absent.csv", o), std::runtime_error);
  EXPECT_THROW(read_labeled_text(write("f.csv", "text,label\nx,1\n"), {.format = "xml"}),
               std::invalid_argument);
}

// ---- the real SST-2
// -----------------------------------------------------------------------------------

// The copy in shared/data (from the ALPS repository) splits GLUE's 67349 training sentences into
// train.tsv (60614) and dev.tsv (6735); its test.tsv is GLUE's labelled dev set (872).
TEST_F(LabeledText, RealSst2) {
  const char* env = std::getenv("HONE_DATA");
  const std::string data = env && *env ? env : std::string(HONE_SOURCE_DIR) + "/../shared/data";
  const std::string dir = data + "/text/sst2-glue";
  if (!fs::exists(dir + "/train.tsv")) GTEST_SKIP() << "no SST-2 at " << dir << " (set HONE_DATA)";
  const LabeledDataset train = read_labeled_text(dir + "/train.tsv", {.text_column = "sentence"});
  EXPECT_EQ(train.label_names, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(train.examples[0].text, "when are bears bears and ");
  EXPECT_EQ(train.examples[0].label, 1);
  // The other files are read with the training file's mapping, as a trainer does.
  const LabeledTextOptions o{.text_column = "sentence", .label_names = train.label_names};
  const LabeledDataset dev = read_labeled_text(dir + "/dev.tsv", o);
  const LabeledDataset test = read_labeled_text(dir + "/test.tsv", o);
  EXPECT_EQ(train.examples.size(), 60614u);
  EXPECT_EQ(dev.examples.size(), 6735u);
  EXPECT_EQ(train.examples.size() + dev.examples.size(), 67349u);  // GLUE SST-2 train
  EXPECT_EQ(test.examples.size(), 872u);                           // GLUE SST-2 dev
  int64_t positives = 0;
  for (const auto* d : {&train, &dev})
    for (const auto& e : d->examples) {
      ASSERT_TRUE(e.label == 0 || e.label == 1);
      positives += e.label;
    }
  EXPECT_EQ(positives, 37569);  // GLUE SST-2 train: 37569 positive, 29780 negative
}

// ---- split
// ----------------------------------------------------------------------------------------------

// Class c is named "c<c>"; its i-th example's text is "c<c>#<i>". (Appended piece by piece:
// GCC 12 misreports "literal" + std::to_string(...) under -Wrestrict.)
std::string class_name(size_t c) {
  std::string s = "c";
  s += std::to_string(c);
  return s;
}

LabeledDataset synthetic(const std::vector<int64_t>& counts) {
  LabeledDataset d;
  for (size_t c = 0; c < counts.size(); ++c) d.label_names.push_back(class_name(c));
  // Interleaved labels so that file order and label order differ.
  for (int64_t i = 0, added = 1; added; ++i) {
    added = 0;
    for (size_t c = 0; c < counts.size(); ++c)
      if (i < counts[c]) {
        std::string text = class_name(c);
        text += '#';
        text += std::to_string(i);
        d.examples.push_back({text, "", int64_t(c)});
        added = 1;
      }
  }
  return d;
}

std::vector<std::string> texts_of(const LabeledDataset& d) {
  std::vector<std::string> out;
  for (const auto& e : d.examples) out.push_back(e.text);
  return out;
}

std::map<int64_t, int64_t> label_counts(const LabeledDataset& d) {
  std::map<int64_t, int64_t> out;
  for (const auto& e : d.examples) ++out[e.label];
  return out;
}

TEST(LabeledSplit, DeterministicPartition) {
  const LabeledDataset d = synthetic({70, 30});
  const auto [train, val] = split_dataset(d, 0.2, 7);
  EXPECT_EQ(val.examples.size(), 20u);
  EXPECT_EQ(train.examples.size(), 80u);
  EXPECT_EQ(train.label_names, d.label_names);
  EXPECT_EQ(val.label_names, d.label_names);
  // A partition: every example exactly once, and each half keeps the file order.
  std::vector<std::string> all = texts_of(train), v = texts_of(val);
  all.insert(all.end(), v.begin(), v.end());
  std::multiset<std::string> got(all.begin(), all.end()), want;
  for (const auto& e : d.examples) want.insert(e.text);
  EXPECT_EQ(got, want);
  auto pos = [&](const std::string& t) {
    for (size_t i = 0; i < d.examples.size(); ++i)
      if (d.examples[i].text == t) return i;
    return size_t(-1);
  };
  for (size_t i = 1; i < v.size(); ++i) EXPECT_LT(pos(v[i - 1]), pos(v[i]));
  // Same seed, same split; another seed, another split.
  EXPECT_EQ(texts_of(split_dataset(d, 0.2, 7).second), v);
  EXPECT_NE(texts_of(split_dataset(d, 0.2, 8).second), v);
}

TEST(LabeledSplit, Stratified) {
  const LabeledDataset d = synthetic({70, 30});
  for (uint64_t seed : {1, 2, 3}) {
    const auto val = split_dataset(d, 0.2, seed).second;
    EXPECT_EQ(label_counts(val), (std::map<int64_t, int64_t>{{0, 14}, {1, 6}}));
  }
  // Quotas 7.5 / 4.5 / 3: the two half seats go to the tie's smaller labels until 15 are placed.
  const auto val = split_dataset(synthetic({50, 30, 20}), 0.15, 5).second;
  EXPECT_EQ(label_counts(val), (std::map<int64_t, int64_t>{{0, 8}, {1, 4}, {2, 3}}));
  // Unstratified: the exact total, whatever the labels.
  EXPECT_EQ(split_dataset(d, 0.2, 1, false).second.examples.size(), 20u);
}

TEST(LabeledSplit, EdgeCases) {
  const LabeledDataset two = synthetic({1, 1});
  EXPECT_EQ(split_dataset(two, 0.01, 1).second.examples.size(), 1u);  // at least one
  EXPECT_EQ(split_dataset(two, 0.9, 1).first.examples.size(), 1u);    // never all
  EXPECT_EQ(split_dataset(two, 0.0, 1).second.examples.size(), 0u);
  EXPECT_EQ(split_dataset(synthetic({1}), 0.5, 1).second.examples.size(), 0u);
  EXPECT_THROW(split_dataset(two, 1.0, 1), std::invalid_argument);
  EXPECT_THROW(split_dataset(two, -0.1, 1), std::invalid_argument);
}

// ---- sampler
// --------------------------------------------------------------------------------------------

TEST(ExampleSamplerTest, EachEpochIsAPermutation) {
  ExampleSampler s(10, 42, true);
  std::vector<int64_t> stream;
  for (int i = 0; i < 10; ++i) {  // 30 indices = 3 epochs, batches crossing the boundaries
    const std::vector<int64_t> b = s.next_batch(3);
    ASSERT_EQ(b.size(), 3u);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  EXPECT_EQ(s.position(), 30);
  EXPECT_EQ(s.epoch(), 3);
  EXPECT_EQ(s.offset_in_epoch(), 0);
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> ep(stream.begin() + e * 10, stream.begin() + e * 10 + 10);
    EXPECT_EQ(ep, s.epoch_order(e));
    std::vector<int64_t> sorted = ep;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(sorted[i], i);
    epochs.push_back(ep);
  }
  EXPECT_NE(epochs[0], epochs[1]);  // reshuffled every epoch
  EXPECT_NE(epochs[1], epochs[2]);
  EXPECT_NE(ExampleSampler(10, 43, true).epoch_order(0), epochs[0]);
}

TEST(ExampleSamplerTest, DeterministicAndResumable) {
  ExampleSampler a(37, 9, true);
  for (int i = 0; i < 5; ++i) a.next_batch(8);  // position 40: epoch 1, offset 3
  EXPECT_EQ(a.epoch(), 1);
  EXPECT_EQ(a.offset_in_epoch(), 3);
  const int64_t saved = a.position();
  const std::vector<int64_t> next = a.next_batch(50);

  ExampleSampler b(37, 9, true);  // a fresh sampler restored to the saved position
  b.restore(saved);
  EXPECT_EQ(b.next_batch(50), next);
  ExampleSampler c(37, 9, true);  // and one that walked there
  for (int i = 0; i < 40; ++i) c.next_batch(1);
  EXPECT_EQ(c.next_batch(50), next);
  // Going back works too.
  a.restore(0);
  EXPECT_EQ(a.next_batch(37), a.epoch_order(0));
  EXPECT_THROW(a.restore(-1), std::invalid_argument);
  EXPECT_THROW(a.next_batch(0), std::invalid_argument);
  EXPECT_THROW(ExampleSampler(0, 1, true), std::invalid_argument);
}

TEST(ExampleSamplerTest, NoShuffleIsInOrder) {
  ExampleSampler s(4, 1, false);
  EXPECT_EQ(s.next_batch(6), (std::vector<int64_t>{0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(s.epoch(), 1);
}

}  // namespace
}  // namespace hone::data
