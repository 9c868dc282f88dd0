#include "engine/data/bpe_trainer.h"

#include <fstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/data/bpe_byte_unicode.h"
#include "engine/data/bpe_pretokenize.h"
#include "engine/data/unicode_class.h"

namespace hone {
namespace {

using PairKey = uint64_t;
PairKey pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

// Pair counts with an index of the words holding each pair, updated word by word as merges
// rewrite them, so one merge costs time proportional to the words it touches.
class PairStats {
 public:
  void add_word(const Word& w, int index, int64_t sign) {
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      const PairKey k = pair_key(w.symbols[i], w.symbols[i + 1]);
      counts_[k] += sign * w.count;
      if (sign > 0) where_[k].insert(index);
    }
  }
  // Most frequent pair; ties go to the smallest key so training is deterministic.
  bool best(PairKey* key, int64_t* count) const {
    *count = 0;
    for (const auto& [k, c] : counts_)
      if (c > *count || (c == *count && c > 0 && k < *key)) {
        *key = k;
        *count = c;
      }
    return *count > 0;
  }
  std::vector<int> words_with(PairKey k) {
    const auto it = where_.find(k);
    if (it == where_.end()) return {};
    std::vector<int> out(it->second.begin(), it->second.end());
    where_.erase(it);
    return out;
  }
  void forget(PairKey k) { counts_.erase(k); }

 private:
  std::unordered_map<PairKey, int64_t> counts_;
  std::unordered_map<PairKey, std::unordered_set<int>> where_;  // may hold stale words
};

void json_string(std::ostream& out, const std::string& s) {
  out << '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out << '\\' << c;
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out << buf;
    } else {
      out << c;
    }
  }
  out << '"';
}

}  // namespace

BpeTrainResult train_bpe(std::string_view text, const BpeTrainOptions& options) {
  const size_t bad = utf8_first_invalid(text);
  if (bad != std::string_view::npos)
    throw std::invalid_argument("train_bpe: invalid UTF-8 at byte offset " + std::to_string(bad));
  const std::string_view eot = "<|endoftext|>";
  // With <|endoftext|> in the vocab its occurrences are document breaks, as in encode();
  // without it they are ordinary text.
  const auto next_eot = [&](size_t from) {
    return options.add_endoftext ? text.find(eot, from) : std::string_view::npos;
  };

  // Distinct pre-tokens with their counts.
  std::unordered_map<std::string_view, int64_t> piece_counts;
  for (size_t pos = 0; pos <= text.size();) {
    size_t stop = next_eot(pos);
    if (stop == std::string_view::npos) stop = text.size();
    Gpt2PreTokenizer pre(text.substr(pos, stop - pos));
    for (std::string_view p = pre.next(); !p.empty(); p = pre.next()) ++piece_counts[p];
    pos = stop + eot.size();
  }
  std::vector<Word> words;
  words.reserve(piece_counts.size());
  for (const auto& [piece, count] : piece_counts)
    words.push_back({std::vector<int32_t>(piece.begin(), piece.end()), count});
  for (Word& w : words)
    for (int32_t& s : w.symbols) s = static_cast<unsigned char>(s);

  BpeTrainResult r;
  std::unordered_map<std::string, int32_t> token_ids;
  for (int b = 0; b < 256; ++b) {
    r.tokens.push_back(bpe_bytes_to_symbols(std::string(1, static_cast<char>(b))));
    token_ids.emplace(r.tokens.back(), b);
  }
  PairStats stats;
  for (size_t i = 0; i < words.size(); ++i) stats.add_word(words[i], static_cast<int>(i), +1);

  const int32_t target = options.vocab_size - (options.add_endoftext ? 1 : 0);
  while (static_cast<int32_t>(r.tokens.size()) < target) {
    PairKey key = 0;
    int64_t count = 0;
    if (!stats.best(&key, &count) || count < options.min_frequency) break;
    const auto left = static_cast<int32_t>(key >> 32), right = static_cast<int32_t>(key & 0xFFFFFFFF);
    // Different merges can spell the same string ("a"+"bc", "ab"+"c"): they share one token.
    const std::string spelled = r.tokens[left] + r.tokens[right];
    const auto [it, fresh] = token_ids.emplace(spelled, static_cast<int32_t>(r.tokens.size()));
    if (fresh) r.tokens.push_back(spelled);
    const int32_t merged = it->second;
    r.merges.emplace_back(r.tokens[left], r.tokens[right]);
    for (int wi : stats.words_with(key)) {
      Word& w = words[wi];
      stats.add_word(w, wi, -1);
      size_t out = 0;
      for (size_t i = 0; i < w.symbols.size();) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == left && w.symbols[i + 1] == right) {
          w.symbols[out++] = merged;
          i += 2;
        } else {
          w.symbols[out++] = w.symbols[i++];
        }
      }
      w.symbols.resize(out);
      stats.add_word(w, wi, +1);
    }
    stats.forget(key);
  }
  if (options.add_endoftext) r.tokens.emplace_back(eot);
  for (const Word& w : words) r.num_tokens += w.count * static_cast<int64_t>(w.symbols.size());
  for (size_t pos = next_eot(0); pos != std::string_view::npos; pos = next_eot(pos + eot.size()))
    ++r.num_tokens;
  return r;
}

void write_bpe_files(const BpeTrainResult& result, const std::string& dir) {
  const std::string vocab_path = dir + "/vocab.json", merges_path = dir + "/merges.txt";
  std::ofstream vocab(vocab_path, std::ios::binary);
  if (!vocab) throw std::runtime_error(vocab_path + ": cannot create file");
  vocab << "{";
  for (size_t id = 0; id < result.tokens.size(); ++id) {
    vocab << (id ? ", " : "");
    json_string(vocab, result.tokens[id]);
    vocab << ": " << id;
  }
  vocab << "}\n";
  std::ofstream merges(merges_path, std::ios::binary);
  if (!merges) throw std::runtime_error(merges_path + ": cannot create file");
  merges << "#version: 0.2\n";
  for (const auto& [a, b] : result.merges) merges << a << ' ' << b << '\n';
  if (!vocab.flush() || !merges.flush()) throw std::runtime_error(dir + ": write error");
}

}  // namespace hone
