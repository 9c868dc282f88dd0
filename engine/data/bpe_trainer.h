// Learning byte-level BPE merges from text (GPT-2 style), and writing them in the Hugging Face
// layout (vocab.json + merges.txt) that BpeTokenizer::from_folder reads back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hone {

struct BpeTrainOptions {
  int32_t vocab_size = 1024;   // total, including the 256 byte tokens and <|endoftext|>
  int64_t min_frequency = 2;   // stop when the most frequent pair occurs less often
  bool add_endoftext = true;   // append "<|endoftext|>" as the last id
};

struct BpeTrainResult {
  std::vector<std::string> tokens;                          // by id, vocab.json form ("Ġthe")
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  int64_t num_tokens = 0;  // tokens the training text encodes to under the learned merges
};

// Pre-tokenises with GPT-2's pattern (never merging across pieces or across "<|endoftext|>"),
// then repeatedly merges the most frequent adjacent pair (ties: lowest left id, then right id).
// Ids 0..255 are the bytes 0..255. Text must be valid UTF-8 (std::invalid_argument otherwise).
BpeTrainResult train_bpe(std::string_view text, const BpeTrainOptions& options = {});

// Writes dir/vocab.json and dir/merges.txt (the folder must exist); std::runtime_error on failure.
void write_bpe_files(const BpeTrainResult& result, const std::string& dir);

}  // namespace hone
