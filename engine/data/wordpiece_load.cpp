// Loading a WordPieceTokenizer from vocab.txt (+ tokenizer_config.json), with errors that name
// the file and line, so a bad download is diagnosed at load time rather than as silently wrong
// ids.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "engine/data/unicode_class.h"
#include "engine/data/wordpiece_tokenizer_impl.h"

namespace hone {
namespace {

[[noreturn]] void fail(const std::string& file, int line, const std::string& what) {
  throw std::runtime_error(file + ":" + std::to_string(line) + ": " + what);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void load_vocab(WordPieceTokenizer::Impl& m, const std::string& path) {
  const std::string text = read_file(path);
  std::vector<int> line_of_id;
  int line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    // Python's text-mode readlines() ends lines at \n, \r\n or a lone \r.
    size_t eol = text.find_first_of("\r\n", pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string_view token(text.data() + pos, eol - pos);
    pos = eol + (text.compare(eol, 2, "\r\n") == 0 ? 2 : 1);
    ++line_no;
    // HF would give an empty line an id (the token ""); it only ever means a damaged file.
    if (token.empty()) fail(path, line_no, "empty line (vocab.txt holds one token per line)");
    if (utf8_first_invalid(token) != std::string_view::npos) fail(path, line_no, "invalid UTF-8");
    const auto id = static_cast<int32_t>(m.tokens.size());
    if (const auto [it, fresh] = m.word_ids.emplace(token, id); !fresh)
      fail(path, line_no, "duplicate token \"" + std::string(token) + "\" (first on line " +
                              std::to_string(line_of_id[it->second]) + ")");
    m.tokens.emplace_back(token);
    line_of_id.push_back(line_no);
    m.max_word_bytes = std::max(m.max_word_bytes, token.size());
    if (token.size() > 2 && token.starts_with("##")) {
      m.cont_ids.emplace(token.substr(2), id);
      m.max_cont_bytes = std::max(m.max_cont_bytes, token.size() - 2);
    }
  }
  if (m.tokens.empty()) fail(path, 1, "the vocab is empty");

  auto special = [&](const char* name, bool required) {
    const auto it = m.word_ids.find(std::string_view(name));
    if (it == m.word_ids.end()) {
      if (required) throw std::runtime_error(path + ": the vocab has no " + name + " token");
      return -1;
    }
    m.specials.emplace_back(name, it->second);
    return it->second;
  };
  m.unk = special("[UNK]", true);
  m.sep = special("[SEP]", true);
  m.pad = special("[PAD]", true);
  m.cls = special("[CLS]", true);
  m.mask = special("[MASK]", false);
  // Longest first, so that at one position the longest special wins (HF's trie does the same).
  std::stable_sort(m.specials.begin(), m.specials.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  m.is_special.assign(m.tokens.size(), 0);
  for (const auto& [name, id] : m.specials) m.is_special[id] = 1;
}

// Options from tokenizer_config.json. Missing keys keep HF's defaults; strip_accents null (or
// missing) follows do_lower_case.
WordPieceOptions load_options(const std::string& path) {
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  if (!cfg.is_object()) throw std::runtime_error(path + ": expected a JSON object");
  auto flag = [&](const char* key, bool fallback) {
    const auto it = cfg.find(key);
    if (it == cfg.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw std::runtime_error(path + ": \"" + key + "\" must be true, false or null");
    return it->get<bool>();
  };
  WordPieceOptions o;
  o.lower_case = flag("do_lower_case", true);
  o.strip_accents = flag("strip_accents", o.lower_case);
  o.tokenize_chinese_chars = flag("tokenize_chinese_chars", true);
  return o;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_vocab(const std::string& vocab_txt, WordPieceOptions options) {
  if (options.max_input_chars_per_word < 0)
    throw std::invalid_argument("WordPieceOptions: max_input_chars_per_word must be >= 0");
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  load_vocab(*impl, vocab_txt);
  return WordPieceTokenizer(std::move(impl));
}

WordPieceTokenizer WordPieceTokenizer::from_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (!fs::exists(d / "vocab.txt")) throw std::runtime_error(dir + ": no vocab.txt");
  const fs::path cfg = d / "tokenizer_config.json";
  const WordPieceOptions options = fs::exists(cfg) ? load_options(cfg.string()) : WordPieceOptions{};
  return from_vocab((d / "vocab.txt").string(), options);
}

}  // namespace hone
