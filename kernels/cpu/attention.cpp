// CPU scaled-dot-product attention after FlashAttention-2 (Dao, 2023, "FlashAttention-2: Faster
// Attention with Better Parallelism and Work Partitioning").
//
// Forward (FA2 Algorithm 1): each task owns one block of 64 queries, walks the key blocks with an
// online softmax (running row max m and row sum l, rescaling the output accumulator when m grows)
// and writes out = acc / l and lse = m + log(l) once at the end. Only one 64x64 score tile per
// thread exists at a time; the only per-call buffer is K (and V for backward) repacked block-
// transposed, the size of K itself.
//
// Backward (FA2 Algorithm 2): per 64x64 tile, recompute P = exp(S - lse) (no softmax needed,
// lse is saved), then dV += Pd^T dO, dP = dO V^T, dS = P * (dP - D_i), dK += dS^T Q, dQ += dS K,
// with D_i = rowsum(dO * O) computed up front. Every output element sums its tile contributions
// in a fixed order (dK/dV over query blocks in order, dQ over key blocks in order) whatever the
// thread count, so the result is bitwise deterministic. Two partitions give that same order:
//  - per head (a thread owns a whole head's dQ/dK/dV; one pass; the cheap one when there are
//    enough heads to keep every thread busy), and
//  - two passes (tasks over key blocks compute dK/dV, then tasks over query blocks compute dQ;
//    recomputes S and dP once more but parallelises a single head).
// Both call the same non-inlined tile function, so they agree bit for bit.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/philox.h"

namespace hone::kernels {
namespace {

// Tile sizes. A 64x64 float score tile is 16 KiB; with the transposed key/value blocks it stays
// in L2 next to the 64-row output accumulator.
constexpr int64_t kBQ = 64;
constexpr int64_t kBK = 64;

// exp that gcc vectorises (glibc's vector expf is only used under -ffast-math), ~1 ulp:
// exp(x) = 2^n * exp(r), n = round(x / ln2), |r| <= ln2/2, with Cephes' degree-6 polynomial.
// Anything below -87.3 (a masked score, -inf) gives exactly 0, so masked entries need no branch.
inline float vexp(float x) {
  const float xc = std::clamp(x, -87.3f, 88.3f);
  // Adding 1.5 * 2^23 rounds to an integer and leaves n in the low mantissa bits.
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;  // ln2 split in two for accuracy
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float pow2n = std::bit_cast<float>((std::bit_cast<int32_t>(t) - 0x4B400000 + 127) << 23);
  return x < -87.3f ? 0.f : p * pow2n;
}
// Double is the testing precision: accuracy over speed.
inline double vexp(double x) { return std::exp(x); }

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// Everything about the problem that the tile code needs.
template <class T>
struct Problem {
  int64_t H, Tq, Tk, D;
  int64_t shift;  // Tk - Tq: the causal diagonal is bottom-right aligned
  bool causal;
  const uint8_t* key_valid;
  T scale;
  float drop_p;
  T keep_scale;  // 1 / (1 - p)
  uint64_t seed, offset;
  // Small problems (the tests' many tiny calls, single decode steps) run on the calling thread:
  // a parallel region costs microseconds, and far more when the cores are oversubscribed. The
  // results are the same either way.
  bool parallel;

  Problem(const AttentionShape& s, const AttentionOptions& o)
      : H(s.heads), Tq(s.q_len), Tk(s.kv_len), D(s.head_dim), shift(s.kv_len - s.q_len),
        causal(o.causal), key_valid(o.key_valid), scale(T(o.scale)), drop_p(o.dropout_p),
        keep_scale(o.dropout_p > 0.f ? T(1) / (T(1) - T(o.dropout_p)) : T(1)), seed(o.seed),
        offset(o.offset),
        parallel(s.batch * s.heads * s.q_len * s.kv_len * s.head_dim >= (int64_t(1) << 16)) {}

