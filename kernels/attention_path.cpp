// Which implementation ran an attention call on CUDA: path names and the record of the last one
// (kernels/attention.h; the rule itself is inline there).
#include <cstdio>
#include <mutex>
#include <set>
#include <string>

#include "kernels/attention.h"

namespace hone::kernels {

const char* attention_dtype_name(AttentionDType t) {
  switch (t) {
    case AttentionDType::F32: return "float32";
    case AttentionDType::F64: return "float64";
    case AttentionDType::BF16: return "bf16";
    case AttentionDType::F16: return "f16";
  }
  return "?";
}

std::string cudnn_sdpa_path_name(const SdpaCall& c) {
  std::string s = std::string("cuDNN fused SDPA (") + attention_dtype_name(c.dtype);
  if (c.causal) s += ", causal";
  if (c.key_mask) s += ", padding mask";
  if (c.dropout_p > 0.f) s += ", dropout";
  if (c.qkv_packed) s += ", packed qkv";
  return s + ")";
}

namespace {
struct PathLog {
  std::mutex mu;
  std::string last;
  std::set<std::string> said;
};
PathLog& path_log() {
  static auto* log = new PathLog();  // never destroyed: attention may run during static destruction
  return *log;
}
}  // namespace

void note_attention_path(const std::string& path) {
  PathLog& log = path_log();
  std::lock_guard<std::mutex> lock(log.mu);
  log.last = path;
  if (log.said.insert(path).second) std::fprintf(stderr, "[hone] attention: %s\n", path.c_str());
}

std::string last_attention_path() {
  PathLog& log = path_log();
  std::lock_guard<std::mutex> lock(log.mu);
  return log.last;
}

}  // namespace hone::kernels
