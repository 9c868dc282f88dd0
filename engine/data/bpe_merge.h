// The BPE merge step: a table of ranked merges and the algorithm that applies them to one
// pre-token's symbols. Symbols are token ids; a merge (left, right) -> merged has rank = its
// line number among the merges (lower merges first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hone {

struct BpeMerge {
  int32_t left, right, merged;
};

class BpeMergeTable {
 public:
  static constexpr int32_t kNoMerge = INT32_MAX;

  // Appends a merge with the next rank. Returns false (and adds nothing) if the pair is
  // already present.
  bool add(int32_t left, int32_t right, int32_t merged);

  // Rank of the pair, or kNoMerge.
  int32_t rank(int32_t left, int32_t right) const {
    if (slots_.empty()) return kNoMerge;
    const uint64_t key = pack(left, right);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.rank == kNoMerge) return kNoMerge;
      if (s.key == key) return s.rank;
    }
  }

  const BpeMerge& by_rank(int32_t rank) const { return merges_[rank]; }
  int32_t size() const { return static_cast<int32_t>(merges_.size()); }

  // Merges symbols in place exactly as Hugging Face's GPT2Tokenizer.bpe() does: repeatedly take
  // the adjacent pair of lowest rank and merge all its occurrences, left to right, without
  // overlap. Picks the quadratic scan for short words and the heap version for long ones.
  void apply(std::vector<int32_t>& symbols) const;

  // The two algorithms, exposed so tests can check that they agree.
  void apply_scan(std::vector<int32_t>& symbols) const;  // O(n^2), fastest for n <~ 50
  void apply_heap(std::vector<int32_t>& symbols) const;  // O(n log n), for long pre-tokens

 private:
  struct Slot {
    uint64_t key = 0;
    int32_t rank = kNoMerge;  // kNoMerge marks an empty slot
  };
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  static size_t hash(uint64_t key) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20); }
  void grow();

  // Open addressing with linear probing: the rank lookup is the inner loop of BPE, and a flat
  // table of 16-byte slots is several times faster than std::unordered_map here.
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::vector<BpeMerge> merges_;
};

}  // namespace hone