  int64_t q_blocks() const { return (Tq + kBQ - 1) / kBQ; }
  int64_t k_blocks() const { return (Tk + kBK - 1) / kBK; }
  // Under causal masking no query in [q0, q0 + nq) sees a key at or past this: those key blocks
  // are skipped entirely (half the work for a square causal problem).
  int64_t key_end(int64_t q0, int64_t nq) const {
    return causal ? std::clamp<int64_t>(q0 + nq + shift, 0, Tk) : Tk;
  }
  // How many of the keys [k0, k0 + nk) query i may see under the causal mask (a prefix).
  int64_t visible(int64_t i, int64_t k0, int64_t nk) const {
    return causal ? std::clamp<int64_t>(i + shift + 1 - k0, 0, nk) : nk;
  }
  // The padding mask of keys [k0, k0 + nk) as an additive bias: 0 for a real key, -inf for
  // padding and past nk. Returns false when the whole block is padding (padded tails of a batch
  // are skipped).
  bool key_bias(int64_t b, int64_t k0, int64_t nk, T* bias) const {
    bool any = false;
    for (int64_t j = 0; j < kBK; ++j) {
      const bool ok = j < nk && (!key_valid || key_valid[b * Tk + k0 + j]);
      bias[j] = ok ? T(0) : kNegInf<T>;
      any |= ok;
    }
    return any;
  }
  // z[j] = keep / (1 - p) for keys [k0, k0 + nk) of row (bh, i), 0 past nk. Philox yields four
  // consecutive stream elements per counter; the up to 17 counters a row of 64 keys touches run
  // in structure-of-arrays form so the ten rounds vectorise. Same arithmetic as
  // philox::philox4x32_10 (the tests compare against philox::uniform).
  void dropout_factors(int64_t bh, int64_t i, int64_t k0, int64_t nk, T* z) const {
    constexpr int kCtr = kBK / 4 + 1;
    const uint64_t first = uint64_t((bh * Tq + i) * Tk + k0), c_first = offset + (first >> 2);
    uint32_t c0[kCtr], c1[kCtr], c2[kCtr], c3[kCtr];
    for (int n = 0; n < kCtr; ++n) {
      const uint64_t c = c_first + uint64_t(n);
      c0[n] = uint32_t(c), c1[n] = uint32_t(c >> 32), c2[n] = 0, c3[n] = 0;
    }
    uint32_t key0 = uint32_t(seed), key1 = uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      for (int n = 0; n < kCtr; ++n) {
        const uint64_t p0 = uint64_t(0xD2511F53u) * c0[n], p1 = uint64_t(0xCD9E8D57u) * c2[n];
        const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[n] ^ key0, n2 = uint32_t(p0 >> 32) ^ c3[n] ^ key1;
        c0[n] = n0, c1[n] = uint32_t(p1), c2[n] = n2, c3[n] = uint32_t(p0);
      }
      key0 += 0x9E3779B9u;
      key1 += 0xBB67AE85u;
    }
    uint32_t bits[4 * kCtr];
    for (int n = 0; n < kCtr; ++n)
      bits[4 * n] = c0[n], bits[4 * n + 1] = c1[n], bits[4 * n + 2] = c2[n], bits[4 * n + 3] = c3[n];
    const uint32_t* u = bits + (first & 3);
    const float p = drop_p;  // locals: z might alias the members, which would block vectorising
    const T ks = keep_scale;
#pragma omp simd
    for (int64_t j = 0; j < kBK; ++j)
      z[j] = ((j < nk) & (philox::to_unit_float(u[j]) >= p)) ? ks : T(0);
  }
};

// The key (or value) tensor [BH, Tk, D] repacked as [BH, key block, D, kBK]: each block
// transposed, zero-padded to kBK keys. Done once per call (O(size of k) memory, not O(Tq x Tk)),
// so a score row becomes a sum over d of fixed-length, contiguous AXPYs.
template <class T>
std::vector<T> pack_transposed(const T* x, int64_t BH, int64_t Tk, int64_t D, bool parallel) {
  const int64_t nkb = (Tk + kBK - 1) / kBK;
  std::vector<T> packed(size_t(BH * nkb * D * kBK));
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t kb = 0; kb < nkb; ++kb) {
      const int64_t k0 = kb * kBK, nk = std::min(kBK, Tk - k0);
      const T* src = x + (bh * Tk + k0) * D;
      T* dst = packed.data() + (bh * nkb + kb) * D * kBK;
      for (int64_t j = 0; j < kBK; ++j)
        for (int64_t d = 0; d < D; ++d) dst[d * kBK + j] = j < nk ? src[j * D + d] : T(0);
    }
  return packed;
}

