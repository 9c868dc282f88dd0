// The CUDA emulator's stand-in for cub::DeviceRadixSort (tests/cuda_emu): the same two-call
// protocol (a size query with a null buffer, then the sort) and the same result, a stable sort of
// (key, value) pairs by the key bits [begin_bit, end_bit).
#pragma once
#include <cuda_runtime.h>

#include "cuda_emu/device.h"

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

namespace cub {

struct DeviceRadixSort {
  template <class K, class V>
  static cudaError_t SortPairs(void* temp, size_t& temp_bytes, const K* keys_in, K* keys_out, const V* values_in,
                               V* values_out, int num_items, int begin_bit = 0, int end_bit = int(sizeof(K) * 8),
                               cudaStream_t = nullptr) {
    if (!temp) {
      temp_bytes = 16;  // a real sort needs scratch: the caller must allocate it
      return cudaSuccess;
    }
    if (num_items < 0 || begin_bit < 0 || end_bit > int(sizeof(K) * 8) || begin_bit >= end_bit)
      return cudaErrorInvalidValue;
    const hone::emu::DeviceAccess access;  // the sort reads and writes device memory
    const int bits = end_bit - begin_bit;
    const unsigned long long mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
    auto key_of = [&](int i) { return (static_cast<unsigned long long>(keys_in[i]) >> begin_bit) & mask; };
    std::vector<int> order(static_cast<size_t>(num_items));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key_of(a) < key_of(b); });
    std::vector<K> k(order.size());
    std::vector<V> v(order.size());
    for (size_t i = 0; i < order.size(); ++i) k[i] = keys_in[order[i]], v[i] = values_in[order[i]];
    std::copy(k.begin(), k.end(), keys_out);
    std::copy(v.begin(), v.end(), values_out);
    return cudaSuccess;
  }
};

}  // namespace cub
