// CUDA scaled-dot-product attention: our own kernel, the fallback of cuDNN's fused attention
// (attention_cudnn.cpp; the two small helpers of that path are at the end of this file).
// FlashAttention-style: the [Tq, Tk] score matrix never exists.
//
// Forward: one warp per query row. The warp walks the keys 32 at a time, lane j scoring key
// j0 + j; an online softmax (running max m and normaliser l) rescales the output accumulator,
// which is spread over the lanes (lane owns dims lane, lane + 32, ...). Dropout multiplies a
// probability after it entered l (dropout comes after the softmax), with the Philox stream of
// kernels/attention.h, so masks equal the CPU's.
// Backward: D_i = dout_i . out_i first; then dq with one warp per query row (walking keys) and
// dk, dv with one warp per key row (walking queries). Each output is summed by one warp in a
// fixed order: deterministic, no atomics, at the price of computing the scores twice.
//
// A block's kWarps warps own consecutive rows of one (batch, head) and walk the other side in
// step. For float with head dims up to kMaxTiledD, each step's 32 rows of the walked matrices are
// staged once per block in shared memory (coalesced loads; rows padded to D + 1 floats, so lane j
// reading row j hits a bank of its own) and every warp reads them there: kWarps times less global
// traffic than each warp reading them itself, which the untiled instantiation (double, or wider
// heads, whose tiles would not fit) still does.
//
// Head dims up to kMaxD = 256 (8 accumulators per lane).
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_geometry.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/philox.h"

namespace hone::kernels::cuda {

namespace {

constexpr int kWarps = 8;  // own rows per block
constexpr int kTile = 32;  // rows of the walked side per step: one per lane
constexpr int kPerLane = 8;
constexpr int kMaxD = 32 * kPerLane;
constexpr int kMaxTiledD = 128;  // float tiles of K and V (or Q and dout): 2 x 32 x 129 x 4 B = 33 KB

template <class A, class T>
__device__ __forceinline__ A dot_row(const A* smem_row, const T* row, int64_t D) {
  A s = 0;
  for (int64_t d = 0; d < D; ++d) s += smem_row[d] * A(row[d]);
  return s;
}

// The row this warp owns: own rows of length `len` (Tq or Tk) come in chunks of kWarps per
// (batch, head), one chunk per block. `last` is the block's last real row (for the walk's bounds).
struct OwnRow {
  int64_t bh, i, row, first, last;
  bool active;  // false for the warps of a chunk's tail beyond len
};
__device__ __forceinline__ OwnRow own_row(int64_t len) {
  const int64_t chunks = (len + kWarps - 1) / kWarps;
  const int64_t bh = blockIdx.x / chunks, first = (blockIdx.x % chunks) * kWarps, i = first + threadIdx.x / 32;
  return {bh, i, bh * len + i, first, min(len, first + kWarps) - 1, i < len};
}

// The walked side: two [len, D] matrices of one (batch, head) (k and v, or q and dout), 32 rows per
// step, read from the shared-memory tiles (kTiled) or from global memory.
template <class T, bool kTiled>
struct Walk {
  const T *m0, *m1;
  int64_t len, D;
  T *t0, *t1;  // the tiles, kTile rows of D + 1 (kTiled only)

