// Tokenized training data on disk, and the loader that draws training windows from it.
//
// `hone prepare` tokenizes the documents once and writes a folder:
//   <dir>/train_000.bin, train_001.bin, ..., val_000.bin, ...   token ids, at most shard_tokens each
//   <dir>/meta.json  {"format":"hone-tokens","version":1,"dtype":"uint16"|"uint32","vocab_size":N,
//                     "eot_id":K,"documents":D,"train_documents":..,"val_documents":..,
//                     "split_by":"documents"|"tokens","train_tokens":..,"val_tokens":..,
//                     "shard_tokens":..,"val_fraction":..,
//                     "shards":{"train":["train_000.bin",...],"val":[...]}, ...extra_meta}
// A .bin shard is a 64-byte header then the ids, little-endian:
//   bytes 0-7 magic "HONETOK1" | 8-11 uint32 version (1) | 12-15 uint32 bytes per id (2 or 4)
//   | 16-23 int64 id count | 24-63 zero.
// Ids are uint16 when vocab_size <= 65536 (GPT-2's 50257 fits, halving disk and page cache), else
// uint32. Each document is followed by eot_id, so a window that spans two documents sees the
// boundary, as in GPT-2's own training data.
//
// The trainer reads a split through TokenWindowLoader, which maps the shards and draws windows.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/core/tensor.h"

namespace hone::data {

struct PrepareOptions {
  // Fraction in [0, 1) held out for validation: the last documents, or, when there is a single
  // document (one big text file), the last tokens.
  double val_fraction = 0.05;
  // Most ids in one shard file (>= 1).
  int64_t shard_tokens = 100'000'000;
};

struct PrepareStats {
  int64_t documents = 0;
  int64_t train_tokens = 0;  // eot separators included
  int64_t val_tokens = 0;
  std::string dtype;  // "uint16" or "uint32"
};

// Writes the shards and meta.json of `documents_tokens` into `out_dir` (created if missing).
// The split: with >= 2 documents the last round(val_fraction * D) documents go to val (at least
// one when val_fraction > 0, never all); with a single document its token stream (eot included)
// is cut and the last round(val_fraction * n) tokens go to val (same clamping). Every file is
// written to a temporary name and renamed into place; meta.json is removed first and written last,
// so a folder with a meta.json is complete. `extra_meta` (an object, e.g. {"source":..,
// "tokenizer":..}) is merged into meta.json; it may not redefine the keys above.
// Throws std::invalid_argument for bad arguments (an id outside [0, vocab_size), no documents,
// ...) and std::runtime_error for I/O failures, naming the file.
PrepareStats write_token_shards(const std::string& out_dir,
                                const std::vector<std::vector<int32_t>>& documents_tokens,
                                int64_t vocab_size, int32_t eot_id, const PrepareOptions& options,
                                const nlohmann::json& extra_meta = {});

// The target used to pad the last windows of next_sequential_batch: cross_entropy's default
// ignore_index, so padded positions do not count.
constexpr int64_t kIgnoreTarget = -100;

// One split ("train" or "val") of a prepared folder, memory-mapped, as one token stream (shards
// concatenated in meta.json's order). Everything read is validated when the loader is built:
// meta.json, each shard's header and size, every id < vocab_size, and the split's length (at least
// seq_len + 1 ids). Errors are std::runtime_error naming the file and what was expected.
// Move-only (it owns the mappings).
class TokenWindowLoader {
 public:
  TokenWindowLoader(const std::string& dir, const std::string& split, int64_t seq_len, uint64_t seed);
  ~TokenWindowLoader();
  TokenWindowLoader(TokenWindowLoader&&) noexcept;
  TokenWindowLoader& operator=(TokenWindowLoader&&) noexcept;

  // B windows of seq_len + 1 consecutive ids each, at random starts: the start of window i of batch
  // n is a function of (seed, n, i) and the split's length only (Philox), so batches are the same
  // on every machine and after a restore. inputs and targets are fresh int64 [B, seq_len] CPU
  // tensors; targets[b, t] = inputs[b, t + 1] for t < seq_len - 1, and the last target is the id
  // after the window's inputs.
  void next_batch(int64_t B, Tensor& inputs, Tensor& targets);

  // Evaluation windows in order: window k has inputs ids[k*T, k*T + T) and targets
  // ids[k*T + 1, k*T + T + 1), so every id but the first is a target exactly once. The last window
  // is padded past the end (inputs with eot_id, targets with kIgnoreTarget) and the last batch may
  // have fewer than B rows. Returns false (leaving the tensors alone) once the split is exhausted.
  bool next_sequential_batch(int64_t B, Tensor& inputs, Tensor& targets);
  void reset_sequential();

  // How many random batches have been drawn. Saving it and calling restore() in a fresh loader
  // (same folder, split, seq_len and seed) continues the identical stream.
  int64_t position() const;
  void restore(int64_t position);

  int64_t num_tokens() const;
  int64_t vocab_size() const;
  int32_t eot_id() const;
  int64_t seq_len() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace hone::data
