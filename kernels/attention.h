// Scaled-dot-product attention, forward and backward, for training GPT-2 / BERT on the CPU.
//
//   out = dropout(softmax(scale * q k^T + mask)) v
//
// The fast versions (kernels/cpu/attention.cpp) follow FlashAttention-2 (Dao, 2023): scores are
// computed one 64x64 tile at a time with an online softmax, so memory is O(block) per thread,
// never O(q_len x kv_len) per head. The backward pass recomputes the probabilities from q, k and
// the saved log-sum-exp instead of storing them. The ref:: versions materialise the whole
// probability matrix per head and exist for tests.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/env_switch.h"

namespace hone::kernels {

struct AttentionShape {
  int64_t batch, heads, q_len, kv_len, head_dim;
};

struct AttentionOptions {
  float scale;               // usually 1/sqrt(head_dim)
  bool causal = false;       // query i sees key j iff j <= i + (kv_len - q_len)  (bottom-right aligned, so a query block appended after a KV cache works)
  const uint8_t* key_valid = nullptr;  // optional [batch, kv_len]: 1 = attend, 0 = padding (Hugging Face attention_mask convention)
  float dropout_p = 0.f;     // dropout on the attention probabilities
  uint64_t seed = 0, offset = 0;  // Philox stream; keep(b,h,i,j) = philox::uniform(seed, offset, ((b*heads+h)*q_len+i)*kv_len+j) >= dropout_p, kept probs scaled by 1/(1-p)
};

// q [B,H,Tq,D], k,v [B,H,Tk,D], out [B,H,Tq,D], all contiguous. lse [B,H,Tq] receives the
// log-sum-exp of each row's scaled, masked scores (saved for backward; -inf for a row where every
// key is masked, whose output is then 0).
template <class T>
void attention_forward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                       const T* v, T* out, T* lse);

// Given dout, recompute probabilities block by block from q,k,lse and produce dq, dk, dv
// (overwritten, not accumulated). `out` is the forward output (used for the rowwise
// D_i = sum(dout_i * out_i) term). Deterministic: the result does not depend on the thread count.
template <class T>
void attention_backward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

// ---- which implementation runs an attention call on CUDA (attention_path.cpp) --------------------
// bfloat16/float16 attention on CUDA goes to cuDNN's fused scaled-dot-product attention
// (kernels/cuda/attention_cudnn.cpp, in builds with cuDNN and its frontend headers); everything else,
// and whatever cuDNN cannot build a plan for, runs our own kernel. The host part of that decision
// lives here, free of CUDA, so that it is tested on any machine.
enum class AttentionDType { F32, F64, BF16, F16 };
const char* attention_dtype_name(AttentionDType t);  // "float32", "bf16", ...

struct SdpaCall {
  AttentionShape shape{};
  AttentionDType dtype = AttentionDType::F32;
  bool causal = false;
  bool key_mask = false;  // a key padding mask (key_valid) is given
  float dropout_p = 0.f;
  // q, k, v are the three C-wide slices of one [B, T, 3C] tensor (GPT-2's c_attn output; C = H * D)
  // and the output is [B, T, C]: cuDNN reads and writes them through strides, with no copy into
  // [B, H, T, D]. Self-attention only (Tq = Tk), without a padding mask.
  bool qkv_packed = false;
};

// Dropout inside cuDNN's attention reads a 16-bit 0/1 mask [B, H, Tq, Tk] that exists for the
// duration of one forward or backward call (the backward regenerates it from the same seed and
// offset). Above this size our own kernel runs instead, which regenerates its mask per tile.
constexpr int64_t kSdpaMaxDropoutMaskBytes = int64_t(4) << 30;

