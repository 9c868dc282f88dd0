// CUPTI's activity API, emulated: what the emulator runs (kernels by their launch-site name, the
// emulated cuBLASLt's GEMMs, copies and memsets) is written as CUPTI's own record structs into the
// client's buffers, handed back when full or flushed, so engine/core/gpu_trace.cpp (`hone bench
// --profile`) runs here as on a GPU. Timestamps are the host's clock around the emulated work.
#include <cupti.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "activity.h"

namespace hone::emu {

namespace {

std::mutex g_mu;
CUpti_BuffersCallbackRequestFunc g_request = nullptr;
CUpti_BuffersCallbackCompleteFunc g_complete = nullptr;
std::atomic<bool> g_kernels{false}, g_copies{false}, g_memsets{false};
std::atomic<size_t> g_dropped{0};
uint8_t* g_buffer = nullptr;
size_t g_size = 0, g_used = 0;
std::set<std::string> g_names;  // records point at their kernel's name: kept for the process

size_t record_size(CUpti_ActivityKind kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      return sizeof(CUpti_ActivityKernel10);
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      return sizeof(CUpti_ActivityMemcpy6);
    case CUPTI_ACTIVITY_KIND_MEMSET:
      return sizeof(CUpti_ActivityMemset4);
    default:
      return 0;
  }
}

// Hands the current buffer back to the client (under g_mu).
void complete_buffer() {
  if (!g_buffer) return;
  uint8_t* b = g_buffer;
  const size_t size = g_size, used = g_used;
  g_buffer = nullptr, g_size = g_used = 0;
  g_complete(nullptr, 0, b, size, used);
}

template <class Record>
void append(const Record& r) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_request || !g_complete) return;
  if (g_buffer && g_used + sizeof r > g_size) complete_buffer();
  if (!g_buffer) {
    size_t max_records = 0;
    g_request(&g_buffer, &g_size, &max_records);
    g_used = 0;
    if (!g_buffer || g_size < sizeof r) {
      g_buffer = nullptr;
      ++g_dropped;
      return;
    }
  }
  std::memcpy(g_buffer + g_used, &r, sizeof r);
  g_used += sizeof r;
}

// A record of CUPTI's struct R, zeroed but for its kind and times.
template <class R>
R new_record(CUpti_ActivityKind kind, uint64_t start_ns, uint64_t end_ns) {
  R r;
  std::memset(&r, 0, sizeof r);
  r.kind = kind, r.start = start_ns, r.end = end_ns;
  return r;
}

}  // namespace

uint64_t activity_clock_ns() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
bool recording_kernels() { return g_kernels; }
bool recording_copies() { return g_copies || g_memsets; }

void record_kernel(const char* name, uint64_t start_ns, uint64_t end_ns) {
  if (!g_kernels) return;
  auto k = new_record<CUpti_ActivityKernel10>(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, start_ns, end_ns);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    k.name = g_names.insert(name).first->c_str();
  }
  append(k);
}

void record_copy(cudaMemcpyKind kind, size_t bytes, uint64_t start_ns, uint64_t end_ns) {
  if (!g_copies) return;
  auto m = new_record<CUpti_ActivityMemcpy6>(CUPTI_ACTIVITY_KIND_MEMCPY, start_ns, end_ns);
  m.copyKind = kind == cudaMemcpyHostToDevice     ? CUPTI_ACTIVITY_MEMCPY_KIND_HTOD
               : kind == cudaMemcpyDeviceToHost   ? CUPTI_ACTIVITY_MEMCPY_KIND_DTOH
               : kind == cudaMemcpyDeviceToDevice ? CUPTI_ACTIVITY_MEMCPY_KIND_DTOD
                                                  : CUPTI_ACTIVITY_MEMCPY_KIND_UNKNOWN;
  m.bytes = bytes;
  append(m);
}

void record_memset(int value, size_t bytes, uint64_t start_ns, uint64_t end_ns) {
  if (!g_memsets) return;
  auto m = new_record<CUpti_ActivityMemset4>(CUPTI_ACTIVITY_KIND_MEMSET, start_ns, end_ns);
  m.value = uint32_t(value), m.bytes = bytes;
  append(m);
}

}  // namespace hone::emu

// ---- the activity API (declared by cupti_activity.h with C linkage) --------------------------------
using namespace hone::emu;

CUptiResult cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc request,
                                           CUpti_BuffersCallbackCompleteFunc complete) {
  if (!request || !complete) return CUPTI_ERROR_INVALID_PARAMETER;
  std::lock_guard<std::mutex> lock(g_mu);
  g_request = request, g_complete = complete;
  return CUPTI_SUCCESS;
}

static CUptiResult set_kind(CUpti_ActivityKind kind, bool on) {
  switch (kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      g_kernels = on;
      return CUPTI_SUCCESS;
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      g_copies = on;
      return CUPTI_SUCCESS;
    case CUPTI_ACTIVITY_KIND_MEMSET:
      g_memsets = on;
      return CUPTI_SUCCESS;
    default:
      return CUPTI_ERROR_INVALID_KIND;  // the emulator records no other kind
  }
}

CUptiResult cuptiActivityEnable(CUpti_ActivityKind kind) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!g_request) return CUPTI_ERROR_INVALID_OPERATION;  // CUPTI needs the callbacks first
  }
  return set_kind(kind, true);
}

CUptiResult cuptiActivityDisable(CUpti_ActivityKind kind) { return set_kind(kind, false); }

CUptiResult cuptiActivityFlushAll(uint32_t) {
  std::lock_guard<std::mutex> lock(g_mu);
  complete_buffer();
  return CUPTI_SUCCESS;
}

CUptiResult cuptiActivityGetNextRecord(uint8_t* buffer, size_t valid, CUpti_Activity** record) {
  if (!buffer || !record) return CUPTI_ERROR_INVALID_PARAMETER;
  size_t at = 0;
  if (*record) {
    const size_t size = record_size((*record)->kind);
    if (size == 0) return CUPTI_ERROR_INVALID_KIND;
    at = size_t(reinterpret_cast<uint8_t*>(*record) - buffer) + size;
  }
  if (at >= valid) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = reinterpret_cast<CUpti_Activity*>(buffer + at);
  return CUPTI_SUCCESS;
}

CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext, uint32_t, size_t* dropped) {
  if (!dropped) return CUPTI_ERROR_INVALID_PARAMETER;
  *dropped = g_dropped.exchange(0);
  return CUPTI_SUCCESS;
}

CUptiResult cuptiGetResultString(CUptiResult result, const char** str) {
  if (!str) return CUPTI_ERROR_INVALID_PARAMETER;
  *str = result == CUPTI_SUCCESS ? "CUPTI_SUCCESS (emulated)" : "a CUPTI error (emulated)";
  return CUPTI_SUCCESS;
}