  // Every thread of the block calls it (kTiled: it synchronises the block).
  __device__ void stage(int64_t r0) {
    if constexpr (kTiled) {
      __syncthreads();  // every warp is done with the previous step's tiles
      for (int64_t x = threadIdx.x; x < kTile * D; x += blockDim.x) {
        const int64_t r = x / D, d = x % D;
        const bool in = r0 + r < len;
        t0[r * (D + 1) + d] = in ? m0[(r0 + r) * D + d] : T(0);
        t1[r * (D + 1) + d] = in ? m1[(r0 + r) * D + d] : T(0);
      }
      __syncthreads();
    }
  }
  __device__ const T* row0(int64_t r0, int64_t r) const { return kTiled ? t0 + r * (D + 1) : m0 + (r0 + r) * D; }
  __device__ const T* row1(int64_t r0, int64_t r) const { return kTiled ? t1 + r * (D + 1) : m1 + (r0 + r) * D; }
};

// Shared memory of a launch: `per_warp` own vectors of D per warp, then the two tiles.
template <class T>
size_t shared_bytes(int per_warp, int64_t D, bool tiled) {
  return size_t(kWarps * per_warp * D + (tiled ? 2 * kTile * (D + 1) : 0)) * sizeof(T);
}

template <class T, bool kTiled>
__global__ void attention_forward_kernel(AttentionGeometry g, T scale, T keep_scale, const T* q, const T* k, const T* v,
                                         T* out, T* lse) {
  using A = T;  // float or double
  extern __shared__ unsigned char smem_raw[];
  A* qs = reinterpret_cast<A*>(smem_raw) + (threadIdx.x / 32) * g.D;
  A* tiles = reinterpret_cast<A*>(smem_raw) + kWarps * g.D;
  const int lane = threadIdx.x & 31;
  const OwnRow o = own_row(g.Tq);
  const int64_t i = o.i, b = o.bh / g.H;
  Walk<T, kTiled> kv{k + o.bh * g.Tk * g.D, v + o.bh * g.Tk * g.D, g.Tk, g.D, tiles, tiles + kTile * (g.D + 1)};
  if (o.active)
    for (int64_t d = lane; d < g.D; d += 32) qs[d] = q[o.row * g.D + d];
  __syncwarp();

  A acc[kPerLane];
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) acc[c] = 0;
  A m = -INFINITY, l = 0;
  const int64_t key_end = o.active ? key_end_of(g, i) : 0;
  // Tiled, every warp takes every step of the block's walk (the last row sees the most keys).
  const int64_t walk_end = kTiled ? key_end_of(g, o.last) : key_end;
  for (int64_t j0 = 0; j0 < walk_end; j0 += kTile) {
    kv.stage(j0);
    if (j0 >= key_end) continue;  // warp-uniform: this row sees no more keys
    const int64_t j = j0 + lane;
    const bool vis = visible(g, b, i, j);
    const A s = vis ? dot_row(qs, kv.row0(j0, lane), g.D) * scale : A(-INFINITY);
    const A m_new = max(m, warp_max(s));
    if (m_new == A(-INFINITY)) continue;  // nothing visible yet
    const A corr = exp_acc(m - m_new);    // 0 when m was -inf
    const A p = vis ? exp_acc(s - m_new) : A(0);
    l = l * corr + warp_sum(p);
    m = m_new;
    const A pz = p * (vis ? dropout_factor(g, o.bh, i, j, keep_scale) : A(0));
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) acc[c] *= corr;
    const int64_t nk = min(int64_t(kTile), key_end - j0);
    for (int jj = 0; jj < nk; ++jj) {
      const A w = __shfl_sync(0xffffffffu, pz, jj);
      if (w == A(0)) continue;  // warp-uniform
      const A* vr = kv.row1(j0, jj);
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < g.D) acc[c] += w * vr[d];
      }
    }
  }
  if (!o.active) return;
  const bool any = l > A(0);
  const A inv = any ? A(1) / l : A(0);
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < g.D) out[o.row * g.D + d] = acc[c] * inv;
  }
  if (lane == 0) lse[o.row] = any ? m + log_acc(l) : A(-INFINITY);
}

// D_i = dout_i . out_i (= sum_j P_ij dP_ij), one warp per row.
template <class T>
__global__ void attention_rowdot_kernel(int64_t rows, int64_t D, const T* out, const T* dout, T* di) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  T s = 0;
  for (int64_t d = lane; d < D; d += 32) s += out[row * D + d] * dout[row * D + d];
  s = warp_sum(s);
  if (lane == 0) di[row] = s;
}