// One 64-byte vector (16 floats, 8 doubles; a zmm register with AVX-512, split by the compiler
// without it). GCC's vector extension rather than intrinsics: the same code serves both types.
// The tile products below are register-blocked with it: plain loops over a local array made gcc
// keep the accumulators on the stack.
template <class T>
struct Simd {
  typedef T V __attribute__((vector_size(64)));
  static constexpr int64_t kLanes = 64 / sizeof(T);
};
template <class T>
using Vec = typename Simd<T>::V;
// By reference, not by value: a 64-byte vector in a signature changes the ABI without AVX-512
// (the HONE_NATIVE=OFF build), which gcc warns about.
template <class T>
inline void vload(Vec<T>& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}
template <class T>
inline void vstore(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

// s[r * kBK + j] = scale * a_r . b_j for R rows: R x kBK accumulators stay in registers (16
// vectors), and each vector of bt loaded serves R rows.
template <class T, int R>
inline void tile_dot_rows(const T* a, const T* bt, int64_t D, T scale, T* s) {
  constexpr int64_t L = Simd<T>::kLanes, NV = kBK / L;
  Vec<T> acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int64_t v = 0; v < NV; ++v) acc[r][v] = Vec<T>{};
  for (int64_t d = 0; d < D; ++d) {
    Vec<T> b[NV];
    for (int64_t v = 0; v < NV; ++v) vload(b[v], bt + d * kBK + v * L);
    for (int r = 0; r < R; ++r) {
      const T x = a[r * D + d];
      for (int64_t v = 0; v < NV; ++v) acc[r][v] += x * b[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int64_t v = 0; v < NV; ++v) vstore(s + r * kBK + v * L, acc[r][v] * scale);
}

// s[i * kBK + j] = scale * a_i . b_j for i < nq, all kBK columns (bt is b transposed, [D][kBK]).
template <class T, int DC>
void tile_dot(const T* a, int64_t nq, const T* bt, int64_t D_, T scale, T* s) {
  const int64_t D = DC ? DC : D_;
  constexpr int R = int(16 / (kBK / Simd<T>::kLanes));  // float: 4 rows, double: 2
  int64_t i = 0;
  for (; i + R <= nq; i += R) tile_dot_rows<T, R>(a + i * D, bt, D, scale, s + i * kBK);
  for (; i < nq; ++i) tile_dot_rows<T, 1>(a + i * D, bt, D, scale, s + i * kBK);
}

// For R rows k: y[k * D : (k + 1) * D] += sum_{r < n} w[k * wk + r * wr] * m[r * D : (r + 1) * D],
// D = DC a multiple of the vector width. The y rows stay in registers across r, and each vector of
// m loaded serves R rows.
template <class T, int DC, int R>
inline void accumulate_rows_simd(T* y, const T* w, int64_t wk, int64_t wr, const T* m, int64_t n) {
  constexpr int64_t L = Simd<T>::kLanes, NV = DC / L;
  Vec<T> acc[R][NV];
  for (int k = 0; k < R; ++k)
    for (int64_t v = 0; v < NV; ++v) vload(acc[k][v], y + k * DC + v * L);
  for (int64_t r = 0; r < n; ++r) {
    Vec<T> mv[NV];
    for (int64_t v = 0; v < NV; ++v) vload(mv[v], m + r * DC + v * L);
    for (int k = 0; k < R; ++k) {
      const T x = w[k * wk + r * wr];
      for (int64_t v = 0; v < NV; ++v) acc[k][v] += x * mv[v];
    }
  }
  for (int k = 0; k < R; ++k)
    for (int64_t v = 0; v < NV; ++v) vstore(y + k * DC + v * L, acc[k][v]);
}

// For rows k < nrows: y_k[0:D] += sum_{r < n} w[k * wk + r * wr] * m[r * D : (r + 1) * D], y_k
// at y + k * D. All four "weights times rows" products are this: P V and dS K (rows = queries,
// m = keys/values), Pd^T dO and dS^T Q (rows = keys, m = query-side rows).
template <class T, int DC>
void accumulate_rows(T* y, int64_t nrows, const T* w, int64_t wk, int64_t wr, const T* m, int64_t n,
                     int64_t D_) {
  if constexpr (DC > 0 && DC % Simd<T>::kLanes == 0) {
    constexpr int R = int(std::max<int64_t>(1, 16 / (DC / Simd<T>::kLanes)));
    int64_t k = 0;
    for (; k + R <= nrows; k += R)
      accumulate_rows_simd<T, DC, R>(y + k * DC, w + k * wk, wk, wr, m, n);
    for (; k < nrows; ++k) accumulate_rows_simd<T, DC, 1>(y + k * DC, w + k * wk, wk, wr, m, n);
  } else {
    const int64_t D = DC ? DC : D_;
    for (int64_t k = 0; k < nrows; ++k)
      for (int64_t r = 0; r < n; ++r) {
        const T x = w[k * wk + r * wr];
        T* yk = y + k * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) yk[d] += x * m[r * D + d];
      }
  }
}

// ---- forward ---------------------------------------------------------------------------------

template <class T>
struct ForwardScratch {
  std::vector<T> s, acc, m, l, bias, z;
  explicit ForwardScratch(int64_t D)
      : s(kBQ * kBK), acc(kBQ * D), m(kBQ), l(kBQ), bias(kBK), z(kBK) {}
};

// One block of up to 64 queries of head bh (FA2 Algorithm 1, lines 5-15). kt: the packed K^T.
template <class T, int DC>
void forward_block(const Problem<T>& P, int64_t bh, int64_t q0, const T* q, const T* kt,
                   const T* v, T* out, T* lse, ForwardScratch<T>& w) {
  const int64_t D = DC ? DC : P.D;
  const int64_t nq = std::min(kBQ, P.Tq - q0), b = bh / P.H, nkb = P.k_blocks();
  const T* qb = q + (bh * P.Tq + q0) * D;
  const T* vh = v + bh * P.Tk * D;
  T* s = w.s.data();
  T* acc = w.acc.data();
  const T* bias = w.bias.data();
  std::fill(w.acc.begin(), w.acc.end(), T(0));
  std::fill(w.m.begin(), w.m.end(), kNegInf<T>);
  std::fill(w.l.begin(), w.l.end(), T(0));

  const int64_t kend = P.key_end(q0, nq);
  for (int64_t k0 = 0; k0 < kend; k0 += kBK) {
    const int64_t nk = std::min(kBK, kend - k0);
    if (!P.key_bias(b, k0, nk, w.bias.data())) continue;
    tile_dot<T, DC>(qb, nq, kt + (bh * nkb + k0 / kBK) * D * kBK, D, P.scale, s);

    for (int64_t i = 0; i < nq; ++i) {
      T* si = s + i * kBK;
      const int64_t vis = P.visible(q0 + i, k0, nk);
      T mx = kNegInf<T>;
#pragma omp simd reduction(max : mx)
      for (int64_t j = 0; j < kBK; ++j) {
        const T x = j < vis ? si[j] + bias[j] : kNegInf<T>;
        si[j] = x;
        mx = x > mx ? x : mx;
      }
      const T m_new = std::max(w.m[i], mx);
      if (m_new == kNegInf<T>) {  // nothing visible in this row yet: contributes nothing
        std::fill(si, si + kBK, T(0));
        continue;
      }
      // Online softmax: the running sum and accumulator were relative to the old max.
      const T alpha = vexp(w.m[i] - m_new);  // 0 when the old max was -inf
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < kBK; ++j) {
        si[j] = vexp(si[j] - m_new);
        sum += si[j];
      }
      w.l[i] = w.l[i] * alpha + sum;  // l counts every probability: dropout comes after softmax
      w.m[i] = m_new;
      if (P.drop_p > 0.f) {
        T* z = w.z.data();
        P.dropout_factors(bh, q0 + i, k0, nk, z);
#pragma omp simd
        for (int64_t j = 0; j < kBK; ++j) si[j] *= z[j];
      }
      if (alpha != T(1)) {
        T* ai = acc + i * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) ai[d] *= alpha;
      }
    }
    accumulate_rows<T, DC>(acc, nq, s, kBK, 1, vh + k0 * D, nk, D);  // acc += P V
  }

  // FA2 lines 12-13: normalise once at the end; an all-masked row (l == 0) outputs 0, lse -inf.
  for (int64_t i = 0; i < nq; ++i) {
    const T l = w.l[i];
    const T inv = l > T(0) ? T(1) / l : T(0);
    T* oi = out + (bh * P.Tq + q0 + i) * D;
    for (int64_t d = 0; d < D; ++d) oi[d] = acc[i * D + d] * inv;
    lse[bh * P.Tq + q0 + i] = l > T(0) ? w.m[i] + std::log(l) : kNegInf<T>;
  }
}

