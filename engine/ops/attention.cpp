// Scaled dot-product attention: a thin op over kernels/attention.h.
//
// On CUDA, bf16/f16 inputs go to cuDNN's fused SDPA (kernels/cuda/attention_cudnn.cpp) in their own
// dtype when it takes the call; the forward saves q, k, v, the output and cuDNN's float32 softmax
// statistics, and the backward runs cuDNN's backward graph; dropout reaches it as a mask drawn from
// the same Philox stream as ours, so the same probabilities are dropped on every path. Everything
// else (and every call cuDNN declines: float32/64, head dims it does not do, no plan...) runs our own kernels, in
// float32 (float64 for double; 16-bit inputs upcast): FlashAttention-2 style on the CPU, a warp per
// row on CUDA (a block's warps sharing shared-memory tiles of K and V); the forward saves q, k, v, the output and the
// per-row log-sum-exp, and the backward recomputes probabilities tile by tile, so no [Tq, Tk] matrix exists at any
// point. Which path a CUDA call took is noted (kernels::note_attention_path: once per path on stderr, and
// kernels::last_attention_path() for tests).
#include "kernels/attention.h"

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/random.h"
#include "engine/ops/common.h"
#include "engine/ops/ops.h"

namespace hone::ops {

namespace {

struct Prepared {
  kernels::AttentionShape shape;
  kernels::AttentionOptions options;
  Tensor key_valid;  // contiguous uint8 [B, Tk] or undefined
};

// One attention call: its output (in the inputs' dtype) and, when gradients are wanted, the map
// from the output's gradient to {dq, dk, dv} (in that dtype too).
struct AttentionResult {
  Tensor out;
  std::function<std::vector<Tensor>(const Tensor& dout)> backward;
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

// Our kernels' forward: out and lse ([B, H, Tq]) of q, k, v (contiguous, float32 or float64).
std::pair<Tensor, Tensor> own_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Prepared& p) {
  const DType compute = q.dtype();
  const Device dev = q.device();
  Tensor out = Tensor::empty(q.shape(), compute, dev);
  Tensor lse = Tensor::empty({p.shape.batch, p.shape.heads, p.shape.q_len}, compute, dev);
  HONE_DISPATCH_FLOATING(compute, "scaled_dot_product_attention", [&] {
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
      if (dev.is_cuda()) {
        HONE_CUDA_ONLY("scaled_dot_product_attention",
                       kernels::cuda::attention_forward<scalar_t>(
                           p.shape, p.options, q.data<scalar_t>(), k.data<scalar_t>(), v.data<scalar_t>(),
                           out.data<scalar_t>(), lse.data<scalar_t>(), cuda::stream(dev)));
      } else {
        kernels::attention_forward<scalar_t>(p.shape, p.options, q.data<scalar_t>(), k.data<scalar_t>(),
                                             v.data<scalar_t>(), out.data<scalar_t>(), lse.data<scalar_t>());
      }
    }
  });
  return {out, lse};
}

// Our kernels' backward: {dq, dk, dv} in the dtype of q (all operands contiguous, that dtype).
std::vector<Tensor> own_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                 const Tensor& lse, const Tensor& dout, const Prepared& p) {
  const char* n = "AttentionBackward";
  const DType compute = q.dtype();
  const Device dev = q.device();
  Tensor dq = Tensor::empty(q.shape(), compute, dev), dk = Tensor::empty(k.shape(), compute, dev),
         dv = Tensor::empty(v.shape(), compute, dev);
  HONE_DISPATCH_FLOATING(compute, n, [&] {
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
      if (dev.is_cuda()) {
        HONE_CUDA_ONLY(n, kernels::cuda::attention_backward<scalar_t>(
                              p.shape, p.options, q.data<scalar_t>(), k.data<scalar_t>(), v.data<scalar_t>(),
                              out.data<scalar_t>(), lse.data<scalar_t>(), dout.data<scalar_t>(), dq.data<scalar_t>(),
                              dk.data<scalar_t>(), dv.data<scalar_t>(), cuda::stream(dev)));
      } else {
        kernels::attention_backward<scalar_t>(p.shape, p.options, q.data<scalar_t>(), k.data<scalar_t>(),
                                              v.data<scalar_t>(), out.data<scalar_t>(), lse.data<scalar_t>(),
                                              dout.data<scalar_t>(), dq.data<scalar_t>(), dk.data<scalar_t>(),
                                              dv.data<scalar_t>());
      }
    }
  });
  return {dq, dk, dv};
}