// dq_i = scale * sum_j dS_ij k_j with dS = P (dP - D_i), dP = (dout_i . v_j) Z_ij.
template <class T, bool kTiled>
__global__ void attention_dq_kernel(AttentionGeometry g, T scale, T keep_scale, const T* q, const T* k, const T* v,
                                    const T* lse, const T* di, const T* dout, T* dq) {
  using A = T;
  extern __shared__ unsigned char smem_raw[];
  A* qs = reinterpret_cast<A*>(smem_raw) + (threadIdx.x / 32) * 2 * g.D;
  A* dos = qs + g.D;
  A* tiles = reinterpret_cast<A*>(smem_raw) + kWarps * 2 * g.D;
  const int lane = threadIdx.x & 31;
  const OwnRow o = own_row(g.Tq);
  const int64_t i = o.i, b = o.bh / g.H;
  Walk<T, kTiled> kv{k + o.bh * g.Tk * g.D, v + o.bh * g.Tk * g.D, g.Tk, g.D, tiles, tiles + kTile * (g.D + 1)};
  if (o.active)
    for (int64_t d = lane; d < g.D; d += 32) qs[d] = q[o.row * g.D + d], dos[d] = dout[o.row * g.D + d];
  __syncwarp();
  const A L = o.active ? lse[o.row] : A(-INFINITY), Di = o.active ? di[o.row] : A(0);
  A acc[kPerLane];
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) acc[c] = 0;
  const int64_t key_end = L == A(-INFINITY) ? 0 : key_end_of(g, i);
  const int64_t walk_end = kTiled ? key_end_of(g, o.last) : key_end;
  for (int64_t j0 = 0; j0 < walk_end; j0 += kTile) {
    kv.stage(j0);
    if (j0 >= key_end) continue;  // warp-uniform
    const int64_t j = j0 + lane;
    A ds = 0;
    if (visible(g, b, i, j)) {
      const A p = exp_acc(dot_row(qs, kv.row0(j0, lane), g.D) * scale - L);
      const A dp = dot_row(dos, kv.row1(j0, lane), g.D) * dropout_factor(g, o.bh, i, j, keep_scale);
      ds = p * (dp - Di);
    }
    const int64_t nk = min(int64_t(kTile), key_end - j0);
    for (int jj = 0; jj < nk; ++jj) {
      const A w = __shfl_sync(0xffffffffu, ds, jj);
      if (w == A(0)) continue;
      const A* kr = kv.row0(j0, jj);
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < g.D) acc[c] += w * kr[d];
      }
    }
  }
  if (!o.active) return;
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < g.D) dq[o.row * g.D + d] = acc[c] * scale;
  }
}

