// train_bpe: learned files load into BpeTokenizer, which then reproduces the training
// segmentation and round-trips text.
#include "engine/data/bpe_trainer.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "bpe_test_util.h"
#include "engine/data/bpe_tokenizer.h"

namespace hone {
namespace {

std::string training_text() {
  std::string text = bpe_test::read_all(bpe_test::shakespeare_path());
  if (text.empty()) {  // no shared data: a small built-in corpus still exercises everything
    for (int i = 0; i < 200; ++i)
      text += "the cat sat on the mat; the dog's bone, 1234 caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87\n";
  }
  return text.substr(0, 200000);
}

TEST(BpeTrainer, LearnedFilesLoadAndReproduceTrainingSegmentation) {
  const std::string text = training_text() + "<|endoftext|>second document  \n";
  BpeTrainOptions opt;
  opt.vocab_size = 600;
  const BpeTrainResult r = train_bpe(text, opt);
  // Shakespeare fills the vocab; the small fallback corpus runs out of repeated pairs first.
  ASSERT_LE(r.tokens.size(), 600u);
  ASSERT_GT(r.tokens.size(), 280u);
  EXPECT_EQ(r.tokens.back(), "<|endoftext|>");
  EXPECT_EQ(r.merges.size(), r.tokens.size() - 257);  // no duplicate spellings in this small run
  const auto n = static_cast<int32_t>(r.tokens.size());

  bpe_test::TempDir dir("train");
  write_bpe_files(r, dir.path.string());
  const BpeTokenizer tok = BpeTokenizer::from_folder(dir.path.string());
  EXPECT_EQ(tok.vocab_size(), n);
  EXPECT_EQ(tok.eot_id(), n - 1);
  const std::vector<int32_t> ids = tok.encode(text);
  // Merges were applied in rank order during training, so encoding gives the same pieces.
  EXPECT_EQ(static_cast<int64_t>(ids.size()), r.num_tokens);
  EXPECT_LT(ids.size(), text.size() / 2);  // it actually compresses
  EXPECT_EQ(tok.decode(ids), text);
  const std::string unseen = "Zebras \xF0\x9F\xA6\x93 quizzed 98765 \xD0\x9F\xD1\x80\xD0\xB8!\t\n";
  EXPECT_EQ(tok.decode(tok.encode(unseen)), unseen);
}

TEST(BpeTrainer, StopsAtMinFrequencyAndRejectsBadUtf8) {
  BpeTrainOptions opt;
  opt.vocab_size = 10000;
  opt.min_frequency = 2;
  // Pre-tokens "abab", " abab", " xyz": a+b occurs 4 times, then ab+ab twice; every other pair
  // once, below min_frequency.
  const BpeTrainResult r = train_bpe("abab abab xyz", opt);
  const std::vector<std::pair<std::string, std::string>> want = {{"a", "b"}, {"ab", "ab"}};
  EXPECT_EQ(r.merges, want);
  EXPECT_EQ(r.tokens.size(), 256u + 2u + 1u);
  EXPECT_THROW(train_bpe("bad \xFF", opt), std::invalid_argument);
}

}  // namespace
}  // namespace hone