#if defined(HONE_WITH_CUDA)
kernels::AttentionDType attention_dtype(DType t) {
  switch (t) {
    case DType::F64: return kernels::AttentionDType::F64;
    case DType::BF16: return kernels::AttentionDType::BF16;
    case DType::F16: return kernels::AttentionDType::F16;
    default: return kernels::AttentionDType::F32;
  }
}

// cuDNN could not run its backward after all (`why_not`): {dq, dk, dv} in dt by our kernels, in
// float32 from the 16-bit q, k, v ([B, H, T, D], any strides), the forward recomputed.
std::vector<Tensor> own_grads_after_cudnn(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout,
                                          const Prepared& p, DType dt, const std::string& why_not) {
  kernels::note_attention_path("own kernel for the backward (" + why_not + ")");
  const Tensor qf = q.to(DType::F32).contiguous(), kf = k.to(DType::F32).contiguous(),
               vf = v.to(DType::F32).contiguous();
  const auto [of, lf] = own_forward(qf, kf, vf, p);
  const std::vector<Tensor> grads = own_backward(qf, kf, vf, of, lf, dout.to(DType::F32).contiguous(), p);
  return {grads[0].to(dt), grads[1].to(dt), grads[2].to(dt)};
}

kernels::cuda::CudnnSdpaArgs sdpa_args(const Prepared& p, bool grad, bool qkv_packed) {
  kernels::cuda::CudnnSdpaArgs a;
  a.shape = p.shape;
  a.scale = p.options.scale;
  a.causal = p.options.causal;
  a.key_valid = p.options.key_valid;
  a.training = grad;
  a.dropout_p = p.options.dropout_p;
  a.seed = p.options.seed;
  a.offset = p.options.offset;
  a.qkv_packed = qkv_packed;
  return a;
}

// Notes the path of a call cuDNN ran.
void note_cudnn_path(const kernels::SdpaCall& call, bool grad, const kernels::cuda::CudnnSdpaStatus& st) {
  std::string path = kernels::cudnn_sdpa_path_name(call);
  if (grad && !st.deterministic) path.insert(path.size() - 1, "; non-deterministic backward");
  kernels::note_attention_path(path);
}

// cuDNN's forward of q, k, v (device pointers of out's dtype, laid out as a.qkv_packed says) into out
// (and stats when a.training); notes the path. False, with `why`, when cuDNN did not run.
bool cudnn_forward(const kernels::SdpaCall& call, const kernels::cuda::CudnnSdpaArgs& a,
                   const kernels::cuda::ConvContext& ctx, const void* q, const void* k, const void* v, Tensor& out,
                   const Tensor& stats, std::string& why) {
  const kernels::cuda::CudnnSdpaStatus st = detail::dispatch_16bit(out.dtype(), [&]<class T>() {
    return kernels::cuda::cudnn_sdpa_forward<T>(ctx, a, static_cast<const T*>(q), static_cast<const T*>(k),
                                                static_cast<const T*>(v), out.data<T>(),
                                                a.training ? stats.data<float>() : nullptr, cuda::stream(out.device()));
  });
  if (!st.ran) {
    why = st.why_not;
    return false;
  }
  note_cudnn_path(call, a.training, st);
  return true;
}

// "" when cuDNN may take the call (by the rule and the environment), else why not.
std::string cudnn_declines(const kernels::SdpaCall& call) {
  std::string why = kernels::cudnn_sdpa_unsupported(call);
  if (why.empty() && !kernels::cudnn_attention_enabled()) why = "turned off by HONE_CUDNN_ATTENTION=0 or HONE_CUDNN=0";
  return why;
}