// dv_j = sum_i P_ij Z_ij dout_i, dk_j = scale * sum_i dS_ij q_i: one warp per key row.
template <class T, bool kTiled>
__global__ void attention_dkdv_kernel(AttentionGeometry g, T scale, T keep_scale, const T* q, const T* k, const T* v,
                                      const T* lse, const T* di, const T* dout, T* dk, T* dv) {
  using A = T;
  extern __shared__ unsigned char smem_raw[];
  A* ks = reinterpret_cast<A*>(smem_raw) + (threadIdx.x / 32) * 2 * g.D;
  A* vs = ks + g.D;
  A* tiles = reinterpret_cast<A*>(smem_raw) + kWarps * 2 * g.D;
  const int lane = threadIdx.x & 31;
  const OwnRow o = own_row(g.Tk);
  const int64_t j = o.i, b = o.bh / g.H;
  Walk<T, kTiled> qd{q + o.bh * g.Tq * g.D, dout + o.bh * g.Tq * g.D, g.Tq, g.D, tiles, tiles + kTile * (g.D + 1)};
  if (o.active)
    for (int64_t d = lane; d < g.D; d += 32) ks[d] = k[o.row * g.D + d], vs[d] = v[o.row * g.D + d];
  __syncwarp();
  A acc_k[kPerLane], acc_v[kPerLane];
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) acc_k[c] = 0, acc_v[c] = 0;
  const bool key_ok = o.active && (!g.key_valid || g.key_valid[b * g.Tk + j]);
  // Under the causal mask only queries i >= j - shift see key j.
  auto first_query = [&](int64_t key) { return g.causal ? max(int64_t(0), key - g.shift) : int64_t(0); };
  const int64_t q_begin = key_ok ? first_query(j) : g.Tq;
  // Tiled, the block walks from the first query its first key sees (in steps aligned to it).
  const int64_t walk_begin = kTiled ? first_query(o.first) : q_begin;
  for (int64_t i0 = walk_begin; i0 < g.Tq; i0 += kTile) {
    qd.stage(i0);
    if (i0 + kTile <= q_begin) continue;  // warp-uniform: no query of this step sees the key
    const int64_t i = i0 + lane;
    A pz = 0, ds = 0;
    if (i < g.Tq && key_ok) {
      const A L = lse[o.bh * g.Tq + i];
      if (L != A(-INFINITY) && visible(g, b, i, j)) {
        const A p = exp_acc(dot_row(ks, qd.row0(i0, lane), g.D) * scale - L);
        const A z = dropout_factor(g, o.bh, i, j, keep_scale);
        const A dp = dot_row(vs, qd.row1(i0, lane), g.D) * z;
        pz = p * z;
        ds = p * (dp - di[o.bh * g.Tq + i]);
      }
    }
    const int64_t nq = min(int64_t(kTile), g.Tq - i0);
    for (int ii = 0; ii < nq; ++ii) {
      const A wv = __shfl_sync(0xffffffffu, pz, ii);
      const A wk = __shfl_sync(0xffffffffu, ds, ii);
      if (wv == A(0) && wk == A(0)) continue;
      const A* qr = qd.row0(i0, ii);
      const A* dr = qd.row1(i0, ii);
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < g.D) {
          acc_v[c] += wv * dr[d];
          acc_k[c] += wk * qr[d];
        }
      }
    }
  }
  if (!o.active) return;
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < g.D) {
      dk[o.row * g.D + d] = acc_k[c] * scale;
      dv[o.row * g.D + d] = acc_v[c];
    }
  }
}

AttentionGeometry geometry(const AttentionShape& s, const AttentionOptions& o) {
  if (s.head_dim > kMaxD)
    throw std::invalid_argument("cuda attention: head_dim " + std::to_string(s.head_dim) + " exceeds " +
                                std::to_string(kMaxD) + " (the fallback kernel's limit)");
  return attention_geometry(s, o);
}

unsigned warp_blocks(int64_t rows) { return static_cast<unsigned>((rows + kWarps - 1) / kWarps); }
// Blocks of the own-row kernels: a chunk of kWarps rows of one (batch, head) each.
unsigned own_row_blocks(const AttentionShape& s, int64_t len) {
  return static_cast<unsigned>(s.batch * s.heads * ((len + kWarps - 1) / kWarps));
}
template <class T> bool tiled(const AttentionShape& s) { return std::is_same_v<T, float> && s.head_dim <= kMaxTiledD; }

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k, const T* v, T* out,
                       T* lse, cudaStream_t stream) {
  const AttentionGeometry g = geometry(s, o);
  const int64_t rows = s.batch * s.heads * s.q_len;
  if (rows == 0 || s.head_dim == 0) return;
  const bool t = tiled<T>(s);
  const size_t smem = shared_bytes<T>(1, s.head_dim, t);
  const unsigned blocks = own_row_blocks(s, s.q_len);
  if (t)
    attention_forward_kernel<T, true><<<blocks, kWarps * 32, smem, stream>>>(g, T(o.scale), keep_scale_of<T>(o), q, k,
                                                                           v, out, lse);
  else
    attention_forward_kernel<T, false><<<blocks, kWarps * 32, smem, stream>>>(g, T(o.scale), keep_scale_of<T>(o), q,
                                                                            k, v, out, lse);
  check_launch("attention_forward");
}

