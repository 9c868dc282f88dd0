// Loading a BpeTokenizer from vocab.json + merges.txt (or encoder.json + vocab.bpe), with
// errors that name the file and line, so a bad download is diagnosed at load time rather than
// as silently wrong ids.
#include <filesystem>
#include <stdexcept>

#include "engine/data/bpe_byte_unicode.h"
#include "engine/data/bpe_json.h"
#include "engine/data/bpe_tokenizer_impl.h"
#include "engine/data/unicode_class.h"

namespace hone {
namespace {

constexpr int64_t kMaxId = (1 << 24) - 1;  // guards against absurd ids allocating gigabytes

[[noreturn]] void fail(const std::string& file, int line, const std::string& what) {
  throw std::runtime_error(file + ":" + std::to_string(line) + ": " + what);
}

// Raw bytes a vocab.json token stands for. Characters outside the byte-level alphabet (only
// possible in hand-added tokens) stand for their own UTF-8, so decoding never loses them.
std::string token_bytes(const std::string& token) {
  std::string out;
  char32_t cp = 0;
  for (size_t i = 0; i < token.size();) {
    const int len = utf8_decode(token, i, &cp);  // the JSON reader validated the UTF-8
    const int b = bpe_unicode_to_byte(cp);
    if (b >= 0) out.push_back(static_cast<char>(b));
    else out.append(token, i, len);
    i += len;
  }
  return out;
}

void load_vocab(BpeTokenizer::Impl& m, const std::string& path) {
  const json::Value doc = json::parse_file(path);
  if (doc.kind != json::Value::Kind::Object)
    fail(path, doc.line, "expected a JSON object mapping token -> id");
  if (doc.object.empty()) fail(path, doc.line, "the vocab is empty");
  int64_t max_id = -1;
  for (const auto& [tok, v] : doc.object) {
    if (v.kind != json::Value::Kind::Number || !v.is_integer || v.integer < 0 || v.integer > kMaxId)
      fail(path, v.line, "id of token \"" + tok + "\" is not an integer in [0, 2^24)");
    max_id = std::max(max_id, v.integer);
  }
  m.id_to_token.assign(max_id + 1, "");
  m.id_to_bytes.assign(max_id + 1, "");
  m.id_present.assign(max_id + 1, 0);
  m.token_to_id.reserve(doc.object.size());
  for (const auto& [tok, v] : doc.object) {
    const auto id = static_cast<int32_t>(v.integer);
    if (m.id_present[id])
      fail(path, v.line, "id " + std::to_string(id) + " is used by both \"" + m.id_to_token[id] +
                             "\" and \"" + tok + "\"");
    m.id_present[id] = 1;
    m.id_to_token[id] = tok;
    m.id_to_bytes[id] = token_bytes(tok);
    m.token_to_id.emplace(tok, id);
  }
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    utf8_append(sym, bpe_byte_to_unicode(static_cast<uint8_t>(b)));
    const auto it = m.token_to_id.find(sym);
    if (it == m.token_to_id.end())
      fail(path, 1, "not a byte-level BPE vocab: no token for byte " + std::to_string(b) + " (\"" +
                        sym + "\")");
    m.byte_id[b] = it->second;
  }
  // GPT-2's only special token. Hugging Face's GPT-2 tokenizers register it as bos/eos/unk and
  // split it out of the text before pre-tokenisation.
  if (const auto it = m.token_to_id.find("<|endoftext|>"); it != m.token_to_id.end()) {
    m.eot = it->second;
    m.specials.emplace_back("<|endoftext|>", it->second);
  }
}

void load_merges(BpeTokenizer::Impl& m, const std::string& path) {
  const std::string text = json::read_file(path);
  std::vector<int> first_line_of_rank;
  int line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (utf8_first_invalid(line) != std::string_view::npos) fail(path, line_no, "invalid UTF-8");
    // "#version: 0.2" header (both file layouts); blank lines (the trailing newline) carry nothing.
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t sp = line.find(' ');
    const bool two = sp != std::string_view::npos && sp > 0 && sp + 1 < line.size() &&
                     line.find(' ', sp + 1) == std::string_view::npos;
    if (!two)
      fail(path, line_no, "expected two symbols separated by one space, got \"" +
                              std::string(line) + "\"");
    const std::string_view a = line.substr(0, sp), b = line.substr(sp + 1);
    auto lookup = [&](std::string_view sym, const char* what) {
      const auto it = m.token_to_id.find(sym);
      if (it == m.token_to_id.end())
        fail(path, line_no, std::string(what) + " \"" + std::string(sym) + "\" is not in the vocab");
      return it->second;
    };
    const int32_t left = lookup(a, "merge symbol");
    const int32_t right = lookup(b, "merge symbol");
    const int32_t merged = lookup(std::string(a) + std::string(b), "merge result");
    if (!m.merges.add(left, right, merged))
      fail(path, line_no, "duplicate merge \"" + std::string(line) + "\" (first on line " +
                              std::to_string(first_line_of_rank[m.merges.rank(left, right)]) + ")");
    first_line_of_rank.push_back(line_no);
  }
}

}  // namespace

BpeTokenizer BpeTokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  auto impl = std::make_shared<Impl>();
  load_vocab(*impl, vocab_json);
  load_merges(*impl, merges_txt);
  return BpeTokenizer(std::move(impl));
}

BpeTokenizer BpeTokenizer::from_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"))
    return from_files((d / "vocab.json").string(), (d / "merges.txt").string());
  if (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe"))
    return from_files((d / "encoder.json").string(), (d / "vocab.bpe").string());
  throw std::runtime_error(dir + ": no tokenizer files (expected vocab.json + merges.txt, or "
                                 "encoder.json + vocab.bpe)");
}

}  // namespace hone