// bf16/f16 attention through cuDNN's fused SDPA: the output and (when `grad`) its backward. An
// undefined output when cuDNN does not take the call (`why` then says why).
AttentionResult cudnn_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Prepared& p,
                                bool grad, std::string& why) {
  const DType dt = q_in.dtype();
  const kernels::SdpaCall call{p.shape, attention_dtype(dt), p.options.causal, p.key_valid.defined(),
                               p.options.dropout_p};
  why = cudnn_declines(call);
  if (!why.empty()) return {};
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const Device dev = q.device();
  Tensor out = Tensor::empty(q.shape(), dt, dev);
  const Tensor stats = grad ? Tensor::empty({p.shape.batch, p.shape.heads, p.shape.q_len}, DType::F32, dev) : Tensor();
  const kernels::cuda::CudnnSdpaArgs a = sdpa_args(p, grad, false);
  const kernels::cuda::ConvContext ctx = detail::cudnn_context(dev);
  if (!cudnn_forward(call, a, ctx, q.data_ptr(), k.data_ptr(), v.data_ptr(), out, stats, why)) return {};
  AttentionResult r;
  r.out = out;
  if (!grad) return r;
  SavedTensor sq(q), sk(k), sv(v), so(out), ss(stats);
  r.backward = [=](const Tensor& g) -> std::vector<Tensor> {
    const char* n = "AttentionBackward";
    const Tensor qv = sq.unpack(n), kv = sk.unpack(n), vv = sv.unpack(n), ov = so.unpack(n), sv_ = ss.unpack(n);
    const Tensor dout = g.to(dt).contiguous();
    Tensor dq = Tensor::empty(qv.shape(), dt, dev), dk = Tensor::empty(kv.shape(), dt, dev),
           dv = Tensor::empty(vv.shape(), dt, dev);
    const std::string why_not = detail::dispatch_16bit(dt, [&]<class T>() {
      return kernels::cuda::cudnn_sdpa_backward<T>(ctx, a, qv.data<T>(), kv.data<T>(), vv.data<T>(), ov.data<T>(),
                                                   sv_.data<float>(), dout.data<T>(), dq.data<T>(), dk.data<T>(),
                                                   dv.data<T>(), cuda::stream(dev));
    });
    if (why_not.empty()) return {dq, dk, dv};
    return own_grads_after_cudnn(qv, kv, vv, dout, p, dt, why_not);
  };
  return r;
}

// Packed-qkv attention on cuDNN: qkv contiguous [B, T, 3C] in bf16/f16, read in place through strides;
// out [B, T, C] written in place; the backward maps dout [B, T, C] to {dqkv [B, T, 3C]}, also with
// no head split or merge copies. An undefined output when cuDNN does not take the call.
AttentionResult cudnn_attention_qkv(const Tensor& qkv, const Prepared& p, bool grad, std::string& why) {
  const DType dt = qkv.dtype();
  const kernels::SdpaCall call{
      p.shape, attention_dtype(dt), p.options.causal, p.key_valid.defined(), p.options.dropout_p, true};
  why = cudnn_declines(call);
  if (!why.empty()) return {};
  const int64_t B = p.shape.batch, H = p.shape.heads, T = p.shape.q_len, C = H * p.shape.head_dim;
  const Device dev = qkv.device();
  Tensor out = Tensor::empty({B, T, C}, dt, dev);
  const Tensor stats = grad ? Tensor::empty({B, H, T}, DType::F32, dev) : Tensor();
  const kernels::cuda::CudnnSdpaArgs a = sdpa_args(p, grad, true);
  const kernels::cuda::ConvContext ctx = detail::cudnn_context(dev);
  const size_t slice = size_t(C) * dtype_size(dt);  // bytes from q to k, and from k to v, in a row of qkv
  const char* base = static_cast<const char*>(qkv.data_ptr());
  if (!cudnn_forward(call, a, ctx, base, base + slice, base + 2 * slice, out, stats, why)) return {};
  AttentionResult r;
  r.out = out;
  if (!grad) return r;
  SavedTensor sqkv(qkv), so(out), ss(stats);
  r.backward = [=](const Tensor& g) -> std::vector<Tensor> {
    const char* n = "AttentionQkvBackward";
    const Tensor qv = sqkv.unpack(n), ov = so.unpack(n), sv_ = ss.unpack(n);
    const Tensor dout = g.to(dt).contiguous();
    Tensor dqkv = Tensor::empty({B, T, 3 * C}, dt, dev);
    const std::string why_not = detail::dispatch_16bit(dt, [&]<class T_>() {
      const T_* base = qv.data<T_>();
      T_* dbase = dqkv.data<T_>();
      return kernels::cuda::cudnn_sdpa_backward<T_>(ctx, a, base, base + C, base + 2 * C, ov.data<T_>(),
                                                    sv_.data<float>(), dout.data<T_>(), dbase, dbase + C, dbase + 2 * C,
                                                    cuda::stream(dev));
    });
    if (why_not.empty()) return {dqkv};
    const std::vector<Tensor> grads =
        own_grads_after_cudnn(qkv_heads(qv, 0, H), qkv_heads(qv, 1, H), qkv_heads(qv, 2, H),
                              dout.reshape({B, T, H, C / H}).transpose(1, 2), p, dt, why_not);
    for (int64_t part = 0; part < 3; ++part) qkv_heads(dqkv, part, H).copy_(grads[size_t(part)]);
    return {dqkv};
  };
  return r;
}
#endif