template <class T>
void attention_backward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv, cudaStream_t stream) {
  const AttentionGeometry g = geometry(s, o);
  const int64_t qrows = s.batch * s.heads * s.q_len, krows = s.batch * s.heads * s.kv_len;
  if (s.head_dim == 0) return;
  Scratch di(qrows * sizeof(T), stream);
  const bool t = tiled<T>(s);
  const size_t smem = shared_bytes<T>(2, s.head_dim, t);
  const T sc = T(o.scale), ks = keep_scale_of<T>(o);
  if (qrows > 0) {
    attention_rowdot_kernel<T><<<warp_blocks(qrows), kWarps * 32, 0, stream>>>(qrows, s.head_dim, out, dout,
                                                                               di.as<T>());
    check_launch("attention_backward (rowdot)");
    const unsigned blocks = own_row_blocks(s, s.q_len);
    if (t)
      attention_dq_kernel<T, true><<<blocks, kWarps * 32, smem, stream>>>(g, sc, ks, q, k, v, lse, di.as<T>(), dout, dq);
    else
      attention_dq_kernel<T, false><<<blocks, kWarps * 32, smem, stream>>>(g, sc, ks, q, k, v, lse, di.as<T>(), dout,
                                                                          dq);
    check_launch("attention_backward (dq)");
  }
  if (krows > 0) {
    const unsigned blocks = own_row_blocks(s, s.kv_len);
    if (t)
      attention_dkdv_kernel<T, true><<<blocks, kWarps * 32, smem, stream>>>(g, sc, ks, q, k, v, lse, di.as<T>(), dout,
                                                                            dk, dv);
    else
      attention_dkdv_kernel<T, false><<<blocks, kWarps * 32, smem, stream>>>(g, sc, ks, q, k, v, lse, di.as<T>(), dout,
                                                                             dk, dv);
    check_launch("attention_backward (dk, dv)");
  }
}

// ---- helpers of the cuDNN path (attention_cudnn.cpp) -------------------------------------------------------
namespace {

template <class D>
__global__ void padding_bias_kernel(int64_t n, int64_t rows, int64_t Tk, const uint8_t* key_valid, D* bias) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = idx / (rows * Tk), j = idx % Tk;
    bias[idx] = store<D>(key_valid[b * Tk + j] ? 0.f : kSdpaPaddingBias);
  }
}

// One thread per Philox block (four consecutive elements of the [B, H, Tq, Tk] mask), with the keep test of
// dropout_factor above: element idx is kept iff philox::uniform(seed, offset, idx) >= p.
template <class D>
__global__ void dropout_mask_kernel(int64_t n, float p, uint64_t seed, uint64_t offset, D* mask) {
  const int64_t blocks = int64_t(philox::blocks_for(uint64_t(n)));
  HONE_GRID_STRIDE(b, blocks) {
    philox::for_each_in_block(seed, offset, uint64_t(b), uint64_t(n),
                              [&](uint64_t i, float u) { mask[i] = store<D>(u >= p ? 1.f : 0.f); });
  }
}

template <class D>
__global__ void scale_copy_kernel(int64_t n, float factor, const D* src, D* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = store<D>(factor * load(src[i]));
}

