#include "engine/core/kernel_profile.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

namespace hone {

namespace {

std::string demangle(const std::string& raw) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(raw.c_str(), nullptr, nullptr, &status), std::free);
  return status == 0 && d ? std::string(d.get()) : raw;
}

void erase_all(std::string& s, const std::string& what) {
  for (size_t at; (at = s.find(what)) != std::string::npos;) s.erase(at, what.size());
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string short_kernel_name(const std::string& raw) {
  std::string s = demangle(raw);
  erase_all(s, "(anonymous namespace)::");
  if (s.rfind("void ", 0) == 0) s.erase(0, 5);
  // The argument list: the first '(' outside template brackets.
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (s[i] == '(' && depth == 0) {
      s.resize(i);
      break;
    }
  }
  // Namespace qualifiers of our own code (the kernels are ours when they have them).
  for (const char* ns : {"hone::kernels::cuda::", "hone::kernels::", "hone::"}) erase_all(s, ns);
  // The name's own qualifiers: keep what follows the last "::" outside template brackets.
  depth = 0;
  size_t start = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>') --depth;
    if (depth == 0 && s[i] == ':' && s[i + 1] == ':') start = i + 2;
  }
  s.erase(0, start);
  if (s.size() > 90) s = s.substr(0, 87) + "...";
  return s;
}

std::string kernel_category(const std::string& name) {
  const std::string n = lower(name);
  if (contains(n, "memcpy")) return "copy/cast";
  if (contains(n, "memset")) return "memset";
  if (contains(n, "sdpa") || contains(n, "fmha") || contains(n, "flash") || contains(n, "attention") ||
      contains(n, "attn"))
    return "attention";
  // cuDNN's convolution kernels: "..._implicit_gemm_..." / "...fprop...", "dgrad", "wgrad" (after the
  // attention names: its flash kernels are "..._fprop_..." too).
  if ((contains(n, "conv") && !contains(n, "convert")) || contains(n, "wgrad") || contains(n, "dgrad") ||
      contains(n, "implicit_gemm") || contains(n, "fprop"))
    return "convolution";
  if (contains(n, "gemm") || contains(n, "xmma") || contains(n, "cutlass") || contains(n, "cublas") ||
      contains(n, "nvjet") || contains(n, "splitkreduce"))
    return "GEMM";
  if (contains(n, "layernorm") || contains(n, "layer_norm") || contains(n, "batchnorm") || contains(n, "bn_") ||
      contains(n, "channel_partial") || contains(n, "channel_total"))
    return "norm";
  if (contains(n, "ce_forward") || contains(n, "ce_backward") || contains(n, "ce_total") || contains(n, "ce_count") ||
      contains(n, "ce_scale_grad") || contains(n, "cross_entropy") || contains(n, "softmax"))
    return "softmax/loss";
  if (contains(n, "adamw") || contains(n, "sgd") || contains(n, "sumsq") || contains(n, "norm_total") ||
      contains(n, "clip"))
    return "optimizer";
  if (contains(n, "dropout")) return "dropout";
  if (contains(n, "index_select") || contains(n, "index_add") || contains(n, "embedding")) return "embedding";
  if (contains(n, "copy") || contains(n, "cast")) return "copy/cast";
  if (contains(n, "fill")) return "memset";
  return "elementwise/other";
}

