// matmul and linear. Transposed operands reach the GEMM as transpose flags (no copies), and a
// weight matrix applied to a batch of rows becomes one large GEMM instead of many small ones.
//
// linear on CUDA (with a 2-d weight and a bias) is one autograd node over {x, weight, bias} whose
// GEMMs carry the bias through cuBLASLt's epilogues (kernels/gemm_epilogue.h): the forward adds
// the bias inside the GEMM (no separate bias-add pass), and the weight-gradient GEMM produces the
// bias gradient as a by-product (no separate reduction over the rows of the gradient). Where
// cuBLASLt cannot, kernels::cuda::gemm_epilogue runs the plain GEMM and our own pass instead. On
// the CPU, linear is matmul + add, as before.
#include "engine/ops/common.h"
#include "engine/ops/ops.h"
#include "kernels/gemm.h"

namespace hone::ops {

namespace {

// How one operand's last two dims are laid out for the GEMM.
struct MatrixOperand {
  Tensor t;          // the tensor whose data pointer is used
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// Reads the layout of x [batch..., R, C] for the GEMM; copies only when neither the matrix nor
// its transpose has unit stride, or when the batch dims cannot be walked with a single stride.
MatrixOperand matrix_operand(const Tensor& x_in, int64_t batch) {
  Tensor x = x_in;
  auto describe = [&](const Tensor& t, MatrixOperand& op) -> bool {
    const int64_t nd = t.dim();
    const int64_t R = t.shape()[nd - 2], C = t.shape()[nd - 1];
    const int64_t sr = t.strides()[nd - 2], sc = t.strides()[nd - 1];
    if (sc == 1 || C == 1) {
      op.trans = false;
      op.ld = std::max<int64_t>(R == 1 ? C : sr, std::max<int64_t>(C, 1));
      if (R > 1 && sr < C) return false;
    } else if (sr == 1 || R == 1) {
      op.trans = true;
      op.ld = std::max<int64_t>(C == 1 ? R : sc, std::max<int64_t>(R, 1));
      if (C > 1 && sc < R) return false;
    } else {
      return false;
    }
    // The batch dims must collapse to one stride.
    int64_t bstride = 0;
    bool first = true;
    int64_t expect = 0;
    for (int64_t d = nd - 3; d >= 0; --d) {
      if (t.shape()[d] == 1) continue;
      if (first) {
        bstride = t.strides()[d];
        expect = bstride * t.shape()[d];
        first = false;
      } else {
        if (t.strides()[d] != expect) return false;
        expect *= t.shape()[d];
      }
    }
    op.batch_stride = batch > 1 ? bstride : 0;
    return true;
  };
  MatrixOperand op;
  if (!describe(x, op)) {
    x = x.contiguous();
    describe(x, op);
  }
  op.t = x;
  return op;
}

template <class T>
void run_gemm(const MatrixOperand& a, const MatrixOperand& b, Tensor& out, int64_t batch, int64_t M,
              int64_t N, int64_t K) {
  const T* pa = static_cast<const T*>(a.t.data_ptr());
  const T* pb = static_cast<const T*>(b.t.data_ptr());
  T* pc = static_cast<T*>(out.data_ptr());
  if constexpr (std::is_same_v<T, float>) {
    kernels::sgemm_strided_batched(a.trans, b.trans, M, N, K, 1.f, pa, a.ld, a.batch_stride, pb, b.ld,
                                   b.batch_stride, 0.f, pc, N, M * N, batch);
  } else {
    kernels::dgemm_strided_batched(a.trans, b.trans, M, N, K, 1.0, pa, a.ld, a.batch_stride, pb, b.ld,
                                   b.batch_stride, 0.0, pc, N, M * N, batch);
  }
}

#if defined(HONE_WITH_CUDA)
// The same product through cuBLASLt on the operands' device, for every floating dtype (16-bit
// operands accumulate in float32 there, so no widening copies are needed).
template <class T>
void run_gemm_cuda(const MatrixOperand& a, const MatrixOperand& b, Tensor& out, int64_t batch, int64_t M,
                   int64_t N, int64_t K) {
  const int dev = out.device().index;
  // out [batch, M, N] may have padded rows (detail::empty_gemm_output): ld and batch stride from it.
  const int64_t ldc = out.strides()[out.dim() - 2];
  kernels::cuda::gemm_strided_batched<T>(cuda::blas(dev), a.trans, b.trans, M, N, K, 1.f,
                                         static_cast<const T*>(a.t.data_ptr()), a.ld, a.batch_stride,
                                         static_cast<const T*>(b.t.data_ptr()), b.ld, b.batch_stride, 0.f,
                                         static_cast<T*>(out.data_ptr()), ldc, M * ldc, batch, cuda::stream(dev));
}
#endif

// True for a 2-d view whose columns are contiguous and rows are not: the transpose of a row-major
// matrix (weight.transpose(0, 1)). Its gradient is best formed in that layout too.
bool is_transposed_matrix(const Tensor& m) {
  return m.dim() == 2 && m.shape()[0] > 1 && m.shape()[1] > 1 && m.strides()[0] == 1 && m.strides()[1] >= m.shape()[0];
}

// a [..., M, K] @ b [..., K, N] for dim >= 2 operands, no autograd.
Tensor matmul_forward(const Tensor& a_in, const Tensor& b_in) {
  const int64_t K = a_in.shape().back();
  if (b_in.shape()[b_in.dim() - 2] != K)
    throw std::invalid_argument("matmul: inner dimensions differ: " + a_in.str() + " @ " + b_in.str());
  const int64_t M = a_in.shape()[a_in.dim() - 2], N = b_in.shape().back();

  // A batch of rows times one matrix: fold the batch into M (one big GEMM).
  Tensor a = a_in, b = b_in;
  if (b.dim() == 2 && a.dim() > 2) {
    const Shape lead(a.shape().begin(), a.shape().end() - 1);
    Tensor a2 = a.reshape({-1, K});
    Tensor out2 = matmul_forward(a2, b);
    Shape out_shape = lead;
    out_shape.push_back(N);
    return out2.view(out_shape);
  }

  const Shape a_batch(a.shape().begin(), a.shape().end() - 2);
  const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
  const Shape batch_shape = broadcast_shapes(a_batch, b_batch);
  const int64_t batch = shape_numel(batch_shape);
  Shape a_full = batch_shape, b_full = batch_shape, out_shape = batch_shape;
  a_full.insert(a_full.end(), {M, K});
  b_full.insert(b_full.end(), {K, N});
  out_shape.insert(out_shape.end(), {M, N});
  Tensor out = detail::empty_gemm_output(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  if (K == 0) return out.fill_(0.0), out;

  const MatrixOperand ma = matrix_operand(a.expand(a_full), batch);
  const MatrixOperand mb = matrix_operand(b.expand(b_full), batch);
  if (detail::on_cuda(out)) {
#if defined(HONE_WITH_CUDA)
    HONE_DISPATCH_FLOATING(a.dtype(), "matmul", [&] { run_gemm_cuda<scalar_t>(ma, mb, out, batch, M, N, K); });
    return out;
#else
    detail::no_cuda_build("matmul");
#endif
  }
  switch (a.dtype()) {
    case DType::F32: run_gemm<float>(ma, mb, out, batch, M, N, K); break;
    case DType::F64: run_gemm<double>(ma, mb, out, batch, M, N, K); break;
    default: {
      // 16-bit inputs on the CPU: products in float32, result rounded once (as autocast would).
      Tensor o32 = matmul_forward(a.to(DType::F32), b.to(DType::F32));
      return o32.to(a.dtype());
    }
  }
  return out;
}

#if defined(HONE_WITH_CUDA)
bool grad_goes_to_f32(const Tensor& t);  // below, with the CUDA linear
std::vector<Tensor> linear_grads_cuda(const Tensor& g2, const Tensor& x, const Tensor& weight, bool weight_transposed,
                                      const Shape& x_shape, bool want_x, bool want_w, bool want_b, bool f32_grads,
                                      int weight_input);
#endif

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  if (detail::autocast_to_lower({&a_in, &b_in})) return matmul(detail::autocast_lower(a_in), detail::autocast_lower(b_in));
  detail::require_same_device(a_in, b_in, "matmul");
  detail::require_floating(a_in, "matmul");
  detail::require_same_dtype(a_in, b_in, "matmul");
  if (a_in.dim() == 0 || b_in.dim() == 0)
    throw std::invalid_argument("matmul: both operands need at least 1 dim (" + a_in.str() + ", " + b_in.str() + ")");
  // torch.matmul's vector rules: a 1-d operand becomes a matrix, and that dim is dropped after.
  if (a_in.dim() == 1 && b_in.dim() == 1) return matmul(a_in.unsqueeze(0), b_in.unsqueeze(1)).reshape({});
  if (a_in.dim() == 1) return matmul(a_in.unsqueeze(0), b_in).squeeze(-2);
  if (b_in.dim() == 1) return matmul(a_in, b_in.unsqueeze(1)).squeeze(-1);

  Tensor out;
  {
    NoGradGuard no_grad;
    out = matmul_forward(a_in.detach(), b_in.detach());
  }
  if (needs_grad({&a_in, &b_in})) {
    const bool ga = a_in.requires_grad(), gb = b_in.requires_grad();
    SavedTensor a_saved(gb ? a_in : Tensor()), b_saved(ga ? b_in : Tensor());
    const Shape sa = a_in.shape(), sb = b_in.shape();
    const bool b_transposed = sb.size() == 2 && is_transposed_matrix(b_in);
#if defined(HONE_WITH_CUDA)
    // An autocast weight (the tied head's wte^T): its gradient leaves the GEMM in float32.
    const bool f32_b = gb && sb.size() == 2 && detail::on_cuda(b_in) && grad_goes_to_f32(b_in);
#else
    const bool f32_b = false;
#endif
    record("MatmulBackward", out, {a_in, b_in}, [=](const Tensor& g) -> std::vector<Tensor> {
      Tensor da, db;
      if (ga) {
        const Tensor bv = b_saved.unpack("MatmulBackward");
        da = sum_to_shape(matmul(g, bv.transpose(-1, -2)), sa);
      }
      if (gb) {
        const Tensor av = a_saved.unpack("MatmulBackward");
        if (sb.size() == 2) {
          // Weight gradient of a batch of rows: one GEMM over all rows, written in the weight's own
          // layout (a transposed weight, like GPT-2's tied head wte^T [C, V], gets (g^T a)^T: its
          // gradient is then dense [V, C] with C, not V, as leading dimension, and needs no copy).
          const int64_t K = sa.back(), N = sb.back();
          const Tensor a2 = av.reshape({-1, K}), g2 = g.reshape({-1, N});
          bool done = false;
#if defined(HONE_WITH_CUDA)
          if (f32_b) {  // as the linear y = a W^T with W = b^T [N, K]: dW in W's layout, transposed back
            db = linear_grads_cuda(g2, a2, Tensor(), !b_transposed, a2.shape(), false, true, false, true, 1)[1];
            if (db.defined()) db = db.transpose(0, 1);  // (undefined: added into the leaf's gradient)
            done = true;
          }
#endif
          if (!done)
            db = b_transposed ? matmul(g2.transpose(0, 1), a2).transpose(0, 1) : matmul(a2.transpose(0, 1), g2);
        } else {
          db = sum_to_shape(matmul(av.transpose(-1, -2), g), sb);
        }
      }
      return {da, db};
    });
  }
  return out;
}

#if defined(HONE_WITH_CUDA)
namespace {

// True when `t` is a 16-bit cast of a float32 tensor (autocast's copy of a parameter, or a cast):
// its gradient is cast back to float32 by the cast's backward, so a GEMM may as well write it in
// float32 (kernels::cuda::gemm_f32_out: no rounding to 16 bits, no cast pass; the cast's backward
// then passes it through).
bool grad_goes_to_f32(const Tensor& t) {
  if (!t.defined() || !detail::is_16bit(t.dtype()) || !t.grad_fn() || t.grad_fn()->name != "CastBackward") return false;
  const Edge& source = t.grad_fn()->next.at(0);
  return source.leaf ? source.leaf->dtype == DType::F32 : source.fn && source.fn->output_dtype == DType::F32;
}

// A weight [N, in] and bias [N] (N, in > 0) in x's dtype, on x's device: a fused CUDA linear's.
bool fused_cuda_weights(const Tensor& x, int64_t in, const Tensor& w, const Tensor& b) {
  return b.defined() && w.dim() == 2 && w.numel() > 0 && b.dim() == 1 && w.dtype() == x.dtype() &&
         b.dtype() == x.dtype() && w.device() == x.device() && b.device() == x.device() && in == w.shape()[1] &&
         b.shape()[0] == w.shape()[0];
}

// The fused CUDA linear applies to x [..., K] @ weight [N, K]^T + bias [N] (N, K > 0), all of one
// floating dtype on one CUDA device; anything else (and every error message) is the composed path's.
bool fused_cuda_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  return detail::on_cuda(x) && x.dim() >= 1 && is_floating(x.dtype()) && fused_cuda_weights(x, x.shape().back(), w, b);
}

// The gradient of a GEMM output [..., N] as [R, N] rows for the backward GEMMs: padded rows (an
// empty_gemm_output layout) are read as they are; only a non-unit column stride needs a copy.
Tensor gemm_rows(const Tensor& g, int64_t N) {
  const Tensor g2 = g.reshape({-1, N});
  return g2.strides()[1] != 1 && N > 1 ? g2.contiguous() : g2;
}

template <class T> const T* cptr(const MatrixOperand& m) { return static_cast<const T*>(m.t.data_ptr()); }
template <class T> T* mptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr; }

// y [R, N] = x2 [R, K] weight^T + bias with the epilogue `kind` (Bias, or BiasGeluTanh writing the
// pre-activation to aux [R, N] when given), no autograd.
Tensor linear_forward_cuda(const Tensor& x2, const Tensor& weight, const Tensor& bias, kernels::EpilogueKind kind,
                           const Tensor& aux) {
  const int64_t R = x2.shape()[0], N = weight.shape()[0], K = weight.shape()[1];
  const int dev = x2.device().index;
  const MatrixOperand mx = matrix_operand(x2, 1);
  const MatrixOperand mw = matrix_operand(weight.transpose(0, 1), 1);  // [K, N]
  const Tensor b = bias.contiguous();
  Tensor out = detail::empty_gemm_output({R, N}, x2.dtype(), x2.device());
  const int64_t ldc = out.strides()[0];
  HONE_DISPATCH_FLOATING(x2.dtype(), "linear", [&] {
    using T = scalar_t;
    const kernels::cuda::Epilogue<T> ep{kind, mptr<T>(b), mptr<T>(aux), aux.defined() ? N : 0};
    kernels::cuda::gemm_epilogue<T>(cuda::blas(dev), mx.trans, mw.trans, R, N, K, cptr<T>(mx), mx.ld, cptr<T>(mw),
                                    mw.ld, mptr<T>(out), ldc, ep, cuda::stream(dev));
  });
  return out;
}

// The gradients of y = x weight^T + bias from g2 = dL/dy [R, N] (x and weight as saved; either may
// be undefined when its gradient is not wanted): dx = g2 weight; dW = g2^T x2, whose GEMM also sums
// g2^T [N, R] over R, which is the bias gradient (BgradA): no separate reduction. With `f32_grads`
// (16-bit g2 whose weight and bias are autocast casts of float32: grad_goes_to_f32), dW and the bias
// gradient come out of the GEMM in float32, dW added straight into the float32 leaf's gradient when
// one is being accumulated (take_leaf_grad_behind on the running node's input `weight_input`; dW is
// then returned undefined).
std::vector<Tensor> linear_grads_cuda(const Tensor& g2, const Tensor& x, const Tensor& weight, bool weight_transposed,
                                      const Shape& x_shape, bool want_x, bool want_w, bool want_b, bool f32_grads,
                                      int weight_input) {
  const int64_t N = g2.shape()[1], K = x_shape.back();
  const int dev = g2.device().index;
  Tensor dx, dw, db;
  if (want_x) dx = matmul(g2, weight).reshape(x_shape);
  if (want_w) {
    const Tensor x2 = x.reshape({-1, K});
    const int64_t R = x2.shape()[0];
    // dW in the weight's own layout: a transposed weight (GPT-2's Conv1D keeps W [K, N] and passes
    // W^T) gets dW^T [K, N] = x2^T g2, whose bias gradient is then the column sums of B = g2.
    const MatrixOperand m1 =
        weight_transposed ? matrix_operand(x2.transpose(0, 1), 1) : matrix_operand(g2.transpose(0, 1), 1);
    const MatrixOperand m2 = weight_transposed ? matrix_operand(g2, 1) : matrix_operand(x2, 1);
    const int64_t rows = weight_transposed ? K : N, cols = weight_transposed ? N : K;
    const kernels::EpilogueKind bgrad = !want_b             ? kernels::EpilogueKind::None
                                        : weight_transposed ? kernels::EpilogueKind::BgradB
                                                            : kernels::EpilogueKind::BgradA;
    Tensor dw_stored, acc;  // acc: the leaf's float32 gradient being accumulated, which takes dW
    bool ran_f32 = false;   // dW (and db) came out of gemm_f32_out: in dw_stored, or added into acc
    if (f32_grads && detail::is_16bit(g2.dtype())) {
      acc = take_leaf_grad_behind(size_t(weight_input), {rows, cols}, DType::F32);
      dw_stored = acc.defined() ? acc : Tensor::empty({rows, cols}, DType::F32, g2.device());
      if (want_b) db = Tensor::empty({N}, DType::F32, g2.device());
      detail::dispatch_16bit(g2.dtype(), [&]<class T>() {
        ran_f32 = kernels::cuda::gemm_f32_out<T>(cuda::blas(dev), m1.trans, m2.trans, rows, cols, R, cptr<T>(m1), m1.ld,
                                                 cptr<T>(m2), m2.ld, mptr<float>(dw_stored), cols,
                                                 acc.defined() ? 1.f : 0.f, bgrad, mptr<float>(db), cuda::stream(dev));
      });
    }
    if (!ran_f32) {  // the 16-bit (or one-type) GEMM; the casts' backward casts to float32
      if (want_b) db = Tensor::empty({N}, g2.dtype(), g2.device());
      dw_stored = Tensor::empty({rows, cols}, g2.dtype(), g2.device());
      HONE_DISPATCH_FLOATING(g2.dtype(), "LinearBackward", [&] {
        using T = scalar_t;
        const kernels::cuda::Epilogue<T> ep{bgrad, mptr<T>(db)};
        kernels::cuda::gemm_epilogue<T>(cuda::blas(dev), m1.trans, m2.trans, rows, cols, R, cptr<T>(m1), m1.ld,
                                        cptr<T>(m2), m2.ld, mptr<T>(dw_stored), cols, ep, cuda::stream(dev));
      });
      if (acc.defined()) ops::add_(acc, dw_stored.to(DType::F32));  // taken: it must land in it
    }
    if (!acc.defined()) dw = weight_transposed ? dw_stored.transpose(0, 1) : dw_stored;
  } else if (want_b) {
    db = sum_to_shape(g2, {N});
  }
  return {dx, dw, db};
}

// linear (gelu = false) or linear_gelu_tanh (gelu = true) on CUDA: one GEMM forward, and one node
// over {x, weight, bias}. With the GELU the pre-activation is kept (the GEMM writes it beside the
// output) and the backward first forms dL/dpre = g * gelu_tanh'(pre) in one pass.
Tensor linear_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, bool gelu) {
  const int64_t N = weight.shape()[0], K = weight.shape()[1];
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(N);
  const bool grad = needs_grad({&x, &weight, &bias});
  Tensor out, pre;
  {
    NoGradGuard no_grad;
    const Tensor x2 = x.detach().reshape({-1, K});
    if (gelu && grad) pre = Tensor::empty({x2.shape()[0], N}, x.dtype(), x.device());
    out = linear_forward_cuda(x2, weight.detach(), bias.detach(),
                              gelu ? kernels::EpilogueKind::BiasGeluTanh : kernels::EpilogueKind::Bias, pre)
              .view(out_shape);
  }
  if (grad) {
    const bool want_x = x.requires_grad(), want_w = weight.requires_grad(), want_b = bias.requires_grad();
    const bool f32_grads = grad_goes_to_f32(weight) && (!want_b || grad_goes_to_f32(bias));
    SavedTensor x_saved(want_w ? x : Tensor()), w_saved(want_x ? weight : Tensor()), pre_saved(pre);
    const Shape x_shape = x.shape();
    const bool w_transposed = is_transposed_matrix(weight);
    const char* node = gelu ? "LinearGeluTanhBackward" : "LinearBackward";
    record(node, out, {x, weight, bias}, [=](const Tensor& g) -> std::vector<Tensor> {
      Tensor g2 = gemm_rows(g, N);  // [R, N]
      if (gelu) {
        g2 = g2.contiguous();  // the GELU-gradient pass reads and writes dense rows
        const Tensor p = pre_saved.unpack(node);
        Tensor dpre = Tensor::empty(p.shape(), p.dtype(), p.device());
        HONE_DISPATCH_FLOATING(p.dtype(), node, [&] {
          using T = scalar_t;
          kernels::cuda::unary_backward<T>(kernels::UnaryOp::GeluTanh, p.numel(), mptr<T>(p), nullptr, mptr<T>(g2),
                                           mptr<T>(dpre), 0.0, cuda::stream(p.device()));
        });
        g2 = dpre;
      }
      return linear_grads_cuda(g2, x_saved.unpack(node), w_saved.unpack(node), w_transposed, x_shape, want_x, want_w,
                               want_b, f32_grads, 1);
    });
  }
  return out;
}

// mlp_gelu_tanh on CUDA: out = h w_proj^T + b_proj with h = gelu_tanh(x w_fc^T + b_fc) (the GEMM's
// epilogue keeps the pre-activation), one node over {x, w_fc, b_fc, w_proj, b_proj}. The backward's
// hidden-gradient GEMM g w_proj applies gelu_tanh'(pre) in its epilogue (DGelu), and c_fc's weight-gradient
// GEMM sums dpre into the bias gradient in its own (BgradA/B): in float32 under autocast, and without the
// separate reduction cuBLASLt's DGELU_BGRAD ran (320 us a layer for GPT-2 124M on an H200).
Tensor mlp_gelu_tanh_cuda(const Tensor& x, const Tensor& w_fc, const Tensor& b_fc, const Tensor& w_proj,
                          const Tensor& b_proj) {
  const int64_t H = w_fc.shape()[0], K = w_fc.shape()[1], N = w_proj.shape()[0];
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(N);
  const bool grad = needs_grad({&x, &w_fc, &b_fc, &w_proj, &b_proj});
  Tensor h, pre, out;
  {
    NoGradGuard no_grad;
    const Tensor x2 = x.detach().reshape({-1, K});
    if (grad) pre = Tensor::empty({x2.shape()[0], H}, x.dtype(), x.device());
    h = linear_forward_cuda(x2, w_fc.detach(), b_fc.detach(), kernels::EpilogueKind::BiasGeluTanh, pre);
    out =
        linear_forward_cuda(h, w_proj.detach(), b_proj.detach(), kernels::EpilogueKind::Bias, Tensor()).view(out_shape);
  }
  if (!grad) return out;
  const bool want_x = x.requires_grad(), want_w1 = w_fc.requires_grad(), want_b1 = b_fc.requires_grad();
  const bool want_w2 = w_proj.requires_grad(), want_b2 = b_proj.requires_grad();
  const bool want_hidden = want_x || want_w1 || want_b1;  // the gradient must go down through the GELU
  SavedTensor x_saved(want_w1 ? x : Tensor()), w1_saved(want_x ? w_fc : Tensor());
  SavedTensor w2_saved(want_hidden ? w_proj : Tensor()), h_saved(want_w2 ? h : Tensor()),
      pre_saved(want_hidden ? pre : Tensor());
  const Shape x_shape = x.shape();
  const bool w1_transposed = is_transposed_matrix(w_fc), w2_transposed = is_transposed_matrix(w_proj);
  const bool f32_fc = grad_goes_to_f32(w_fc) && (!want_b1 || grad_goes_to_f32(b_fc)),
             f32_proj = grad_goes_to_f32(w_proj) && (!want_b2 || grad_goes_to_f32(b_proj));
  record("MlpGeluTanhBackward", out, {x, w_fc, b_fc, w_proj, b_proj}, [=](const Tensor& g) -> std::vector<Tensor> {
    const char* node = "MlpGeluTanhBackward";
    const Tensor g2 = gemm_rows(g, N);  // [R, N]
    const int64_t R = g2.shape()[0];
    const std::vector<Tensor> proj = linear_grads_cuda(g2, h_saved.unpack(node), Tensor(), w2_transposed, {R, H}, false,
                                                       want_w2, want_b2, f32_proj, 3);
    Tensor dx, dw1, db1;
    if (want_hidden) {
      const Tensor p = pre_saved.unpack(node), w2 = w2_saved.unpack(node);
      const MatrixOperand mg = matrix_operand(g2, 1), mw = matrix_operand(w2, 1);  // [R, N] @ [N, H]
      Tensor dpre = Tensor::empty({R, H}, g2.dtype(), g2.device());
      const int dev = g2.device().index;
      HONE_DISPATCH_FLOATING(g2.dtype(), node, [&] {
        using T = scalar_t;
        const kernels::cuda::Epilogue<T> ep{kernels::EpilogueKind::DGelu, nullptr, mptr<T>(p), H};
        kernels::cuda::gemm_epilogue<T>(cuda::blas(dev), mg.trans, mw.trans, R, H, N, cptr<T>(mg), mg.ld, cptr<T>(mw),
                                        mw.ld, mptr<T>(dpre), H, ep, cuda::stream(dev));
      });
      const std::vector<Tensor> fc = linear_grads_cuda(dpre, x_saved.unpack(node), w1_saved.unpack(node), w1_transposed,
                                                       x_shape, want_x, want_w1, want_b1, f32_fc, 1);
      dx = fc[0], dw1 = fc[1], db1 = fc[2];
    }
    return {dx, dw1, db1, proj[1], proj[2]};
  });
  return out;
}

// The fused CUDA MLP applies when both layers qualify for the fused linear and their shapes chain.
bool fused_cuda_mlp(const Tensor& x, const Tensor& w_fc, const Tensor& b_fc, const Tensor& w_proj,
                    const Tensor& b_proj) {
  return fused_cuda_linear(x, w_fc, b_fc) && fused_cuda_weights(x, w_fc.shape()[0], w_proj, b_proj);
}

}  // namespace
#endif