#if defined(HONE_WITH_CUDA)
// float32 attention on CUDA goes through cuBLAS GEMMs (kernels/cuda/attention_gemm.cu) when its score
// matrix, which that path materialises per call (twice in the backward), is at most 2 GiB;
// HONE_ATTENTION_GEMM=0 keeps our kernel.
bool gemm_attention_fits(DType compute, const Prepared& p) {
  static const bool allowed = !kernels::switched_off("HONE_ATTENTION_GEMM");
  const int64_t elems = kernels::cuda::attention_gemm_scratch_elems(p.shape);
  return allowed && compute == DType::F32 && elems > 0 && p.shape.head_dim > 0 &&
         elems * int64_t(sizeof(float)) <= (int64_t(2) << 30);
}

// The GEMM path of attend() for contiguous float32 q, k, v; gradients returned in dt.
AttentionResult gemm_attend(const Tensor& q, const Tensor& k, const Tensor& v, const Prepared& p, bool grad, DType dt) {
  const Device dev = q.device();
  const int64_t elems = kernels::cuda::attention_gemm_scratch_elems(p.shape);
  Tensor out = Tensor::empty(q.shape(), DType::F32, dev);
  Tensor lse = Tensor::empty({p.shape.batch, p.shape.heads, p.shape.q_len}, DType::F32, dev);
  {
    Tensor scratch = Tensor::empty({elems}, DType::F32, dev);
    kernels::cuda::attention_gemm_forward(cuda::blas(dev.index), p.shape, p.options, q.data<float>(), k.data<float>(),
                                          v.data<float>(), out.data<float>(), lse.data<float>(), scratch.data<float>(),
                                          cuda::stream(dev));
  }
  AttentionResult r;
  r.out = out.to(dt);
  if (!grad) return r;
  SavedTensor sq(q), sk(k), sv(v), so(out), sl(lse);
  r.backward = [=](const Tensor& g_in) -> std::vector<Tensor> {
    const char* n = "AttentionBackward";
    const Tensor qv = sq.unpack(n), kv = sk.unpack(n), vv = sv.unpack(n), ov = so.unpack(n), lv = sl.unpack(n);
    const Tensor g = g_in.to(DType::F32).contiguous();
    Tensor dq = Tensor::empty(qv.shape(), DType::F32, dev), dk = Tensor::empty(kv.shape(), DType::F32, dev),
           dv = Tensor::empty(vv.shape(), DType::F32, dev);
    {
      Tensor s1 = Tensor::empty({elems}, DType::F32, dev), s2 = Tensor::empty({elems}, DType::F32, dev);
      kernels::cuda::attention_gemm_backward(cuda::blas(dev.index), p.shape, p.options, qv.data<float>(),
                                             kv.data<float>(), vv.data<float>(), ov.data<float>(), lv.data<float>(),
                                             g.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>(),
                                             s1.data<float>(), s2.data<float>(), cuda::stream(dev));
    }
    return {dq.to(dt), dk.to(dt), dv.to(dt)};
  };
  return r;
}
#endif

