// The CUDA emulator's cuDNN library calls (tests/cuda_emu): the handle, the version, the error
// strings, and the backend descriptor API that NVIDIA's cuDNN frontend drives (cudnn_backend.h says
// why). Descriptors keep every attribute as set; a get returns what was set, or what this emulation's
// single engine answers (one engine config, no knobs, no notes, no workspace of its own). Finalizing
// an execution plan asks the engine whether it runs every operation of the graph: when it does not,
// the plan fails as a real engine's would (CUDNN_STATUS_NOT_SUPPORTED, with the reason in
// cudnnGetLastErrorString), so hone's fallback to its own kernel is exercised too.
//
// cudnnGetVersion reports the headers' version (9.19 here, as on the GPU machines), so the frontend
// picks the same lowering as it does there; HONE_EMU_CUDNN_VERSION=90000 (say) makes it pick another.
#include "cudnn_backend.h"

#include <cudnn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "activity.h"
#include "cuda_emu/device.h"

namespace {

using hone::emu::cudnn::Desc;
using hone::emu::cudnn::DescPtr;
using hone::emu::cudnn::Value;

struct Handle {
  cudaStream_t stream = nullptr;
};

// A cudnnBackendDescriptor_t is one of these: the caller's reference to a descriptor. Getting a
// descriptor-valued attribute points the caller's handles at the descriptors themselves.
struct Ref {
  DescPtr d;
};
Ref* ref(cudnnBackendDescriptor_t h) { return static_cast<Ref*>(h); }

thread_local std::string last_error;

cudnnStatus_t fail(cudnnStatus_t st, const std::string& why) {
  last_error = "emulated cuDNN: " + why;
  return st;
}

size_t element_size(cudnnBackendAttributeType_t t) {
  switch (t) {
    case CUDNN_TYPE_HANDLE:
      return sizeof(cudnnHandle_t);
    case CUDNN_TYPE_BOOLEAN:
      return sizeof(bool);
    case CUDNN_TYPE_INT64:
      return sizeof(int64_t);
    case CUDNN_TYPE_FLOAT:
      return sizeof(float);
    case CUDNN_TYPE_DOUBLE:
      return sizeof(double);
    case CUDNN_TYPE_VOID_PTR:
      return sizeof(void*);
    case CUDNN_TYPE_BACKEND_DESCRIPTOR:
      return sizeof(cudnnBackendDescriptor_t);
    case CUDNN_TYPE_INT32:
      return sizeof(int32_t);
    case CUDNN_TYPE_CHAR:
      return 1;
    case CUDNN_TYPE_FRACTION:
      return sizeof(cudnnFraction_t);
    default:
      return sizeof(int);  // every other attribute type is an enum
  }
}

DescPtr make(cudnnBackendDescriptorType_t type) {
  auto d = std::make_shared<Desc>();
  d->type = type;
  return d;
}

// A one-element attribute value of type `type`.
template <class T>
Value scalar_value(cudnnBackendAttributeType_t type, T v) {
  Value out;
  out.type = type;
  out.count = 1;
  out.bytes.resize(sizeof v);
  std::memcpy(out.bytes.data(), &v, sizeof v);
  return out;
}
Value int64_value(int64_t v) { return scalar_value(CUDNN_TYPE_INT64, v); }
Value int32_value(int32_t v) { return scalar_value(CUDNN_TYPE_INT32, v); }
Value no_elements(cudnnBackendAttributeType_t type) {
  Value out;
  out.type = type;
  return out;
}
Value descriptor_value(DescPtr d) {
  Value out;
  out.type = CUDNN_TYPE_BACKEND_DESCRIPTOR;
  out.count = 1;
  out.descs = {std::move(d)};
  return out;
}

// What the one engine answers for attributes nobody set. False: no such attribute here.
bool engine_answer(const Desc& d, cudnnBackendAttributeName_t name, Value& out) {
  switch (name) {
    case CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT:
      out = int64_value(1);
      return true;
    case CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE:
    case CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE:
      out = int64_value(0);
      return true;
    case CUDNN_ATTR_ENGINECFG_SHARED_MEMORY_USED:
      out = int32_value(0);
      return true;
    case CUDNN_ATTR_ENGINECFG_KNOB_CHOICES:
    case CUDNN_ATTR_ENGINE_KNOB_INFO:
      out = no_elements(CUDNN_TYPE_BACKEND_DESCRIPTOR);
      return true;
    case CUDNN_ATTR_ENGINE_NUMERICAL_NOTE:
      out = no_elements(CUDNN_TYPE_NUMERICAL_NOTE);
      return true;
    case CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE:
      out = no_elements(CUDNN_TYPE_BEHAVIOR_NOTE);
      return true;
    case CUDNN_ATTR_ENGINEHEUR_RESULTS: {
      // One engine config: engine 0 over the heuristics' graph.
      DescPtr engine = make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      engine->attrs[CUDNN_ATTR_ENGINE_OPERATION_GRAPH] = d.attrs.at(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
      engine->attrs[CUDNN_ATTR_ENGINE_GLOBAL_INDEX] = int64_value(0);
      engine->finalized = true;
      DescPtr config = make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      config->attrs[CUDNN_ATTR_ENGINECFG_ENGINE] = descriptor_value(engine);
      config->finalized = true;
      out = descriptor_value(config);
      return true;
    }
    default:
      return false;
  }
}

// Checks a descriptor has what its type needs when finalized.
cudnnStatus_t finalize(Desc& d) {
  auto need = [&](std::initializer_list<cudnnBackendAttributeName_t> names) {
    for (auto n : names)
      if (!d.has(n))
        return fail(CUDNN_STATUS_BAD_PARAM, "descriptor type " + std::to_string(int(d.type)) +
                                                " finalized without attribute " + std::to_string(int(n)));
    return CUDNN_STATUS_SUCCESS;
  };
  cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
  switch (d.type) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR:
      st = need({CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_ATTR_TENSOR_STRIDES,
                 CUDNN_ATTR_TENSOR_UNIQUE_ID});
      if (st == CUDNN_STATUS_SUCCESS &&
          d.all<int64_t>(CUDNN_ATTR_TENSOR_DIMENSIONS).size() != d.all<int64_t>(CUDNN_ATTR_TENSOR_STRIDES).size())
        st = fail(CUDNN_STATUS_BAD_PARAM, "tensor with as many strides as dimensions");
      break;
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
      st = need({CUDNN_ATTR_OPERATIONGRAPH_OPS});
      break;
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
      st = need({CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_ATTR_ENGINEHEUR_MODE});
      break;
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
      st = need({CUDNN_ATTR_ENGINE_OPERATION_GRAPH, CUDNN_ATTR_ENGINE_GLOBAL_INDEX});
      if (st == CUDNN_STATUS_SUCCESS && d.get<int64_t>(CUDNN_ATTR_ENGINE_GLOBAL_INDEX) != 0)
        st = fail(CUDNN_STATUS_NOT_SUPPORTED, "only engine 0 exists");
      break;
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
      st = need({CUDNN_ATTR_ENGINECFG_ENGINE});
      break;
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR: {
      st = need({CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG});
      if (st != CUDNN_STATUS_SUCCESS) break;
      DescPtr engine = d.desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG)->desc(CUDNN_ATTR_ENGINECFG_ENGINE);
      DescPtr graph = engine ? engine->desc(CUDNN_ATTR_ENGINE_OPERATION_GRAPH) : nullptr;
      if (!graph) return fail(CUDNN_STATUS_BAD_PARAM, "execution plan without an engine and its graph");
      const std::string why = hone::emu::cudnn::graph_unsupported(*graph);
      if (!why.empty()) st = fail(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN, why);
      break;
    }
    default:
      break;
  }
  if (st == CUDNN_STATUS_SUCCESS) d.finalized = true;
  return st;
}

}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t st) {
  switch (st) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS (emulated)";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM (emulated)";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED (emulated)";
    case CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN:
      return "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN (emulated)";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED (emulated)";
    default:
      return "cuDNN error (emulated)";
  }
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (!message || max_size == 0) return;
  std::strncpy(message, last_error.c_str(), max_size - 1);
  message[max_size - 1] = '\0';
  last_error.clear();
}

