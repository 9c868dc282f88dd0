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
#include <cstdint>

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
