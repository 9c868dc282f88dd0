// Shared helpers for the BPE tokenizer tests: where the data lives, small file utilities.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hone::bpe_test {

// $HONE_DATA, else the shared data folder next to the repo.
inline std::string data_dir() {
  if (const char* env = std::getenv("HONE_DATA"); env && *env) return env;
  return std::string(HONE_SOURCE_DIR) + "/../shared/data";
}

inline std::string gpt2_dir() { return data_dir() + "/tokenizers/gpt2"; }
inline std::string shakespeare_path() { return data_dir() + "/text/tinyshakespeare/input.txt"; }
inline std::string fixture_path() {
  return std::string(HONE_SOURCE_DIR) + "/tests/fixtures/tokenizer/gpt2_cases.json";
}

inline bool have_gpt2() {
  namespace fs = std::filesystem;
  const fs::path d(gpt2_dir());
  return (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe")) ||
         (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"));
}

#define HONE_SKIP_WITHOUT_GPT2()                                                              \
  do {                                                                                        \
    if (!::hone::bpe_test::have_gpt2())                                                       \
      GTEST_SKIP() << "GPT-2 tokenizer files not found in " << ::hone::bpe_test::gpt2_dir()   \
                   << " (set HONE_DATA to the folder holding tokenizers/gpt2)";               \
  } while (0)

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_all(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("hone_bpe_" + tag + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace hone::bpe_test