size_t cudnnGetVersion() {
  const char* v = std::getenv("HONE_EMU_CUDNN_VERSION");
  return v && *v ? size_t(std::strtoull(v, nullptr, 10)) : size_t(CUDNN_VERSION);
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  hone::emu::make_handle<Handle>(h);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  hone::emu::free_handle<Handle>(h);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  reinterpret_cast<Handle*>(h)->stream = s;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetStream(cudnnHandle_t h, cudaStream_t* s) {
  *s = reinterpret_cast<Handle*>(h)->stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t* out) {
  if (!out) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendCreateDescriptor without an output");
  *out = new Ref{make(type)};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t d) {
  delete ref(d);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendInitialize(cudnnBackendDescriptor_t) { return CUDNN_STATUS_SUCCESS; }

cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type, int64_t count, const void* elements) {
  if (!d || count < 0 || (count > 0 && !elements))
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendSetAttribute arguments");
  Value v;
  v.type = type;
  v.count = count;
  v.bytes.resize(size_t(count) * element_size(type));
  if (count) std::memcpy(v.bytes.data(), elements, v.bytes.size());
  if (type == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
    const auto* handles = static_cast<const cudnnBackendDescriptor_t*>(elements);
    for (int64_t i = 0; i < count; ++i) {
      if (!handles[i]) return fail(CUDNN_STATUS_BAD_PARAM, "null descriptor in attribute " + std::to_string(int(name)));
      v.descs.push_back(ref(handles[i])->d);
    }
  }
  ref(d)->d->attrs[name] = std::move(v);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const d, cudnnBackendAttributeName_t name,
                                       cudnnBackendAttributeType_t type, int64_t requested, int64_t* count,
                                       void* elements) {
  if (!d || requested < 0) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendGetAttribute arguments");
  const Desc& desc = *ref(d)->d;
  Value answer;
  const Value* v = nullptr;
  auto it = desc.attrs.find(name);
  if (it != desc.attrs.end()) {
    v = &it->second;
  } else if (engine_answer(desc, name, answer)) {
    v = &answer;
  } else {
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "attribute " + std::to_string(int(name)) + " of descriptor type " +
                                                std::to_string(int(desc.type)) + " is neither set nor emulated");
  }
  if (type != v->type)
    return fail(CUDNN_STATUS_BAD_PARAM, "attribute " + std::to_string(int(name)) + " read as another type");
  // No array (or none requested): only the count.
  const int64_t n = requested == 0 || !elements ? v->count : std::min(requested, v->count);
  if (count) *count = n;
  if (requested == 0 || !elements) return CUDNN_STATUS_SUCCESS;
  if (type == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
    auto* handles = static_cast<cudnnBackendDescriptor_t*>(elements);
    for (int64_t i = 0; i < n; ++i) {
      if (!handles[i]) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendGetAttribute into a null descriptor");
      ref(handles[i])->d = v->descs[size_t(i)];
    }
  } else {
    std::memcpy(elements, v->bytes.data(), size_t(n) * element_size(type));
  }
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t d) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnBackendFinalize of null");
  try {
    return finalize(*ref(d)->d);
  } catch (const std::exception& e) {
    return fail(CUDNN_STATUS_BAD_PARAM, e.what());
  }
}