KernelProfile summarize_gpu_activity(const std::vector<GpuActivity>& activities) {
  KernelProfile p;
  p.activities = int64_t(activities.size());
  if (activities.empty()) return p;
  // Busy time: the union of the intervals; the gaps between them, named by the activity that ended
  // last before each and the one that ends it.
  std::vector<size_t> order(activities.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto end_of = [&](size_t i) { return std::max(activities[i].start_ns, activities[i].end_ns); };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return activities[a].start_ns < activities[b].start_ns; });
  std::map<std::pair<std::string, std::string>, IdleGapRow> gaps;
  uint64_t busy = 0, cur_start = activities[order[0]].start_ns, cur_end = end_of(order[0]);
  size_t last = order[0];  // the activity that ends at cur_end
  for (const size_t i : order) {
    const uint64_t s = activities[i].start_ns, e = end_of(i);
    if (s > cur_end) {
      busy += cur_end - cur_start;
      const double us = double(s - cur_end) * 1e-3;
      if (us < KernelProfile::kLongGapUs) {
        p.short_gaps_ms += us * 1e-3, p.short_gaps += 1;
      } else {
        const std::string before = short_kernel_name(activities[last].name),
                          after = short_kernel_name(activities[i].name);
        IdleGapRow& g = gaps[{before, after}];
        g.before = before, g.after = after;
        g.count += 1, g.total_ms += us * 1e-3, g.max_us = std::max(g.max_us, us);
      }
      cur_start = s;
    }
    if (e >= cur_end) cur_end = e, last = i;
  }
  busy += cur_end - cur_start;
  p.busy_ms = double(busy) * 1e-6;
  p.window_ms = double(cur_end - activities[order[0]].start_ns) * 1e-6;
  for (auto& [key, g] : gaps) p.long_gaps.push_back(g);
  std::stable_sort(p.long_gaps.begin(), p.long_gaps.end(),
                   [](const IdleGapRow& a, const IdleGapRow& b) { return a.total_ms > b.total_ms; });

  std::map<std::string, KernelProfileRow> by_name, by_category;
  for (const GpuActivity& a : activities) {
    const std::string name = short_kernel_name(a.name);
    const double ms = double(std::max(a.start_ns, a.end_ns) - a.start_ns) * 1e-6;
    KernelProfileRow& k = by_name[name];
    if (k.name.empty()) k.name = name, k.category = kernel_category(a.name);
    k.calls += 1, k.total_ms += ms;
  }
  for (auto& [name, k] : by_name) {
    KernelProfileRow& c = by_category[k.category];
    c.name = c.category = k.category;
    c.calls += k.calls, c.total_ms += k.total_ms;
  }
  // Shares of the summed activity time (equal to the busy time when nothing overlaps).
  double total = 0;
  for (const auto& [n, k] : by_name) total += k.total_ms;
  auto finish = [&](std::map<std::string, KernelProfileRow>& m, std::vector<KernelProfileRow>& out) {
    for (auto& [n, r] : m) {
      r.share = total > 0 ? r.total_ms / total : 0;
      out.push_back(r);
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.total_ms > b.total_ms; });
  };
  finish(by_name, p.kernels);
  finish(by_category, p.categories);
  return p;
}

std::string format_kernel_profile(const KernelProfile& p, int64_t steps, double wall_ms_per_step, int top) {
  std::string out;
  char line[256];
  const double n = double(std::max<int64_t>(steps, 1));
  std::snprintf(line, sizeof line,
                "[profile] %lld traced steps: GPU busy %.2f of %.2f ms per step (%.1f%%; the rest the GPU waits "
                "for the host), %.0f kernels/copies per step\n",
                (long long)steps, p.busy_ms / n, wall_ms_per_step,
                wall_ms_per_step > 0 ? 100.0 * p.busy_ms / n / wall_ms_per_step : 0.0, double(p.activities) / n);
  out += line;
  out += "[profile] by kind of work (ms per step, share of GPU time, calls per step):\n";
  for (const KernelProfileRow& c : p.categories) {
    std::snprintf(line, sizeof line, "[profile]   %-18s %8.3f ms %6.1f%% %7.1f\n", c.name.c_str(), c.total_ms / n,
                  100 * c.share, double(c.calls) / n);
    out += line;
  }
  std::snprintf(line, sizeof line, "[profile] top %d kernels (ms per step, share, calls per step, mean us):\n",
                std::min<int>(top, int(p.kernels.size())));
  out += line;
  for (int i = 0; i < top && i < int(p.kernels.size()); ++i) {
    const KernelProfileRow& k = p.kernels[i];
    std::snprintf(line, sizeof line, "[profile]   %8.3f ms %6.1f%% %7.1f %9.1f  %s [%s]\n", k.total_ms / n,
                  100 * k.share, double(k.calls) / n, 1e3 * k.total_ms / double(k.calls), k.name.c_str(),
                  k.category.c_str());
    out += line;
  }
  double long_ms = 0;
  int64_t long_count = 0;
  for (const IdleGapRow& g : p.long_gaps) long_ms += g.total_ms, long_count += g.count;
  std::snprintf(line, sizeof line,
                "[profile] GPU idle inside the traced window: %.3f ms per step in %.1f gaps of %.0f us or more, "
                "%.3f ms in %.1f shorter ones; the longest (ms per step, gaps per step, longest us, between):\n",
                long_ms / n, double(long_count) / n, KernelProfile::kLongGapUs, p.short_gaps_ms / n,
                double(p.short_gaps) / n);
  out += line;
  for (int i = 0; i < top && i < int(p.long_gaps.size()); ++i) {
    const IdleGapRow& g = p.long_gaps[i];
    std::snprintf(line, sizeof line, "[profile]   %8.3f ms %7.1f %9.1f  %.80s -> %.80s\n", g.total_ms / n,
                  double(g.count) / n, g.max_us, g.before.c_str(), g.after.c_str());
    out += line;
  }
  return out;
}

}  // namespace hone
