// WordPieceTokenizer: text -> wordpiece ids and back.
#include "engine/data/wordpiece_tokenizer.h"

#include <stdexcept>

#include "engine/data/unicode_class.h"
#include "engine/data/wordpiece_normalize.h"
#include "engine/data/wordpiece_tokenizer_impl.h"

namespace hone {
namespace {

bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// WordpieceTokenizer.tokenize for one word: greedy longest-match-first, continuations looked up
// as "##" + rest. A word longer than max_input_chars_per_word code points, or one with a part no
// token matches, becomes a single [UNK].
void wordpiece(const WordPieceTokenizer::Impl& m, std::string_view word, std::vector<int32_t>& out) {
  int64_t chars = 0;
  for (const char c : word) chars += !is_utf8_continuation(c);
  if (chars > m.options.max_input_chars_per_word) {
    out.push_back(m.unk);
    return;
  }
  const size_t first_piece = out.size();
  for (size_t start = 0; start < word.size();) {
    const WpTokenMap& map = start == 0 ? m.word_ids : m.cont_ids;
    // Substrings longer than the longest token cannot match: start below that length, on a
    // character boundary, and shrink one character at a time as Python does.
    size_t end = std::min(word.size(), start + (start == 0 ? m.max_word_bytes : m.max_cont_bytes));
    while (end > start && end < word.size() && is_utf8_continuation(word[end])) --end;
    int32_t found = -1;
    while (end > start) {
      if (const auto it = map.find(word.substr(start, end - start)); it != map.end()) {
        found = it->second;
        break;
      }
      do --end;
      while (end > start && is_utf8_continuation(word[end]));
    }
    if (found < 0) {
      out.resize(first_piece);
      out.push_back(m.unk);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void check_utf8(std::string_view text) {
  if (const size_t bad = utf8_first_invalid(text); bad != std::string_view::npos)
    throw std::invalid_argument("WordPieceTokenizer: invalid UTF-8 at byte offset " +
                                std::to_string(bad));
}

// HF's clean_up_tokenization, replacement by replacement over the whole string, in its order.
void clean_up_tokenization(std::string& s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    if (s.find(from) == std::string::npos) continue;
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
      out.append(s, pos, hit - pos);
      out.append(to);
    }
    out.append(s, pos);
    s.swap(out);
  }
}

}  // namespace

std::vector<int32_t> WordPieceTokenizer::encode_ids(std::string_view text) const {
  check_utf8(text);
  const Impl& m = *impl_;
  const WpNormalizeFlags flags{m.options.lower_case, m.options.strip_accents,
                               m.options.tokenize_chinese_chars};
  std::vector<int32_t> ids;
  WpWords words;
  auto encode_plain = [&](std::string_view piece) {
    words.clear();
    wp_split_words(piece, flags, words);
    for (size_t w = 0; w < words.size(); ++w) wordpiece(m, words[w], ids);
  };
  // Special tokens in the text (exact case) are single tokens, never normalised: HF splits them
  // out first (and its pre-lower-casing skips them). All of them start with '['.
  size_t plain_start = 0;
  for (size_t pos = text.find('['); pos != std::string_view::npos; pos = text.find('[', pos)) {
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (const auto& special : m.specials)
      if (text.substr(pos).starts_with(special.first)) {
        hit = &special;
        break;
      }
    if (!hit) {
      ++pos;
      continue;
    }
    encode_plain(text.substr(plain_start, pos - plain_start));
    ids.push_back(hit->second);
    pos += hit->first.size();
    plain_start = pos;
  }
  encode_plain(text.substr(plain_start));
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (const int32_t id : encode_ids(text)) out.push_back(impl_->tokens[id]);
  return out;
}

std::vector<int32_t> WordPieceTokenizer::convert(const std::vector<std::string>& tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens) {
    const auto it = impl_->word_ids.find(t);
    ids.push_back(it == impl_->word_ids.end() ? impl_->unk : it->second);
  }
  return ids;
}

std::string WordPieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& m = *impl_;
  // convert_tokens_to_string: " ".join(tokens).replace(" ##", "").strip()
  std::string text;
  for (const int32_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(m.tokens.size()))
      throw std::out_of_range("WordPieceTokenizer::decode: id " + std::to_string(id) +
                              " is not in the vocab");
    if (skip_special && m.is_special[id]) continue;
    const std::string& t = m.tokens[id];
    if (t.starts_with("##") && !text.empty()) {  // " ##" vanishes, even for the token "##"
      text.append(t, 2);
    } else {
      if (!text.empty()) text.push_back(' ');
      text.append(t);
    }
  }
  clean_up_tokenization(text);
  return text;
}

std::string WordPieceTokenizer::token(int32_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(impl_->tokens.size()))
    throw std::out_of_range("WordPieceTokenizer::token: id " + std::to_string(id) + " is not in the vocab");
  return impl_->tokens[id];
}

int32_t WordPieceTokenizer::id(std::string_view token) const {
  const auto it = impl_->word_ids.find(token);
  return it == impl_->word_ids.end() ? -1 : it->second;
}

int32_t WordPieceTokenizer::cls_id() const { return impl_->cls; }
int32_t WordPieceTokenizer::sep_id() const { return impl_->sep; }
int32_t WordPieceTokenizer::pad_id() const { return impl_->pad; }
int32_t WordPieceTokenizer::unk_id() const { return impl_->unk; }
int32_t WordPieceTokenizer::mask_id() const { return impl_->mask; }
int64_t WordPieceTokenizer::vocab_size() const { return static_cast<int64_t>(impl_->tokens.size()); }
const WordPieceOptions& WordPieceTokenizer::options() const { return impl_->options; }

}  // namespace hone
