#include "engine/core/gpu_trace.h"

#include <stdexcept>

#if defined(HONE_HAVE_CUPTI)
#include <cuda_runtime_api.h>
#include <cupti.h>

#include <cstdlib>
#include <mutex>
#endif

namespace hone {

#if defined(HONE_HAVE_CUPTI)

namespace {

// CUPTI hands filled buffers to a callback (from its own thread, or from the flush in stop()).
std::mutex g_mutex;
std::vector<GpuActivity>* g_sink = nullptr;
size_t g_dropped = 0;

constexpr size_t kBufferBytes = 8 << 20;

void check_cupti(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* s = nullptr;
  cuptiGetResultString(r, &s);
  throw std::runtime_error(std::string("CUPTI ") + what + " failed: " + (s ? s : "unknown error"));
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

const char* copy_kind_name(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "memcpy host->device";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "memcpy device->host";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "memcpy device->device";
    default:
      return "memcpy (other)";
  }
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mutex);
  CUpti_Activity* record = nullptr;
  while (g_sink && cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        g_sink->push_back({k->name ? k->name : "(unnamed kernel)", k->start, k->end});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        g_sink->push_back({copy_kind_name(m->copyKind), m->start, m->end});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        g_sink->push_back({"memset", m->start, m->end});
        break;
      }
      default:
        break;
    }
  }
  size_t dropped = 0;
  if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS) g_dropped += dropped;
  std::free(buffer);
}

constexpr CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                         CUPTI_ACTIVITY_KIND_MEMSET};

}  // namespace

std::string GpuTrace::unavailable_reason() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return "no CUDA device";
  return "";
}

void GpuTrace::start() {
  if (const std::string why = unavailable_reason(); !why.empty())
    throw std::runtime_error("GPU trace: unavailable: " + why);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_sink) throw std::logic_error("GPU trace: one trace at a time");
  g_sink = new std::vector<GpuActivity>();
  g_dropped = 0;
  static const bool registered = [] {
    check_cupti(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
    return true;
  }();
  (void)registered;
  for (CUpti_ActivityKind k : kKinds) check_cupti(cuptiActivityEnable(k), "cuptiActivityEnable");
  running_ = true;
}

std::vector<GpuActivity> GpuTrace::stop() {
  if (!running_) throw std::logic_error("GPU trace: stop() without start()");
  running_ = false;
  cudaDeviceSynchronize();
  for (CUpti_ActivityKind k : kKinds) cuptiActivityDisable(k);
  check_cupti(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<GpuActivity> out = std::move(*g_sink);
  delete g_sink;
  g_sink = nullptr;
  if (g_dropped)
    throw std::runtime_error("GPU trace: CUPTI dropped " + std::to_string(g_dropped) + " records (trace fewer steps)");
  return out;
}

#else  // no CUPTI in this build

std::string GpuTrace::unavailable_reason() {
#if defined(HONE_WITH_CUDA)
  return "this build has no CUPTI (the CUDA emulator, or a toolkit without it)";
#else
  return "this build has no CUDA";
#endif
}

void GpuTrace::start() { throw std::runtime_error("GPU trace: unavailable: " + unavailable_reason()); }

std::vector<GpuActivity> GpuTrace::stop() { throw std::logic_error("GPU trace: stop() without start()"); }

#endif

GpuTrace::~GpuTrace() {
  if (running_) try {
      stop();
    } catch (...) {
    }
}

}  // namespace hone
