#include "engine/data/bpe_merge.h"

#include <algorithm>
#include <queue>

namespace hone {

bool BpeMergeTable::add(int32_t left, int32_t right, int32_t merged) {
  if (rank(left, right) != kNoMerge) return false;
  if ((merges_.size() + 1) * 2 > slots_.size()) grow();  // keep load below 1/2
  const uint64_t key = pack(left, right);
  size_t i = hash(key) & mask_;
  while (slots_[i].rank != kNoMerge) i = (i + 1) & mask_;
  slots_[i] = {key, size()};
  merges_.push_back({left, right, merged});
  return true;
}

void BpeMergeTable::grow() {
  const size_t cap = std::max<size_t>(64, slots_.size() * 2);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (int32_t r = 0; r < size(); ++r) {
    const uint64_t key = pack(merges_[r].left, merges_[r].right);
    size_t i = hash(key) & mask_;
    while (slots_[i].rank != kNoMerge) i = (i + 1) & mask_;
    slots_[i] = {key, r};
  }
}

void BpeMergeTable::apply(std::vector<int32_t>& symbols) const {
  if (symbols.size() > 48) apply_heap(symbols);
  else apply_scan(symbols);
}

void BpeMergeTable::apply_scan(std::vector<int32_t>& w) const {
  size_t n = w.size();
  while (n >= 2) {
    int32_t best = kNoMerge;
    for (size_t i = 0; i + 1 < n; ++i) best = std::min(best, rank(w[i], w[i + 1]));
    if (best == kNoMerge) break;
    const BpeMerge m = merges_[best];
    size_t out = 0;
    for (size_t i = 0; i < n;) {
      if (i + 1 < n && w[i] == m.left && w[i + 1] == m.right) {
        w[out++] = m.merged;
        i += 2;
      } else {
        w[out++] = w[i++];
      }
    }
    n = out;
  }
  w.resize(n);
}

void BpeMergeTable::apply_heap(std::vector<int32_t>& w) const {
  // Symbols form a doubly linked list over their original positions; the heap holds candidate
  // pairs (rank, position of the left symbol). Entries go stale when a neighbour merges and are
  // checked when popped. All entries of the current lowest rank are taken together, in position
  // order, which is exactly the "merge every occurrence left to right" round of the reference.
  const int n = static_cast<int>(w.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  using Entry = std::pair<int32_t, int>;  // (rank, left position)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push_pair = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    const int32_t r = rank(w[i], w[next[i]]);
    if (r != kNoMerge) heap.push({r, i});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);

  std::vector<int> round, merged_at;
  while (!heap.empty()) {
    const int32_t r = heap.top().first;
    round.clear();
    while (!heap.empty() && heap.top().first == r) {
      round.push_back(heap.top().second);
      heap.pop();
    }
    const BpeMerge m = merges_[r];
    merged_at.clear();
    for (int i : round) {  // ascending positions, possibly with duplicates
      if (!alive[i] || next[i] < 0) continue;
      const int j = next[i];
      if (w[i] != m.left || w[j] != m.right) continue;  // stale entry
      w[i] = m.merged;
      alive[j] = 0;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      merged_at.push_back(i);
    }
    for (int i : merged_at) {
      if (!alive[i]) continue;
      push_pair(prev[i]);
      push_pair(i);
    }
  }
  int out = 0;
  for (int i = 0; i >= 0 && i < n; i = next[i]) w[out++] = w[i];
  w.resize(out);
}

}  // namespace hone
