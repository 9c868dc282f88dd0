// BpeTokenizer: encoding (special tokens, pre-tokenisation, cached BPE) and decoding.
#include "engine/data/bpe_tokenizer.h"

#include <stdexcept>

#include "engine/data/bpe_pretokenize.h"
#include "engine/data/bpe_tokenizer_impl.h"
#include "engine/data/unicode_class.h"

namespace hone {

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool allow_special) const {
  const size_t bad = utf8_first_invalid(text);
  if (bad != std::string_view::npos)
    throw std::invalid_argument("BpeTokenizer::encode: invalid UTF-8 at byte offset " +
                                std::to_string(bad));
  std::vector<int32_t> out;
  out.reserve(text.size() / 3);  // English averages ~4 bytes per token
  if (!allow_special || impl_->specials.empty()) {
    encode_ordinary(text, out);
    return out;
  }
  // Split out special tokens first, as Hugging Face does: the text between them is encoded on
  // its own, so "a<|endoftext|>b" never merges across the boundary.
  while (!text.empty()) {
    size_t at = std::string_view::npos;
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (const auto& sp : impl_->specials) {
      const size_t p = text.find(sp.first);
      if (p < at || (p == at && hit && sp.first.size() > hit->first.size())) {
        at = p;
        hit = &sp;
      }
    }
    if (!hit) break;
    encode_ordinary(text.substr(0, at), out);
    out.push_back(hit->second);
    text.remove_prefix(at + hit->first.size());
  }
  encode_ordinary(text, out);
  return out;
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  Gpt2PreTokenizer pre(text);
  for (std::string_view piece = pre.next(); !piece.empty(); piece = pre.next())
    encode_piece(piece, out);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  const Impl& m = *impl_;
  if (piece.size() == 1) {  // one byte is one token; no need for the cache
    out.push_back(m.byte_id[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const bool cacheable = piece.size() <= Impl::kMaxCachedBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(m.cache_mu);
    if (const auto it = m.cache.find(piece); it != m.cache.end()) {
      ++m.cache_hits;
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
    ++m.cache_misses;
  }
  std::vector<int32_t> symbols(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) symbols[i] = m.byte_id[static_cast<unsigned char>(piece[i])];
  m.merges.apply(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(m.cache_mu);
    if (m.cache.size() >= Impl::kCacheCapacity) m.cache.clear();
    m.cache.emplace(std::string(piece), std::move(symbols));
  }
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::string out;
  out.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(m.id_present.size()) || !m.id_present[id])
      throw std::out_of_range("BpeTokenizer::decode: unknown token id " + std::to_string(id));
    out += m.id_to_bytes[id];
  }
  return out;
}

int32_t BpeTokenizer::eot_id() const { return impl_->eot; }

int64_t BpeTokenizer::vocab_size() const { return static_cast<int64_t>(impl_->id_present.size()); }

std::string BpeTokenizer::token(int32_t id) const {
  const Impl& m = *impl_;
  if (id < 0 || id >= static_cast<int64_t>(m.id_present.size()) || !m.id_present[id])
    throw std::out_of_range("BpeTokenizer::token: unknown token id " + std::to_string(id));
  return m.id_to_token[id];
}

int32_t BpeTokenizer::id(std::string_view token) const {
  const auto it = impl_->token_to_id.find(token);
  return it == impl_->token_to_id.end() ? -1 : it->second;
}

BpeTokenizer::CacheStats BpeTokenizer::cache_stats() const {
  std::lock_guard<std::mutex> lock(impl_->cache_mu);
  return {impl_->cache_hits, impl_->cache_misses, static_cast<int64_t>(impl_->cache.size())};
}

}  // namespace hone
