// Where a GPU's time goes: a summary of the kernels, copies and memsets a tracer recorded
// (engine/core/gpu_trace.h records them with CUPTI; `hone bench gpt2 --profile` prints this).
//
// Host-only and device-independent, so it is tested without a GPU. The summary answers the
// questions a step's time raises: how much of the wall time the GPU was busy at all (the rest is
// the host not feeding it: launch overhead, synchronisation), and which kernels and kinds of work
// (GEMM, attention, norms, copies, ...) take the busy time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hone {

// One kernel, copy or memset as the tracer saw it: its (mangled) name and GPU timestamps in ns.
struct GpuActivity {
  std::string name;
  uint64_t start_ns = 0, end_ns = 0;
};

struct KernelProfileRow {
  std::string name;      // a kernel's short name, or a category
  std::string category;  // kernel_category(name) for kernel rows
  int64_t calls = 0;
  double total_ms = 0;
  double share = 0;  // of the busy time
};

// Idle stretches of the GPU inside the traced window between two given activities (short names):
// where the host kept it waiting (a synchronisation, host work between launches).
struct IdleGapRow {
  std::string before, after;  // the activity that ended last before the gap, the one that began it
  int64_t count = 0;
  double total_ms = 0, max_us = 0;
};

struct KernelProfile {
  std::vector<KernelProfileRow> kernels;     // one row per short name, most time first
  std::vector<KernelProfileRow> categories;  // one row per category, most time first
  // The gaps of kLongGapUs or more, one row per (before, after) pair, most time first; those shorter
  // (a launch's usual distance from the previous kernel's end) are only summed.
  static constexpr double kLongGapUs = 5.0;
  std::vector<IdleGapRow> long_gaps;
  double short_gaps_ms = 0;
  int64_t short_gaps = 0;
  double busy_ms = 0;                        // time at least one activity ran (overlapping ones counted once)
  double window_ms = 0;                      // first start to last end
  int64_t activities = 0;
};

// The demangled name without return type, arguments and namespaces ("copy_flat_kernel<float,
// __nv_bfloat16>"); cuBLAS/cuDNN kernels keep their (long) names, cut to 90 characters.
std::string short_kernel_name(const std::string& raw);

// "GEMM", "attention", "convolution", "norm", "softmax/loss", "optimizer", "dropout", "embedding",
// "copy/cast", "memset" or "elementwise/other", from a (raw or short) name.
std::string kernel_category(const std::string& name);

KernelProfile summarize_gpu_activity(const std::vector<GpuActivity>& activities);

// The report, per step (`steps` traced steps, `wall_ms_per_step` measured by the host around
// them): busy time against wall time, the categories, the `top` kernels and the `top` idle gaps.
// Each line starts with "[profile]" (tools/device-check.sh copies them into its summary).
std::string format_kernel_profile(const KernelProfile& p, int64_t steps, double wall_ms_per_step, int top);

}  // namespace hone
