// Internal state of BpeTokenizer, shared by its loader (bpe_tokenizer_load.cpp) and its
// encoder/decoder (bpe_tokenizer.cpp). Not part of the public API.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/data/bpe_merge.h"
#include "engine/data/bpe_tokenizer.h"

namespace hone {

// Hash that lets unordered_map<std::string, ...> be searched with a string_view (no copy).
struct BpeStringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct BpeTokenizer::Impl {
  // ---- model (immutable after loading) ----
  std::unordered_map<std::string, int32_t, BpeStringHash, std::equal_to<>> token_to_id;
  std::vector<std::string> id_to_token;  // vocab.json form; "" where no token has the id
  std::vector<std::string> id_to_bytes;  // what the token decodes to
  std::vector<char> id_present;
  std::array<int32_t, 256> byte_id{};    // the single-byte token of each byte value
  BpeMergeTable merges;
  std::vector<std::pair<std::string, int32_t>> specials;  // text that maps straight to an id
  int32_t eot = -1;

  // ---- pre-token cache ----
  // Text repeats its words, so most pre-tokens are seen many times; caching their ids skips
  // BPE for them. Bounded: cleared when full (cheap, and follows shifts in the text), and only
  // short pieces are cached (long ones are rare and would hold memory).
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedBytes = 64;
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>, BpeStringHash, std::equal_to<>> cache;
  mutable int64_t cache_hits = 0, cache_misses = 0;
};

}  // namespace hone
