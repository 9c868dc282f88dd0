// matmul and linear. Transposed operands reach the GEMM as transpose flags (no copies), and a
// weight matrix applied to a batch of rows becomes one large GEMM instead of many small ones.
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
  kernels::cuda::gemm_strided_batched<T>(cuda::blas(dev), a.trans, b.trans, M, N, K, 1.f,
                                         static_cast<const T*>(a.t.data_ptr()), a.ld, a.batch_stride,
                                         static_cast<const T*>(b.t.data_ptr()), b.ld, b.batch_stride, 0.f,
                                         static_cast<T*>(out.data_ptr()), N, M * N, batch, cuda::stream(dev));
}
#endif

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
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
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
    record("MatmulBackward", out, {a_in, b_in}, [=](const Tensor& g) -> std::vector<Tensor> {
      Tensor da, db;
      if (ga) {
        const Tensor bv = b_saved.unpack("MatmulBackward");
        da = sum_to_shape(matmul(g, bv.transpose(-1, -2)), sa);
      }
      if (gb) {
        const Tensor av = a_saved.unpack("MatmulBackward");
        if (sb.size() == 2 && sa.size() > 2) {
          // Weight gradient of a batch of rows: one GEMM over all rows.
          const int64_t K = sa.back(), N = sb.back();
          db = matmul(av.reshape({-1, K}).transpose(0, 1), g.reshape({-1, N}));
        } else {
          db = sum_to_shape(matmul(av.transpose(-1, -2), g), sb);
        }
      }
      return {da, db};
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  // Under autocast the bias joins the product's dtype (else the add would promote back to f32).
  if (detail::autocast_to_lower({&x, &weight, &bias}))
    return linear(detail::autocast_lower(x), detail::autocast_lower(weight), detail::autocast_lower(bias));
  Tensor y = matmul(x, weight.transpose(0, 1));
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace hone::ops
