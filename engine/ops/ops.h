// The differentiable operations on tensors. Each family lives in its own file under engine/ops/
// with its forward and backward side by side; the math runs in kernels/ (cpu/ or cuda/).
//
// Conventions (PyTorch's): dims may be negative; binary ops broadcast NumPy-style; results are
// fresh contiguous tensors unless the op is a view; integer tensors are never differentiable.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace hone::ops {

// ---- elementwise binary (binary.cpp) -------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
// Elementwise maximum/minimum of two tensors (gradient to the larger/smaller; ties split evenly).
Tensor maximum(const Tensor& a, const Tensor& b);
// In place, not recorded by autograd (optimizers, gradient accumulation): a += b, a *= s.
void add_(Tensor& a, const Tensor& b, double alpha = 1.0);
void mul_(Tensor& a, double s);
// Comparisons give uint8 masks (not differentiable).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
// Sums `x` over broadcast dimensions so that it has `shape` (the backward of broadcasting).
Tensor sum_to_shape(const Tensor& x, const Shape& shape);
Shape broadcast_shapes(const Shape& a, const Shape& b);

// ---- elementwise unary (unary.cpp) ----------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApprox { None, Tanh };  // erf form (BERT, "gelu") or tanh form (GPT-2, "gelu_new")
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::None);
Tensor silu(const Tensor& x);
Tensor abs(const Tensor& x);

// ---- reductions (reduce.cpp) ----------------------------------------------------------------
// `dims` empty means all dimensions.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Maximum values (gradient shared evenly among tied maxima, like torch.amax).
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), like torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
// Index of the maximum along `dim` (int64, not differentiable).
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// ---- matrix products (matmul.cpp) ------------------------------------------------------------
// torch.matmul semantics for dim >= 1 operands: [..., M, K] @ [..., K, N] with broadcast batch
// dims. Transposed views (last two strides swapped) go to the GEMM as transposes, not copies.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in] @ weight[out, in]^T + bias[out] (nn.Linear's layout). On CUDA the bias rides in the
// GEMM's epilogue (forward) and the bias gradient comes out of the weight-gradient GEMM (backward).
// A weight given as a transposed view (GPT-2's Conv1D [in, out], passed as w.transpose(0, 1)) is
// read in place.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// gelu(linear(x, weight, bias), GeluApprox::Tanh) (GPT-2's MLP up-projection): on CUDA one GEMM whose
// epilogue adds the bias, applies the tanh GELU and keeps the pre-activation for the backward;
// elsewhere (and without a bias) exactly that composition.
Tensor linear_gelu_tanh(const Tensor& x, const Tensor& weight, const Tensor& bias);
// A transformer MLP: linear(linear_gelu_tanh(x, w_fc, b_fc), w_proj, b_proj) (w_fc [H, C], w_proj
// [C_out, H], linear's layout). On CUDA one autograd node, whose backward forms the GELU gradient
// inside the GEMM that gives the hidden activation's gradient (cuBLASLt's DGELU epilogue) instead of a
// pass of its own over [rows, H], and w_fc's bias gradient in w_fc's weight-gradient GEMM (BGRAD);
// elsewhere the two ops.
Tensor mlp_gelu_tanh(const Tensor& x, const Tensor& w_fc, const Tensor& b_fc, const Tensor& w_proj,
                     const Tensor& b_proj);

// ---- softmax family (softmax.cpp) -----------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

// ---- normalisation (norm.cpp) ---------------------------------------------------------------
// Normalises over the last normalized_shape.size() dims; weight/bias optional (undefined).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps = 1e-5);

// ---- embedding and losses (embedding.cpp, loss.cpp) ------------------------------------------
// weight [V, C], indices int32/int64 of any shape -> [..., C]. Out-of-range ids are an error.
Tensor embedding(const Tensor& weight, const Tensor& indices);
// logits [..., C], targets int of shape [...]. Mean over targets != ignore_index (0 if none).
// label_smoothing eps: target distribution (1 - eps) one-hot + eps / C.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);
// The upstream gradient a loss will get in its backward, where known when its forward runs (the
// Trainer's micro-batch weight times the loss scale): the CUDA cross-entropy forms the logits'
// gradient in its forward for that value, so that its backward has nothing left to do when it comes
// (with gradient accumulation and loss scaling too). Any other value still gets the right gradient,
// through one scaling pass. A scope for the forwards inside it (per thread; nests); 1 outside.
class LossGradScaleGuard {
 public:
  explicit LossGradScaleGuard(double expected_upstream_grad);
  ~LossGradScaleGuard();
  LossGradScaleGuard(const LossGradScaleGuard&) = delete;
  LossGradScaleGuard& operator=(const LossGradScaleGuard&) = delete;

 private:
  double previous_;
};
double expected_loss_grad();

// ---- dropout (dropout.cpp) -------------------------------------------------------------------
// Zeroes each element with probability p and scales the rest by 1/(1-p). The mask is element i
// of the Philox stream (seed, offset): the same on CPU and CUDA. Identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset);
// The same, drawing (seed, offset) from the default generator (engine/core/random.h).
Tensor dropout(const Tensor& x, double p, bool training);