namespace {

// linear, followed by the tanh GELU when `gelu`.
Tensor linear_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, bool gelu) {
  // Under autocast the bias joins the product's dtype (else the add would promote back to f32).
  if (detail::autocast_to_lower({&x, &weight, &bias}))
    return linear_impl(detail::autocast_lower(x), detail::autocast_lower(weight), detail::autocast_lower(bias), gelu);
#if defined(HONE_WITH_CUDA)
  if (fused_cuda_linear(x, weight, bias)) return linear_cuda(x, weight, bias, gelu);
#endif
  Tensor y = matmul(x, weight.transpose(0, 1));
  if (gelu && bias.defined()) return bias_gelu(y, bias, GeluApprox::Tanh);  // one pass for both
  if (bias.defined()) y = add(y, bias);
  return gelu ? ops::gelu(y, GeluApprox::Tanh) : y;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) { return linear_impl(x, weight, bias, false); }

Tensor linear_gelu_tanh(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_impl(x, weight, bias, true);
}

Tensor mlp_gelu_tanh(const Tensor& x, const Tensor& w_fc, const Tensor& b_fc, const Tensor& w_proj,
                     const Tensor& b_proj) {
  if (detail::autocast_to_lower({&x, &w_fc, &b_fc, &w_proj, &b_proj}))
    return mlp_gelu_tanh(detail::autocast_lower(x), detail::autocast_lower(w_fc), detail::autocast_lower(b_fc),
                         detail::autocast_lower(w_proj), detail::autocast_lower(b_proj));
#if defined(HONE_WITH_CUDA)
  if (fused_cuda_mlp(x, w_fc, b_fc, w_proj, b_proj)) return mlp_gelu_tanh_cuda(x, w_fc, b_fc, w_proj, b_proj);
#endif
  return linear(linear_gelu_tanh(x, w_fc, b_fc), w_proj, b_proj);
}

}  // namespace hone::ops
