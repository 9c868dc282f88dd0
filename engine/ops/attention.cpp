// Scaled dot-product attention: a thin op over kernels/attention.h (FlashAttention-2 style on
// the CPU). The forward saves q, k, v, the output and the per-row log-sum-exp; the backward
// recomputes probabilities tile by tile, so no [Tq, Tk] matrix exists at any point.
#include <cmath>

#include "engine/core/random.h"
#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/attention.h"

namespace hone::ops {

namespace {

struct Prepared {
  kernels::AttentionShape shape;
  kernels::AttentionOptions options;
  Tensor key_valid;  // contiguous uint8 [B, Tk] or undefined
};

Prepared prepare(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args) {
  const char* op = "scaled_dot_product_attention";
  for (const Tensor* t : {&q, &k, &v}) {
    detail::require_same_device(*t, q, op);
    detail::require_floating(*t, op);
    if (t->dim() != 4)
      throw std::invalid_argument(std::string(op) + ": expected [B, H, T, D] tensors, got " + t->str());
  }
  detail::require_same_dtype(q, k, op);
  detail::require_same_dtype(q, v, op);
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), Tk = k.size(2);
  if (k.shape() != Shape{B, H, Tk, D} || v.shape() != Shape{B, H, Tk, D})
    throw std::invalid_argument(std::string(op) + ": q " + q.str() + ", k " + k.str() + " and v " + v.str() +
                                " do not agree (expected k and v of shape [B, H, Tk, D])");
  if (args.dropout_p < 0 || args.dropout_p >= 1)
    throw std::invalid_argument(std::string(op) + ": dropout_p must be in [0, 1), got " +
                                std::to_string(args.dropout_p));
  Prepared p;
  p.shape = {B, H, Tq, Tk, D};
  p.options.scale = float(args.scale > 0 ? args.scale : 1.0 / std::sqrt(double(D)));
  p.options.causal = args.causal;
  p.options.dropout_p = float(args.dropout_p);
  if (args.key_padding_mask.defined()) {
    const Tensor& m = args.key_padding_mask;
    if (m.dtype() != DType::U8 || m.shape() != Shape{B, Tk})
      throw std::invalid_argument(std::string(op) + ": key_padding_mask must be uint8 [B, Tk] = [" +
                                  std::to_string(B) + ", " + std::to_string(Tk) + "], got " + m.str());
    detail::require_same_device(m, q, op);
    p.key_valid = m.contiguous();
    p.options.key_valid = p.key_valid.data<uint8_t>();
  }
  if (args.dropout_p > 0 && args.fixed_rng) {
    p.options.seed = args.seed;
    p.options.offset = args.offset;
  } else if (args.dropout_p > 0) {
    Generator& g = default_generator();
    p.options.seed = g.seed;
    p.options.offset = g.take(static_cast<uint64_t>(B * H * Tq * Tk));
  }
  return p;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionArgs& args) {
  if (detail::autocast_to_lower({&q_in, &k_in, &v_in}))
    return scaled_dot_product_attention(detail::autocast_lower(q_in), detail::autocast_lower(k_in),
                                        detail::autocast_lower(v_in), args);
  Prepared p = prepare(q_in, k_in, v_in, args);
  const DType dt = q_in.dtype();
  // 16-bit inputs compute in float32 (the kernel is templated on float and double).
  const DType compute = dt == DType::F64 ? DType::F64 : DType::F32;
  const Tensor q = q_in.detach().to(compute).contiguous();
  const Tensor k = k_in.detach().to(compute).contiguous();
  const Tensor v = v_in.detach().to(compute).contiguous();
  const Device dev = q.device();
  Tensor out = Tensor::empty(q.shape(), compute, dev);
  Tensor lse = Tensor::empty({p.shape.batch, p.shape.heads, p.shape.q_len}, compute, dev);
  HONE_DISPATCH_FLOATING(compute, "scaled_dot_product_attention", [&] {
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
      if (dev.is_cuda()) {
#if defined(HONE_WITH_CUDA)
        kernels::cuda::attention_forward<scalar_t>(p.shape, p.options, q.data<scalar_t>(), k.data<scalar_t>(),
                                                   v.data<scalar_t>(), out.data<scalar_t>(), lse.data<scalar_t>(),
                                                   cuda::stream(dev));
#else
        detail::no_cuda_build("scaled_dot_product_attention");
#endif
      } else {
        kernels::attention_forward<scalar_t>(p.shape, p.options, q.data<scalar_t>(), k.data<scalar_t>(),
                                             v.data<scalar_t>(), out.data<scalar_t>(), lse.data<scalar_t>());
      }
    }
  });
  Tensor result = out.to(dt);
  if (needs_grad({&q_in, &k_in, &v_in})) {
    SavedTensor sq(q), sk(k), sv(v), so(out), sl(lse);
    const Tensor mask = p.key_valid;  // kept alive for the backward
    record("AttentionBackward", result, {q_in, k_in, v_in}, [=](const Tensor& g) -> std::vector<Tensor> {
      const char* n = "AttentionBackward";
      const Tensor qv = sq.unpack(n), kv = sk.unpack(n), vv = sv.unpack(n), ov = so.unpack(n), lv = sl.unpack(n);
      kernels::AttentionOptions o = p.options;
      o.key_valid = mask.defined() ? mask.data<uint8_t>() : nullptr;
      const Tensor dout = g.to(compute).contiguous();
      Tensor dq = Tensor::empty(qv.shape(), compute, dev), dk = Tensor::empty(kv.shape(), compute, dev),
             dv = Tensor::empty(vv.shape(), compute, dev);
      HONE_DISPATCH_FLOATING(compute, n, [&] {
        if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
          if (dev.is_cuda()) {
#if defined(HONE_WITH_CUDA)
            kernels::cuda::attention_backward<scalar_t>(p.shape, o, qv.data<scalar_t>(), kv.data<scalar_t>(),
                                                        vv.data<scalar_t>(), ov.data<scalar_t>(), lv.data<scalar_t>(),
                                                        dout.data<scalar_t>(), dq.data<scalar_t>(), dk.data<scalar_t>(),
                                                        dv.data<scalar_t>(), cuda::stream(dev));
#else
            detail::no_cuda_build(n);
#endif
          } else {
            kernels::attention_backward<scalar_t>(p.shape, o, qv.data<scalar_t>(), kv.data<scalar_t>(),
                                                  vv.data<scalar_t>(), ov.data<scalar_t>(), lv.data<scalar_t>(),
                                                  dout.data<scalar_t>(), dq.data<scalar_t>(), dk.data<scalar_t>(),
                                                  dv.data<scalar_t>());
          }
        }
      });
      return {dq.to(dt), dk.to(dt), dv.to(dt)};
    });
  }
  return result;
}

}  // namespace hone::ops
