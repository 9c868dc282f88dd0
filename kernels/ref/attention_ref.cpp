// The obviously-right attention: one head at a time, the full [Tq, Tk] score matrix in double,
// textbook softmax and its textbook backward. Only for tests.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/philox.h"

namespace hone::kernels::ref {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Per head: the masked probabilities P, the dropout factors Z (keep / (1-p), or 1 without
// dropout; P * Z is what actually multiplies v) and each row's log-sum-exp.
struct HeadProbs {
  std::vector<double> p, z;
  std::vector<double> lse;
};

template <class T>
HeadProbs head_probs(const AttentionShape& s, const AttentionOptions& o, int64_t b, int64_t h,
                     const T* q, const T* k) {
  const int64_t Tq = s.q_len, Tk = s.kv_len, D = s.head_dim, bh = b * s.heads + h;
  const T* qh = q + bh * Tq * D;
  const T* kh = k + bh * Tk * D;
  const double keep_scale = o.dropout_p > 0.f ? 1.0 / (1.0 - double(o.dropout_p)) : 1.0;
  HeadProbs r{std::vector<double>(Tq * Tk, 0.0), std::vector<double>(Tq * Tk, 0.0),
              std::vector<double>(Tq, kNegInf)};
  std::vector<double> row(Tk);
  for (int64_t i = 0; i < Tq; ++i) {
    double mx = kNegInf;
    for (int64_t j = 0; j < Tk; ++j) {
      const bool visible = (!o.causal || j <= i + (Tk - Tq)) && (!o.key_valid || o.key_valid[b * Tk + j]);
      double sc = kNegInf;
      if (visible) {
        sc = 0.0;
        for (int64_t d = 0; d < D; ++d) sc += double(qh[i * D + d]) * double(kh[j * D + d]);
        sc *= double(o.scale);
      }
      row[j] = sc;
      mx = std::max(mx, sc);
    }
    for (int64_t j = 0; j < Tk; ++j) {
      const uint64_t idx = uint64_t((bh * Tq + i) * Tk + j);
      const bool keep = o.dropout_p <= 0.f || philox::uniform(o.seed, o.offset, idx) >= o.dropout_p;
      r.z[i * Tk + j] = keep ? keep_scale : 0.0;
    }
    if (mx == kNegInf) continue;  // every key masked: P = 0, lse = -inf
    double sum = 0.0;
    for (int64_t j = 0; j < Tk; ++j) sum += std::exp(row[j] - mx);
    r.lse[i] = mx + std::log(sum);
    for (int64_t j = 0; j < Tk; ++j) r.p[i * Tk + j] = std::exp(row[j] - mx) / sum;
  }
  return r;
}

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                       const T* v, T* out, T* lse) {
  const int64_t Tq = s.q_len, Tk = s.kv_len, D = s.head_dim;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t bh = b * s.heads + h;
      const HeadProbs pr = head_probs(s, o, b, h, q, k);
      const T* vh = v + bh * Tk * D;
      for (int64_t i = 0; i < Tq; ++i) {
        lse[bh * Tq + i] = T(pr.lse[i]);
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < Tk; ++j) acc += pr.p[i * Tk + j] * pr.z[i * Tk + j] * double(vh[j * D + d]);
          out[(bh * Tq + i) * D + d] = T(acc);
        }
      }
    }
}

// With Pd = P * Z (Z = keep / (1-p)) and out = Pd v:
//   dv = Pd^T dout,  dPd = dout v^T,  dP = dPd * Z,
//   dS = P * (dP - rowsum(P * dP)),  dq = scale * dS k,  dk = scale * dS^T q.
// The probabilities are recomputed from q, k; `out` and `lse` are not needed here.
template <class T>
void attention_backward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k,
                        const T* v, const T*, const T*, const T* dout, T* dq, T* dk, T* dv) {
  const int64_t Tq = s.q_len, Tk = s.kv_len, D = s.head_dim;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t bh = b * s.heads + h;
      const HeadProbs pr = head_probs(s, o, b, h, q, k);
      const T* qh = q + bh * Tq * D;
      const T* kh = k + bh * Tk * D;
      const T* vh = v + bh * Tk * D;
      const T* doh = dout + bh * Tq * D;
      std::vector<double> ds(Tq * Tk, 0.0);
      for (int64_t i = 0; i < Tq; ++i) {
        std::vector<double> dp(Tk);
        double rowdot = 0.0;
        for (int64_t j = 0; j < Tk; ++j) {
          double dpd = 0.0;
          for (int64_t d = 0; d < D; ++d) dpd += double(doh[i * D + d]) * double(vh[j * D + d]);
          dp[j] = dpd * pr.z[i * Tk + j];
          rowdot += pr.p[i * Tk + j] * dp[j];
        }
        for (int64_t j = 0; j < Tk; ++j) ds[i * Tk + j] = pr.p[i * Tk + j] * (dp[j] - rowdot);
      }
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0.0;
          for (int64_t j = 0; j < Tk; ++j) acc += ds[i * Tk + j] * double(kh[j * D + d]);
          dq[(bh * Tq + i) * D + d] = T(acc * double(o.scale));
        }
      for (int64_t j = 0; j < Tk; ++j)
        for (int64_t d = 0; d < D; ++d) {
          double acck = 0.0, accv = 0.0;
          for (int64_t i = 0; i < Tq; ++i) {
            acck += ds[i * Tk + j] * double(qh[i * D + d]);
            accv += pr.p[i * Tk + j] * pr.z[i * Tk + j] * double(doh[i * D + d]);
          }
          dk[(bh * Tk + j) * D + d] = T(acck * double(o.scale));
          dv[(bh * Tk + j) * D + d] = T(accv);
        }
    }
}

#define HONE_INSTANTIATE(T)                                                                        \
  template void attention_forward<T>(const AttentionShape&, const AttentionOptions&, const T*,     \
                                     const T*, const T*, T*, T*);                                  \
  template void attention_backward<T>(const AttentionShape&, const AttentionOptions&, const T*,    \
                                      const T*, const T*, const T*, const T*, const T*, T*, T*, T*);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::ref
