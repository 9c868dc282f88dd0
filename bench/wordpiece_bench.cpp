// WordPieceTokenizer throughput on the SST-2 training sentences (67k short English movie-review
// phrases, ~3.3 MB), one thread.
//   Encode:   encode(sentence) per sentence ([CLS] ... [SEP], max_length 512) -- the figure the
//             >= 5 MB/s target refers to; reported as bytes/s and sentences/s.
//   Tokenize: tokenize(sentence) -> wordpiece strings.
//   PadBatch: encode 32 sentences and pad them into [32, T] tensors.
//   Load:     parsing vocab.txt.
// Data: $HONE_DATA or <repo>/../shared/data (tokenizers/bert-base-uncased, text/sst2-glue).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/data/wordpiece_tokenizer.h"

namespace {

std::string data_dir() {
  if (const char* env = std::getenv("HONE_DATA"); env && *env) return env;
  // bench/ programs get no HONE_SOURCE_DIR; the repo root is two levels above this file.
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / ".." / "shared" / "data").string();
}

std::string vocab_path() { return data_dir() + "/tokenizers/bert-base-uncased/vocab.txt"; }

// The sentence column of train.tsv (header skipped, label column dropped).
const std::vector<std::string>& sentences() {
  static const std::vector<std::string> s = [] {
    std::vector<std::string> out;
    std::ifstream in(data_dir() + "/text/sst2-glue/train.tsv", std::ios::binary);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) out.push_back(line.substr(0, line.rfind('\t')));
    return out;
  }();
  return s;
}

int64_t total_bytes() {
  int64_t n = 0;
  for (const auto& s : sentences()) n += static_cast<int64_t>(s.size());
  return n;
}

bool have_data(benchmark::State& state) {
  if (sentences().empty() || !std::filesystem::exists(vocab_path())) {
    state.SkipWithError(("SST-2 or the BERT vocab not found under " + data_dir()).c_str());
    return false;
  }
  return true;
}

void report(benchmark::State& state, int64_t tokens_per_pass) {
  state.SetBytesProcessed(state.iterations() * total_bytes());
  state.counters["sentences/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * sentences().size()), benchmark::Counter::kIsRate);
  state.counters["sentences"] = static_cast<double>(sentences().size());
  state.counters["tokens"] = static_cast<double>(tokens_per_pass);
}

void BM_WordPieceEncode(benchmark::State& state) {
  if (!have_data(state)) return;
  const auto tok = hone::WordPieceTokenizer::from_vocab(vocab_path());
  int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& s : sentences()) tokens += static_cast<int64_t>(tok.encode(s).ids.size());
    benchmark::DoNotOptimize(tokens);
  }
  report(state, tokens);
}
BENCHMARK(BM_WordPieceEncode)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void BM_WordPieceTokenize(benchmark::State& state) {
  if (!have_data(state)) return;
  const auto tok = hone::WordPieceTokenizer::from_vocab(vocab_path());
  int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& s : sentences()) tokens += static_cast<int64_t>(tok.tokenize(s).size());
    benchmark::DoNotOptimize(tokens);
  }
  report(state, tokens);
}
BENCHMARK(BM_WordPieceTokenize)->Unit(benchmark::kMillisecond);

void BM_WordPiecePadBatch(benchmark::State& state) {
  if (!have_data(state)) return;
  const auto tok = hone::WordPieceTokenizer::from_vocab(vocab_path());
  size_t next = 0;
  for (auto _ : state) {
    std::vector<hone::Encoding> batch;
    for (int i = 0; i < 32; ++i, next = (next + 1) % sentences().size())
      batch.push_back(tok.encode(sentences()[next]));
    benchmark::DoNotOptimize(hone::WordPieceTokenizer::pad_batch(batch, tok.pad_id()));
  }
  state.counters["sentences/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * 32), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WordPiecePadBatch)->Unit(benchmark::kMicrosecond);

void BM_WordPieceLoad(benchmark::State& state) {
  if (!have_data(state)) return;
  for (auto _ : state) benchmark::DoNotOptimize(hone::WordPieceTokenizer::from_vocab(vocab_path()));
}
BENCHMARK(BM_WordPieceLoad)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