template <class T, int DC>
void forward(const Problem<T>& P, int64_t BH, const T* q, const T* k, const T* v, T* out, T* lse) {
  const int64_t nqb = P.q_blocks();
  const std::vector<T> kt = pack_transposed(k, BH, P.Tk, P.D, P.parallel);
#pragma omp parallel if (P.parallel)
  {
    ForwardScratch<T> w(P.D);
    // Dynamic: under causal masking later query blocks have more key blocks.
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t bh = 0; bh < BH; ++bh)
      for (int64_t qb = 0; qb < nqb; ++qb)
        forward_block<T, DC>(P, bh, qb * kBQ, q, kt.data(), v, out, lse, w);
  }
}

// ---- backward --------------------------------------------------------------------------------

template <class T>
struct BackwardScratch {
  std::vector<T> s, dp, bias, z;
  BackwardScratch() : s(kBQ * kBK), dp(kBQ * kBK), bias(kBK), z(kBK) {}
};

template <class T>
struct BackwardArgs {
  const T *q, *k, *kt, *vt, *dout, *lse, *di;  // kt, vt: K and V packed by pack_transposed
  T *dq, *dk, *dv;
};

// The (query block q0, key block k0) tile of head bh: adds its share to dK/dV (do_kv) and/or dQ
// (do_q). noinline so both partitions run the very same code (bitwise-equal results).
template <class T, int DC>
__attribute__((noinline)) void backward_tile(const Problem<T>& P, const BackwardArgs<T>& a,
                                             int64_t bh, int64_t q0, int64_t k0, bool do_kv,
                                             bool do_q, BackwardScratch<T>& w) {
  const int64_t D = DC ? DC : P.D;
  const int64_t nq = std::min(kBQ, P.Tq - q0), b = bh / P.H;
  if (k0 >= P.key_end(q0, nq)) return;  // causal: the whole tile is above the diagonal
  const int64_t nk = std::min(kBK, P.Tk - k0);
  const T* bias = w.bias.data();
  if (!P.key_bias(b, k0, nk, w.bias.data())) return;

  const T* qb = a.q + (bh * P.Tq + q0) * D;
  const T* dob = a.dout + (bh * P.Tq + q0) * D;
  const T* kb = a.k + (bh * P.Tk + k0) * D;
  const int64_t packed = (bh * P.k_blocks() + k0 / kBK) * D * kBK;
  T* s = w.s.data();
  T* dp = w.dp.data();
  tile_dot<T, DC>(qb, nq, a.kt + packed, D, P.scale, s);  // S
  tile_dot<T, DC>(dob, nq, a.vt + packed, D, T(1), dp);   // dO V^T

  // Turn S into Pd = P * Z (what multiplied V) and dP into scale * dS, in place.
  T* z = w.z.data();
  if (P.drop_p <= 0.f) std::fill(w.z.begin(), w.z.end(), T(1));
  const T scale = P.scale;
  for (int64_t i = 0; i < nq; ++i) {
    const T lse = a.lse[bh * P.Tq + q0 + i], di = a.di[bh * P.Tq + q0 + i];
    // lse = -inf: every key of the row was masked, P = 0 (and exp(-inf - -inf) would be NaN).
    const int64_t vis = lse == kNegInf<T> ? 0 : P.visible(q0 + i, k0, nk);
    T* si = s + i * kBK;
    T* dpi = dp + i * kBK;
    if (P.drop_p > 0.f) P.dropout_factors(bh, q0 + i, k0, nk, z);
#pragma omp simd
    for (int64_t j = 0; j < kBK; ++j) {
      const T p = j < vis ? vexp(si[j] + bias[j] - lse) : T(0);
      // dP = (dO V^T) * Z;  dS = P * (dP - D_i), where D_i = sum_j P dP = dO_i . O_i.
      dpi[j] = p * (dpi[j] * z[j] - di) * scale;
      si[j] = p * z[j];
    }
  }
  if (do_kv) {
    accumulate_rows<T, DC>(a.dv + (bh * P.Tk + k0) * D, nk, s, 1, kBK, dob, nq, D);  // Pd^T dO
    accumulate_rows<T, DC>(a.dk + (bh * P.Tk + k0) * D, nk, dp, 1, kBK, qb, nq, D);  // dS^T Q
  }
  if (do_q)
    accumulate_rows<T, DC>(a.dq + (bh * P.Tq + q0) * D, nq, dp, kBK, 1, kb, nk, D);  // dS K
}