cudnnStatus_t cudnnBackendExecute(cudnnHandle_t, cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack) {
  if (!plan || !pack || !ref(plan)->d->finalized) return fail(CUDNN_STATUS_BAD_PARAM, "execute needs a finalized plan");
  try {
    const Desc& p = *ref(plan)->d;
    const Desc& vp = *ref(pack)->d;
    const DescPtr graph = p.desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG)
                              ->desc(CUDNN_ATTR_ENGINECFG_ENGINE)
                              ->desc(CUDNN_ATTR_ENGINE_OPERATION_GRAPH);
    const std::vector<int64_t> uids = vp.all<int64_t>(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
    const std::vector<void*> ptrs = vp.all<void*>(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
    if (uids.size() != ptrs.size()) return fail(CUDNN_STATUS_BAD_PARAM, "variant pack: as many pointers as uids");
    std::map<int64_t, void*> pointers;
    for (size_t i = 0; i < uids.size(); ++i) pointers[uids[i]] = ptrs[i];
    const hone::emu::KernelActivity activity("cudnn_emulated_graph_sdpa");  // for a CUPTI client
    const std::string err = hone::emu::cudnn::graph_execute(*graph, pointers);
    return err.empty() ? CUDNN_STATUS_SUCCESS : fail(CUDNN_STATUS_EXECUTION_FAILED, err);
  } catch (const std::exception& e) {
    return fail(CUDNN_STATUS_EXECUTION_FAILED, e.what());
  }
}

cudnnStatus_t cudnnBackendPopulateCudaGraph(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t,
                                            cudaGraph_t) {
  return fail(CUDNN_STATUS_NOT_SUPPORTED, "CUDA graphs are not emulated");
}
cudnnStatus_t cudnnBackendUpdateCudaGraph(cudnnHandle_t, cudnnBackendDescriptor_t, cudnnBackendDescriptor_t,
                                          cudaGraph_t) {
  return fail(CUDNN_STATUS_NOT_SUPPORTED, "CUDA graphs are not emulated");
}