// Attention of detached q, k, v ([B, H, T, D], any strides) on cuDNN when it takes the call, else
// on cuBLAS GEMMs (float32 on CUDA, when the score matrix fits) or our kernels.
AttentionResult attend(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Prepared& p, bool grad) {
  std::string why;
  if (q_in.device().is_cuda()) {
#if defined(HONE_WITH_CUDA)
    AttentionResult r = cudnn_attention(q_in, k_in, v_in, p, grad, why);
    if (r.out.defined()) return r;
#endif
  }
  const DType dt = q_in.dtype();
  // 16-bit inputs compute in float32 (our kernels are templated on float and double).
  const DType compute = dt == DType::F64 ? DType::F64 : DType::F32;
  const Tensor q = q_in.to(compute).contiguous(), k = k_in.to(compute).contiguous(), v = v_in.to(compute).contiguous();
#if defined(HONE_WITH_CUDA)
  if (q.device().is_cuda()) {
    const bool gemm = gemm_attention_fits(compute, p);
    kernels::note_attention_path((gemm ? "cuBLAS GEMMs (" : "own kernel (") + why + ")");
    if (gemm) return gemm_attend(q, k, v, p, grad, dt);
  }
#endif
  const auto [out, lse] = own_forward(q, k, v, p);
  AttentionResult r;
  r.out = out.to(dt);
  if (!grad) return r;
  SavedTensor sq(q), sk(k), sv(v), so(out), sl(lse);
  r.backward = [=](const Tensor& g) -> std::vector<Tensor> {
    const char* n = "AttentionBackward";
    const std::vector<Tensor> grads = own_backward(sq.unpack(n), sk.unpack(n), sv.unpack(n), so.unpack(n), sl.unpack(n),
                                                   g.to(compute).contiguous(), p);
    return {grads[0].to(dt), grads[1].to(dt), grads[2].to(dt)};
  };
  return r;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionArgs& args) {
  if (detail::autocast_to_lower({&q_in, &k_in, &v_in}))
    return scaled_dot_product_attention(detail::autocast_lower(q_in), detail::autocast_lower(k_in),
                                        detail::autocast_lower(v_in), args);
  const Prepared p = prepare(q_in, k_in, v_in, args);
  const bool grad = needs_grad({&q_in, &k_in, &v_in});
  AttentionResult r = attend(q_in.detach(), k_in.detach(), v_in.detach(), p, grad);
  if (grad) record("AttentionBackward", r.out, {q_in, k_in, v_in}, std::move(r.backward));
  return r.out;
}

Tensor scaled_dot_product_attention_qkv(const Tensor& qkv_in, int64_t n_head, const AttentionArgs& args) {
  const char* op = "scaled_dot_product_attention_qkv";
  if (detail::autocast_to_lower({&qkv_in}))
    return scaled_dot_product_attention_qkv(detail::autocast_lower(qkv_in), n_head, args);
  if (qkv_in.dim() != 3 || n_head < 1 || qkv_in.size(2) % (3 * n_head) != 0)
    throw std::invalid_argument(std::string(op) + ": expected qkv [B, T, 3 * n_head * D] with n_head = " +
                                std::to_string(n_head) + ", got " + qkv_in.str());
  const int64_t B = qkv_in.size(0), T = qkv_in.size(1), C = qkv_in.size(2) / 3, H = n_head, D = C / H;
  const Tensor qkv = qkv_in.detach();
  const Tensor q = qkv_heads(qkv, 0, H), k = qkv_heads(qkv, 1, H), v = qkv_heads(qkv, 2, H);
  const Prepared p = prepare(q, k, v, args);
  const bool grad = needs_grad({&qkv_in});
#if defined(HONE_WITH_CUDA)
  if (qkv.device().is_cuda() && detail::is_16bit(qkv.dtype()) && !p.key_valid.defined()) {
    // cuDNN reads q, k, v where they lie and writes the merged output (and, backward, dqkv) directly.
    std::string why;
    AttentionResult packed = cudnn_attention_qkv(qkv.contiguous(), p, grad, why);
    if (packed.out.defined()) {
      if (grad) record("AttentionQkvBackward", packed.out, {qkv_in}, std::move(packed.backward));
      return packed.out;
    }
    // Declined by the rule: the heads path below declines for the same reason. Refused by cuDNN
    // itself: the heads path may still get a plan for the packed [B, H, T, D] layout.
  }
#endif
  AttentionResult r = attend(q, k, v, p, grad);
  Tensor merged = r.out.transpose(1, 2).reshape({B, T, C});
  if (grad) {
    record("AttentionQkvBackward", merged, {qkv_in},
           [=, backward = std::move(r.backward)](const Tensor& g) -> std::vector<Tensor> {
             const std::vector<Tensor> d = backward(g.reshape({B, T, H, D}).transpose(1, 2));
             // The three gradients written into one buffer: no zero-filled [B, T, 3C] per part and no
             // sum of three, as separate views of qkv would cost.
             Tensor dqkv = Tensor::empty({B, T, 3 * C}, d[0].dtype(), d[0].device());
             for (int64_t part = 0; part < 3; ++part) qkv_heads(dqkv, part, H).copy_(d[size_t(part)]);
             return {dqkv};
           });
  }
  return merged;
}

Tensor qkv_heads(const Tensor& qkv, int64_t part, int64_t n_head) {
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3;
  return qkv.narrow(2, part * C, C).reshape({B, T, n_head, C / n_head}).transpose(1, 2);
}

}  // namespace hone::ops