template <class T, int DC>
void backward(const Problem<T>& P, int64_t BH, const BackwardArgs<T>& a) {
  const int64_t nqb = P.q_blocks(), nkb = P.k_blocks();
  // Per-head partition when every thread gets at least two heads; otherwise the two-pass one.
  // Either gives the same bits, so the choice may depend on the thread count.
  const bool per_head = BH >= 2 * int64_t(omp_get_max_threads());
#pragma omp parallel if (P.parallel)
  {
    BackwardScratch<T> w;
    if (per_head) {
#pragma omp for schedule(dynamic)
      for (int64_t bh = 0; bh < BH; ++bh)
        for (int64_t kb = 0; kb < nkb; ++kb)
          for (int64_t qb = 0; qb < nqb; ++qb)
            backward_tile<T, DC>(P, a, bh, qb * kBQ, kb * kBK, true, true, w);
    } else {
#pragma omp for collapse(2) schedule(dynamic)
      for (int64_t bh = 0; bh < BH; ++bh)
        for (int64_t kb = 0; kb < nkb; ++kb)
          for (int64_t qb = 0; qb < nqb; ++qb)
            backward_tile<T, DC>(P, a, bh, qb * kBQ, kb * kBK, true, false, w);
#pragma omp for collapse(2) schedule(dynamic)
      for (int64_t bh = 0; bh < BH; ++bh)
        for (int64_t qb = 0; qb < nqb; ++qb)
          for (int64_t kb = 0; kb < nkb; ++kb)
            backward_tile<T, DC>(P, a, bh, qb * kBQ, kb * kBK, false, true, w);
    }
  }
}