// One block per batch element: the first valid key f; the queries that see no key are then a prefix of the rows
// (with the causal diagonal at shift = Tk - Tq, row i sees keys j <= i + shift), zeroed in every head.
template <class D>
__global__ void zero_unseeing_rows_kernel(int64_t H, int64_t Tq, int64_t Tk, int64_t Dh, bool causal,
                                          const uint8_t* key_valid, D* x) {
  __shared__ unsigned long long first;
  const int64_t b = blockIdx.x;
  if (threadIdx.x == 0) first = static_cast<unsigned long long>(Tk);
  __syncthreads();
  unsigned long long mine = static_cast<unsigned long long>(Tk);
  for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x)
    if (key_valid[b * Tk + j]) {
      mine = static_cast<unsigned long long>(j);
      break;
    }
  atomicMin(&first, mine);  // a minimum: the same whatever the order
  __syncthreads();
  const int64_t f = static_cast<int64_t>(first), shift = Tk - Tq;
  const int64_t unseen = f - shift < 0 ? 0 : f - shift < Tq ? f - shift : Tq;  // causal rows i < f - shift
  const int64_t n_rows = f == Tk ? Tq : causal ? unseen : 0;
  const int64_t per_head = n_rows * Dh;
  for (int64_t idx = threadIdx.x; idx < H * per_head; idx += blockDim.x) {
    const int64_t h = idx / per_head, r = idx % per_head;  // r: offset inside the head's leading rows
    x[((b * H + h) * Tq) * Dh + r] = store<D>(0.f);
  }
}

}  // namespace

template <class T>
void attention_padding_bias(int64_t batch, int64_t rows, int64_t kv_len, const uint8_t* key_valid, T* bias,
                            cudaStream_t stream) {
  const int64_t n = batch * rows * kv_len;
  if (n <= 0) return;
  padding_bias_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, rows, kv_len, key_valid, dptr(bias));
  check_launch("attention_padding_bias");
}

template <class T>
void attention_dropout_mask(const AttentionShape& s, float p, uint64_t seed, uint64_t offset, T* mask,
                            cudaStream_t stream) {
  const int64_t n = s.batch * s.heads * s.q_len * s.kv_len;
  if (n <= 0) return;
  const int64_t blocks = int64_t(philox::blocks_for(uint64_t(n)));
  dropout_mask_kernel<<<grid_for(blocks), kThreads, 0, stream>>>(n, p, seed, offset, dptr(mask));
  check_launch("attention_dropout_mask");
}

template <class T>
void attention_zero_unseeing_rows(const AttentionShape& s, bool causal, const uint8_t* key_valid, const T* src, T* dst,
                                  cudaStream_t stream) {
  const int64_t n = s.batch * s.heads * s.q_len * s.head_dim;
  if (n <= 0) return;
  if (dst != src) check(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
  if (!key_valid) return;
  zero_unseeing_rows_kernel<<<static_cast<unsigned>(s.batch), kThreads, 0, stream>>>(
      s.heads, s.q_len, s.kv_len, s.head_dim, causal, key_valid, dptr(dst));
  check_launch("attention_zero_unseeing_rows");
}

template <class T>
void attention_scale_copy(int64_t n, float factor, const T* src, T* dst, cudaStream_t stream) {
  if (n <= 0) return;
  scale_copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, factor, dptr(src), dptr(dst));
  check_launch("attention_scale_copy");
}

#define HONE_INSTANTIATE(T)                                                                                    \
  template void attention_scale_copy<T>(int64_t, float, const T*, T*, cudaStream_t);                           \
  template void attention_padding_bias<T>(int64_t, int64_t, int64_t, const uint8_t*, T*, cudaStream_t);        \
  template void attention_dropout_mask<T>(const AttentionShape&, float, uint64_t, uint64_t, T*, cudaStream_t); \
  template void attention_zero_unseeing_rows<T>(const AttentionShape&, bool, const uint8_t*, const T*, T*,     \
                                                cudaStream_t);
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

#define HONE_INSTANTIATE(T)                                                                                \
  template void attention_forward<T>(const AttentionShape&, const AttentionOptions&, const T*, const T*,   \
                                     const T*, T*, T*, cudaStream_t);                                      \
  template void attention_backward<T>(const AttentionShape&, const AttentionOptions&, const T*, const T*,  \
                                      const T*, const T*, const T*, const T*, T*, T*, T*, cudaStream_t);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