// "" when cuDNN's fused SDPA may take the call (it can still fail to build a plan), otherwise why
// our kernel runs, as a short phrase ("float32 inputs", "head dim 100 is not a multiple of 8"...).
// cuDNN's path takes: bf16/f16; head dim a multiple of 8 and <= 128; more than one query row (a
// decode step of generation would need a new cuDNN graph for every KV length); causal only with
// Tq <= Tk, and with a padding mask or dropout only when Tq == Tk (cuDNN's bottom-right causal mask
// combines with neither the additive bias that carries the padding mask nor dropout); dropout only
// while its mask fits kSdpaMaxDropoutMaskBytes. Dropout reaches cuDNN as a mask we generate from our
// own Philox stream (cuDNN's built-in RNG would draw a different mask than the CPU for the same seed
// and offset), so both paths drop the same probabilities. Inline (like the rest of this block that
// attention_cudnn.cpp uses), so that the CUDA library needs nothing from the CPU one.
inline std::string cudnn_sdpa_unsupported(const SdpaCall& c) {
  const AttentionShape& s = c.shape;
  if (c.dtype != AttentionDType::BF16 && c.dtype != AttentionDType::F16)
    return std::string(c.dtype == AttentionDType::F64 ? "float64" : "float32") + " inputs";
  if (s.batch <= 0 || s.heads <= 0 || s.q_len <= 0 || s.kv_len <= 0 || s.head_dim <= 0) return "empty tensors";
  if (s.head_dim % 8 != 0) return "head dim " + std::to_string(s.head_dim) + " is not a multiple of 8";
  if (s.head_dim > 128) return "head dim " + std::to_string(s.head_dim) + " is above 128";
  if (s.q_len == 1) return "a single query row";
  if (c.causal && s.q_len > s.kv_len) return "causal with more queries than keys";
  if (c.qkv_packed && s.q_len != s.kv_len) return "packed qkv with Tq != Tk";
  if (c.qkv_packed && c.key_mask) return "packed qkv with a padding mask";
  if (c.causal && c.key_mask && s.q_len != s.kv_len)
    return "causal with a padding mask and Tq != Tk (cuDNN's bottom-right causal mask takes no bias)";
  if (c.dropout_p > 0.f) {
    if (c.causal && s.q_len != s.kv_len)
      return "causal with dropout and Tq != Tk (cuDNN's bottom-right causal mask takes no dropout)";
    const double mask_bytes = double(s.batch) * double(s.heads) * double(s.q_len) * double(s.kv_len) * 2.0;
    if (mask_bytes > double(kSdpaMaxDropoutMaskBytes))
      return "a dropout mask of " + std::to_string(int64_t(mask_bytes / (1 << 20))) + " MiB (above " +
             std::to_string(kSdpaMaxDropoutMaskBytes >> 20) + " MiB)";
  }
  return "";
}

// False when HONE_CUDNN_ATTENTION=0 (or HONE_CUDNN=0, which turns off every cuDNN path) is set.
inline bool cudnn_attention_enabled() { return !switched_off("HONE_CUDNN_ATTENTION") && !switched_off("HONE_CUDNN"); }

// The key of one cached pair of cuDNN graphs (forward, and backward when training): everything a
// graph depends on. Equal keys share graphs.
// (The dropout probability is part of the key because the graphs carry 1/(1-p) as a constant.)
struct SdpaGraphKey {
  std::array<int64_t, 14> v{};  // device, B, H, Tq, Tk, D, dtype, causal, mask, training, scale bits, dropout bits,
                                // qkv_packed, deterministic_algorithms()
  bool operator<(const SdpaGraphKey& o) const { return v < o.v; }
  bool operator==(const SdpaGraphKey& o) const { return v == o.v; }
};
inline SdpaGraphKey sdpa_graph_key(int device, const SdpaCall& c, float scale, bool training) {
  uint32_t scale_bits = 0, dropout_bits = 0;
  std::memcpy(&scale_bits, &scale, sizeof scale_bits);
  const float dropout = c.dropout_p > 0.f ? c.dropout_p : 0.f;
  std::memcpy(&dropout_bits, &dropout, sizeof dropout_bits);
  const AttentionShape& s = c.shape;
  return {{device, s.batch, s.heads, s.q_len, s.kv_len, s.head_dim, static_cast<int64_t>(c.dtype), c.causal, c.key_mask,
           training, static_cast<int64_t>(scale_bits), static_cast<int64_t>(dropout_bits), c.qkv_packed,
           deterministic_algorithms()}};
}

// "cuDNN fused SDPA (bf16, causal, padding mask, dropout)": the path name of a call cuDNN took.
std::string cudnn_sdpa_path_name(const SdpaCall& c);

// The padding mask reaches cuDNN as an additive bias: 0 for a key to attend, this for padding
// (-2^15: exact in bf16 and f16, far enough below any real score for exp() to give exactly 0,
// and finite, so a row whose keys are all padding stays finite; its output is then zeroed, as our
// kernel gives it).
constexpr float kSdpaPaddingBias = -32768.f;

// Records which path the last attention call on CUDA took ("cuDNN fused SDPA (bf16, causal)",
// "own kernel (float32 inputs)", ...) and prints "[hone] attention: <path>" on stderr the first
// time the process sees that path.
void note_attention_path(const std::string& path);
// The path of the last call ("" before any); for tests.
std::string last_attention_path();

}  // namespace hone::kernels

namespace hone::kernels::ref {

// Naive version materialising the full [Tq,Tk] probability matrix per head, same semantics
// (mask, dropout with the same Philox stream), for tests. Computes in double for every T.
template <class T>
void attention_forward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                       const T* v, T* out, T* lse);
template <class T>
void attention_backward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

}  // namespace hone::kernels::ref