// ---- joining, splitting, indexing (indexing.cpp) ----------------------------------------------
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);
// x.index_select(dim, index): index int [n] -> result has size n along dim.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1, index int, same ndim as x.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// cond (uint8, broadcastable) ? a : b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with `value` where mask (uint8, broadcastable to x) is non-zero.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- attention (attention.cpp) ----------------------------------------------------------------
struct AttentionArgs {
  bool causal = false;
  Tensor key_padding_mask;  // optional uint8 [B, Tk]: 1 = attend, 0 = padding (HF attention_mask)
  double dropout_p = 0.0;   // on the attention probabilities (training only)
  double scale = 0.0;       // 0 means 1/sqrt(head_dim)
  // Dropout's Philox stream: drawn from the default generator unless fixed here (tests, resume).
  bool fixed_rng = false;
  uint64_t seed = 0, offset = 0;
};
// q [B, H, Tq, D], k and v [B, H, Tk, D] -> [B, H, Tq, D]. bf16/f16 on CUDA: cuDNN's fused attention;
// float32 on CUDA: cuBLAS GEMMs with the score matrix materialised per call (up to 2 GiB; kept only
// for that call); elsewhere our flash-style kernels, which never materialise it.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionArgs& args = {});
// Self-attention of a packed projection (GPT-2's c_attn output): qkv [B, T, 3C] holds q, k and v
// side by side, each C = n_head * D wide; returns the heads merged, [B, T, C]. The same as
// splitting qkv into heads and calling scaled_dot_product_attention, but its backward writes the
// three gradients into one [B, T, 3C] buffer (separate views of qkv would each zero-fill one).
Tensor scaled_dot_product_attention_qkv(const Tensor& qkv, int64_t n_head, const AttentionArgs& args = {});
// The C-wide slice `part` (0: q, 1: k, 2: v) of such a [B, T, 3C] tensor as heads [B, H, T, D] (a view
// when qkv is contiguous).
Tensor qkv_heads(const Tensor& qkv, int64_t part, int64_t n_head);

// ---- convolutional networks (conv.cpp, pool.cpp, batchnorm.cpp, resample.cpp) -------------------
// x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW], bias [C_out] or undefined.
struct Conv2dArgs {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1, groups = 1;
};
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dArgs& args = {});
// On CUDA with cuDNN: the algorithm chosen for each convolution shape and pass so far (measured on its first
// call, kernels/cuda/conv_cudnn.cpp), one line each, for `hone bench resnet`; empty elsewhere.
std::vector<std::string> cuda_conv_algorithms();
// torch.nn.functional.max_pool2d / avg_pool2d (count_include_pad = true, floor mode).
struct Pool2dArgs {
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
};
Tensor max_pool2d(const Tensor& x, const Pool2dArgs& args);
Tensor avg_pool2d(const Tensor& x, const Pool2dArgs& args);
// torch.nn.functional.adaptive_avg_pool2d to [out_h, out_w].
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
// torch.nn.functional.batch_norm over dim 1 of [N, C, ...]. training: normalise with the batch
// statistics and, when running_mean/var are defined, update them in place (not recorded by
// autograd): running = (1 - momentum) * running + momentum * batch (var unbiased). Eval: use
// the running statistics. weight/bias optional.
Tensor batch_norm(const Tensor& x, Tensor running_mean, Tensor running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
// Option-A ResNet shortcut pieces: x[:, :, ::stride, ::stride] and zero channels added on both
// sides: [N, C, H, W] -> [N, C + before + after, H, W].
Tensor subsample2d(const Tensor& x, int64_t stride);
Tensor pad_channels(const Tensor& x, int64_t before, int64_t after);
// torch.nn.functional.interpolate(mode="nearest" | "bilinear", align_corners=False) to [out_h, out_w].
Tensor upsample_nearest2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor upsample_bilinear2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- copies ------------------------------------------------------------------------------------
// Fresh contiguous copy (differentiable), optionally converting dtype.
Tensor copy(const Tensor& x);
Tensor cast(const Tensor& x, DType dtype);
// cast keeping x's layout where x is a permutation of dense storage (PyTorch's preserve_format): a
// transposed weight's copy stays transposed, so the GEMM reads it with a transpose flag and its
// gradient comes back in the weight's own layout. Contiguous otherwise. Autocast's casts use it.
Tensor cast_keep_layout(const Tensor& x, DType dtype);

// ---- fused ops (fused.cpp) -------------------------------------------------------------------------
// One pass over memory where the composed ops take two (issue #4). Each equals its composition
// (the tests hold it to that, outputs and gradients) and may replace it anywhere.
//
// gelu(x + bias): x [..., C], bias [C] broadcast over the rows; same as gelu(add(x, bias), approx),
// two floating dtypes promoting as add does. The backward recomputes x + bias and gives the
// gradients of x and bias in one pass.
Tensor bias_gelu(const Tensor& x, const Tensor& bias, GeluApprox approx = GeluApprox::None);
// The pre-LN transformer step: sum = x + residual (the new residual stream) and
// normed = layer_norm(sum) over the last dim (the next sublayer's input), in one kernel.
// x and residual [..., C] of the same shape; weight and bias [C], each optional (undefined).
// Same as s = add(x, residual); layer_norm(s, {C}, weight, bias, eps) (x and residual promote as
// add does); under autocast a float32 op like layer_norm, so 16-bit x and residual give a float32
// sum too. Gradients may reach either output or both (they meet at `sum`, as in the composition).
// normed_feeds_matmul (a pre-LN block, where normed is only a matmul's input): under autocast with
// a float32 stream and a 16-bit x (or residual), the 16-bit one is read as is and normed comes out
// in the autocast dtype, the values the matmul would have cast it to, with two passes fewer.
struct AddLayerNormResult {
  Tensor sum;
  Tensor normed;
};
AddLayerNormResult add_layer_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, const Tensor& bias,
                                  double eps = 1e-5, bool normed_feeds_matmul = false);

}  // namespace hone::ops
