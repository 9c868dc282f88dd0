// The CUDA emulator's cuDNN backend graph API (tests/cuda_emu), shared by its two halves:
// cudnn_backend.cpp (the descriptor calls: create, set, get, finalize, execute, with the one engine
// this emulation offers) and cudnn_graph_exec.cpp (that engine: it runs an operation graph's
// pointwise, matmul, reduction, reshape and fused SDPA forward operations on the host, in double,
// rounding every tensor to its declared type).
//
// Why: kernels/cuda/attention_cudnn.cpp builds its attention graphs with NVIDIA's cuDNN frontend,
// which lowers them to exactly these backend operations (matmuls, a softmax spelled with reductions
// and pointwise ops, the causal mask spelled with GEN_INDEX and comparisons, the bias, the dropout
// mask and scale). Running NVIDIA's own decomposition, operation by operation, checks on any machine
// what hone tells cuDNN: layouts, strides, the padding bias, the dropout mask and its scales, the
// softmax statistics, and what attention_cudnn.cpp does around the call.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_emu/device.h"

namespace hone::emu::cudnn {

// cuDNN's floating data types as the emulator's elements (None for the others), and element i of a
// buffer of cuDNN type t read as a double / written from one, integers included: shared by the
// emulated convolution API (cudnn_conv.cpp) and the graph engine.
inline Elem elem_of(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT:
      return Elem::F32;
    case CUDNN_DATA_DOUBLE:
      return Elem::F64;
    case CUDNN_DATA_BFLOAT16:
      return Elem::BF16;
    case CUDNN_DATA_HALF:
      return Elem::F16;
    default:
      return Elem::None;
  }
}
inline double load(cudnnDataType_t t, const void* p, int64_t i) {
  if (t == CUDNN_DATA_INT32) return static_cast<const int32_t*>(p)[i];
  if (t == CUDNN_DATA_INT64) return double(static_cast<const int64_t*>(p)[i]);
  return load_elem(elem_of(t), p, i);
}
inline void store(cudnnDataType_t t, void* p, int64_t i, double v) {
  if (t == CUDNN_DATA_INT32) {
    static_cast<int32_t*>(p)[i] = int32_t(v);
  } else if (t == CUDNN_DATA_INT64) {
    static_cast<int64_t*>(p)[i] = int64_t(v);
  } else {
    store_elem(elem_of(t), p, i, v);
  }
}

struct Desc;
using DescPtr = std::shared_ptr<Desc>;

// One attribute as set: its type, element count, raw bytes, and for descriptor-valued attributes the
// descriptors themselves (held, so the caller may destroy its handles, as cuDNN allows).
struct Value {
  cudnnBackendAttributeType_t type = CUDNN_TYPE_INT64;
  int64_t count = 0;
  std::vector<unsigned char> bytes;
  std::vector<DescPtr> descs;
};

struct Desc {
  cudnnBackendDescriptorType_t type{};
  std::map<cudnnBackendAttributeName_t, Value> attrs;
  bool finalized = false;

  bool has(cudnnBackendAttributeName_t name) const { return attrs.count(name) != 0; }
  // The first element of an attribute (which must be set), read as T.
  template <class T>
  T get(cudnnBackendAttributeName_t name) const {
    auto it = attrs.find(name);
    if (it == attrs.end() || it->second.bytes.size() < sizeof(T))
      throw std::runtime_error("emulated cuDNN: attribute " + std::to_string(int(name)) + " not set");
    T v;
    std::memcpy(&v, it->second.bytes.data(), sizeof(T));
    return v;
  }
  template <class T>
  T get_or(cudnnBackendAttributeName_t name, T fallback) const {
    return has(name) ? get<T>(name) : fallback;
  }
  template <class T>
  std::vector<T> all(cudnnBackendAttributeName_t name) const {
    auto it = attrs.find(name);
    if (it == attrs.end()) return {};
    const size_t n = it->second.bytes.size() / sizeof(T);
    std::vector<T> out(n);
    if (n) std::memcpy(out.data(), it->second.bytes.data(), n * sizeof(T));
    return out;
  }
  DescPtr desc(cudnnBackendAttributeName_t name) const {
    auto it = attrs.find(name);
    return it == attrs.end() || it->second.descs.empty() ? nullptr : it->second.descs[0];
  }
  std::vector<DescPtr> descs(cudnnBackendAttributeName_t name) const {
    auto it = attrs.find(name);
    return it == attrs.end() ? std::vector<DescPtr>{} : it->second.descs;
  }
};

// The engine: "" when every operation of the graph is one it runs, else what it cannot run.
std::string graph_unsupported(const Desc& operation_graph);
// Runs the graph with the variant pack's pointers (uid -> device pointer, or host pointer for a
// tensor passed by value). "" or what went wrong.
std::string graph_execute(const Desc& operation_graph, const std::map<int64_t, void*>& pointers);

}  // namespace hone::emu::cudnn
