// `hone tokenizer train --in PATH --out DIR [--vocab-size N] [--min-frequency F]`: learns
// byte-level BPE merges (GPT-2 style) from a text file, folder of .txt or JSONL, and writes
// vocab.json + merges.txt that every hone command (and Hugging Face) reads.
#include <cstdio>
#include <filesystem>

#include "engine/data/bpe_trainer.h"
#include "engine/data/text_sources.h"
#include "tools/cli.h"
#include "tools/commands.h"

namespace hone::cli {

int cmd_tokenizer(int argc, char** argv) {
  if (argc < 1 || std::string(argv[0]) != "train") throw std::invalid_argument("expected: tokenizer train ...");
  const Args a = parse("tokenizer", argc - 1, argv + 1, {"in", "out", "vocab-size", "min-frequency", "text-field"});
  BpeTrainOptions o;
  o.vocab_size = int32_t(a.integer("vocab-size", o.vocab_size));
  o.min_frequency = a.integer("min-frequency", o.min_frequency);
  if (o.vocab_size < 258) throw std::invalid_argument("--vocab-size must be at least 258 (256 bytes + merges + eot)");
  const auto docs = data::read_documents(a.str("in"), a.str("text-field", "text"));
  std::string text;
  for (const std::string& d : docs) text += d + "<|endoftext|>";
  const BpeTrainResult r = train_bpe(text, o);
  std::filesystem::create_directories(a.str("out"));
  write_bpe_files(r, a.str("out"));
  std::printf("%zu tokens, %zu merges; the training text encodes to %ld tokens (%.2f bytes/token) -> %s\n",
              r.tokens.size(), r.merges.size(), long(r.num_tokens), double(text.size()) / double(std::max<int64_t>(1, r.num_tokens)),
              a.str("out").c_str());
  return 0;
}

}  // namespace hone::cli