// Head dims known at compile time get register-resident rows; 64 is GPT-2's and BERT's.
template <class F>
void dispatch_head_dim(int64_t D, F&& f) {
  if (D == 64)
    f(std::integral_constant<int, 64>{});
  else
    f(std::integral_constant<int, 0>{});
}

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                       const T* v, T* out, T* lse) {
  const Problem<T> P(s, o);
  dispatch_head_dim(s.head_dim, [&](auto dc) {
    forward<T, decltype(dc)::value>(P, s.batch * s.heads, q, k, v, out, lse);
  });
}

template <class T>
void attention_backward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  const Problem<T> P(s, o);
  const int64_t BH = s.batch * s.heads, D = s.head_dim;
  const int64_t nq = BH * s.q_len, nk = BH * s.kv_len;
  // D_i = dO_i . O_i (FA2 Algorithm 2, line 4), and zeroed outputs for the tiles to add into.
  std::vector<T> di(nq);
#pragma omp parallel for schedule(static) if (P.parallel)
  for (int64_t r = 0; r < nq; ++r) {
    T acc = 0;
    for (int64_t d = 0; d < D; ++d) acc += dout[r * D + d] * out[r * D + d];
    di[r] = acc;
    std::fill(dq + r * D, dq + (r + 1) * D, T(0));
  }
#pragma omp parallel for schedule(static) if (P.parallel)
  for (int64_t r = 0; r < nk; ++r) {
    std::fill(dk + r * D, dk + (r + 1) * D, T(0));
    std::fill(dv + r * D, dv + (r + 1) * D, T(0));
  }
  const std::vector<T> kt = pack_transposed(k, BH, s.kv_len, D, P.parallel),
                       vt = pack_transposed(v, BH, s.kv_len, D, P.parallel);
  const BackwardArgs<T> a{q, k, kt.data(), vt.data(), dout, lse, di.data(), dq, dk, dv};
  dispatch_head_dim(D, [&](auto dc) { backward<T, decltype(dc)::value>(P, BH, a); });
}

#define HONE_INSTANTIATE(T)                                                                        \
  template void attention_forward<T>(const AttentionShape&, const AttentionOptions&, const T*,     \
                                     const T*, const T*, T*, T*);                                  \
  template void attention_backward<T>(const AttentionShape&, const AttentionOptions&, const T*,    \
                                      const T*, const T*, const T*, const T*, const T*, T*, T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels
