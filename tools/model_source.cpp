#include "tools/model_source.h"

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace hone::cli {

models::LoadedGpt2 open_gpt2(const std::string& folder, bool verbose) {
  models::LoadedGpt2 m = models::load_gpt2(folder);
  m.model->eval();
  if (verbose) std::fprintf(stderr, "loaded %s: %s\n", m.weights_path.c_str(), m.report.summary().c_str());
  return m;
}

BpeTokenizer open_tokenizer(const std::string& folder) { return BpeTokenizer::from_folder(folder); }

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  for (const char* name : {"vocab.json", "merges.txt", "encoder.json", "vocab.bpe", "tokenizer_config.json"}) {
    const fs::path src = fs::path(from) / name;
    if (fs::exists(src)) fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace hone::cli
