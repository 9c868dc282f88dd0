// The CUDA kernels (kernels/cuda/*.cu, one file per family) as seen from the host: plain
// functions on raw device pointers, sizes and a stream, mirroring the CPU declarations of
// kernels/<family>.h with the same semantics unless a comment says otherwise. They know nothing
// of tensors or autograd; engine/core/cuda_runtime owns the streams and library handles.
//
// Only CUDA builds (HONE_WITH_CUDA) may include this header.
//
// Conventions:
//  - Every launcher enqueues work on `stream` and returns without synchronising the host. A
//    launch error throws std::runtime_error naming the kernel; errors that happen while a kernel
//    runs surface at the next synchronising call.
//  - T is float, double, bf16 or f16 (the engine's storage types from kernels/half.h; the .cu
//    files map them to __nv_bfloat16 / __half). Arithmetic happens in acc_t<T>: float for the
//    16-bit types, double for double. Every reduction sums in a fixed order, so results are
//    bit-identical from run to run (no floating-point atomics anywhere).
//  - Scratch memory comes from the stream-ordered allocator (cudaMallocAsync), so no launcher
//    needs a workspace argument or a host synchronisation.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/half.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/resample.h"

struct cublasLtContext;  // cublasLtHandle_t is a pointer to this

namespace hone::kernels::cuda {

// ---- errors and scratch (common.cpp) -----------------------------------------------------------
// Throws std::runtime_error("CUDA <what> failed: <cudaGetErrorString>") unless err == cudaSuccess.
void check(cudaError_t err, const char* what);
// Checks cudaGetLastError() after a kernel launch; `kernel` names it in the message.
void check_launch(const char* kernel);
// Stream-ordered device memory for a kernel's own scratch (cudaMallocAsync). When the device is
// out of memory, the memory-pressure handler (the engine registers its caching allocator's
// empty_cache: blocks it holds free are invisible to cudaMallocAsync) runs and the allocation is
// tried once more before the error is thrown.
void* scratch_alloc(size_t bytes, cudaStream_t stream, const char* what);
void set_memory_pressure_handler(void (*release_cached_memory)());
// Makes `device`'s cudaMallocAsync pool (where scratch_alloc takes from) keep its memory across
// synchronisations: CUDA's default release threshold of 0 hands it back to the driver at each one, so
// the next scratch allocations map device memory again. Best effort: false (the error cleared) on a
// device without memory pools.
bool keep_scratch_pool_memory(int device);
// Copies `bytes` of host memory to device memory `dst`, in order on `stream`, without making the host
// wait for the device: the bytes go through a ring of page-locked memory (a copy from pageable memory
// may synchronise with the stream first, per CUDA's API notes), so the training step's uploads (the
// batch, the optimizers' tensor tables) leave the host free to run ahead. Returns once the host bytes
// are staged (the caller's buffer may go right after). Copies over 4 MB, or when page-locked memory
// cannot be had, go straight from the caller's memory instead.
void upload_async(void* dst, const void* host, size_t bytes, cudaStream_t stream);

// Out-of-range indices cannot be reported from inside a kernel, and reading the indices back
// to check them on the host would synchronise. So the kernels that take indices skip bad ones
// (writing zeros) and record the first one they saw in a per-device record; the engine reads
// the record wherever it synchronises anyway (item(), copies to the CPU) and throws there.
struct IndexError {
  int32_t flag;     // 0: no error recorded
  int32_t op;       // IndexOp
  int64_t position; // flat position in the index tensor
  int64_t value;
  int64_t limit;    // valid ids are [0, limit)
};
enum IndexOp : int32_t { kOpEmbedding = 1, kOpIndexSelect = 2, kOpGather = 3, kOpCrossEntropy = 4 };
const char* index_op_name(int32_t op);
// Records into `record` (device memory, zeroed by the caller once) the first out-of-range id of
// ids[0, n) (an id equal to `allowed`, e.g. ignore_index, is fine).
template <class I>
void check_indices(int64_t n, const I* ids, int64_t limit, int64_t allowed, int32_t op,
                   IndexError* record, cudaStream_t stream);

// ---- elementwise (elementwise.cu) ----------------------------------------------------------------
template <class T>
void unary_forward(UnaryOp op, int64_t n, const T* x, T* y, double param, cudaStream_t stream);
template <class T>
void unary_backward(UnaryOp op, int64_t n, const T* x, const T* y, const T* gy, T* gx, double param,
                    cudaStream_t stream);
template <class T>
void binary_forward(BinaryOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
                    const T* b, const int64_t* b_strides, T* out, cudaStream_t stream);
// T: float, double, bf16, f16, int32_t, int64_t.
template <class T>
void compare(CompareOp op, int ndim, const int64_t* shape, const T* a, const int64_t* a_strides,
             const T* b, const int64_t* b_strides, uint8_t* out, cudaStream_t stream);
// T: float, double, bf16, f16, int64_t.
template <class T>
void where(int ndim, const int64_t* shape, const uint8_t* cond, const int64_t* c_strides, const T* a,
           const int64_t* a_strides, const T* b, const int64_t* b_strides, T* out, cudaStream_t stream);
// Type codes as in kernels/elementwise.h (the engine's DType values). Both views on the device.
void copy_strided(int src_type, int dst_type, int ndim, const int64_t* shape, const void* src,
                  const int64_t* src_strides, void* dst, const int64_t* dst_strides, cudaStream_t stream);
void fill_strided(int dst_type, int ndim, const int64_t* shape, void* dst, const int64_t* dst_strides,
                  double value, cudaStream_t stream);
template <class T> void axpy(int64_t n, double alpha, const T* b, T* a, cudaStream_t stream);
template <class T> void scale(int64_t n, double s, T* a, cudaStream_t stream);

// ---- reductions (reduce.cu) ------------------------------------------------------------------------
// Sums accumulate in double (as on the CPU), in a fixed tree order.
template <class T>
void reduce_middle(ReduceOp op, int64_t outer, int64_t r, int64_t inner, const T* x, T* out,
                   cudaStream_t stream);
template <class T>
void argmax_middle(int64_t outer, int64_t r, int64_t inner, const T* x, int64_t* out, cudaStream_t stream);

// ---- softmax (softmax.cu) -----------------------------------------------------------------------------
template <class T>
void softmax_forward(int64_t rows, int64_t cols, const T* x, T* y, bool log, cudaStream_t stream);
template <class T>
void softmax_backward(int64_t rows, int64_t cols, const T* y, const T* gy, T* gx, bool log,
                      cudaStream_t stream);

// ---- layer norm (layernorm.cu) ------------------------------------------------------------------------
template <class T>
void layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* weight, const T* bias, double eps,
                       T* y, acc_t<T>* mean, acc_t<T>* rstd, cudaStream_t stream);
// gweight/gbias: per-block partial sums over fixed chunks of rows, added in chunk order. accumulate_gx:
// gx += dx, as kernels/layernorm.h's twin.
template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                        const acc_t<T>* rstd, const T* gy, T* gx, T* gweight, T* gbias, cudaStream_t stream,
                        bool accumulate_gx = false);
// gy in 16 bits (H = bf16 or f16, T = float), read as is; gx_lowp: gx rounded to H as well (see
// kernels/layernorm.h's twin).
template <class T, class H>
void layernorm_backward_lowp_gy(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                                const acc_t<T>* rstd, const H* gy, T* gx, T* gweight, T* gbias, cudaStream_t stream,
                                bool accumulate_gx = false, H* gx_lowp = nullptr);

// ---- cross-entropy (loss.cu) ---------------------------------------------------------------------------
// Unlike the CPU version the totals stay on the device: `loss` (one T) receives the mean loss over
// the counted rows (0 when none), `count` (one int64) the number of counted rows. Targets that are
// out of range are recorded in `record` (see IndexError) and their rows skipped.
// glogits (optional, same layout as the logits): also the gradient for an upstream gradient of
// glogits_upstream, (softmax - smoothed one-hot) * glogits_upstream / count, zeros in the uncounted
// rows, formed while the row is at hand (the backward then need not read the logits again; see
// cross_entropy_scale_grad). Not for f16 logits (engine/ops/loss.cpp): most values would underflow.
template <class T, class I>
void cross_entropy_forward(const CrossEntropyArgs& a, const T* logits, const I* targets, acc_t<T>* lse, acc_t<T>* loss,
                           int64_t* count, IndexError* record, cudaStream_t stream, T* glogits = nullptr,
                           double glogits_upstream = 1.0);
// grad_out: the upstream gradient of the mean loss (one acc_t<T> on the device), so the scale
// grad_out / count is formed on the device. The loss and its gradient are in the accumulation
// type (float for 16-bit logits): a bf16 loss would keep only 3 significant digits.
template <class T, class I>
void cross_entropy_backward(const CrossEntropyArgs& a, const T* logits, const I* targets,
                            const acc_t<T>* lse, const acc_t<T>* grad_out, const int64_t* count, T* glogits,
                            cudaStream_t stream);
// The backward of a forward that formed the gradient for an upstream gradient of formed_for: out =
// grad * (grad_out / formed_for) (grad_out: one acc_t<T> on the device) over the counted rows. With
// out == grad (in place) and grad_out exactly formed_for the kernel reads that one value and leaves:
// no pass over the logits' gradient at all.
template <class T, class I>
void cross_entropy_scale_grad(const CrossEntropyArgs& a, const I* targets, const acc_t<T>* grad_out,
                              acc_t<T> formed_for, const T* grad, T* out, cudaStream_t stream);

// ---- indexing and embedding (indexing.cu) -----------------------------------------------------------------
// Same layouts as kernels/indexing.h. T of the forwards: every dtype; of the backwards: floating.
// The backwards sort the ids once (stable radix sort, so colliding rows are summed in ascending
// position, as on the CPU) and give each output row to one block: deterministic, no atomics.
template <class T, class I>
void index_select_forward(int64_t outer, int64_t N, int64_t inner, const T* x, int64_t n, const I* idx,
                          T* out, cudaStream_t stream);
template <class T, class I>
void index_add(int64_t outer, int64_t N, int64_t inner, int64_t n, const I* idx, const T* g, T* gx, cudaStream_t stream,
               bool accumulate = false);  // accumulate: as kernels/indexing.h
template <class T, class I>
void gather_forward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* x,
                    const I* idx, T* out, cudaStream_t stream);
template <class T, class I>
void gather_backward(int ndim, const int64_t* x_shape, const int64_t* idx_shape, int dim, const T* g,
                     const I* idx, T* gx, cudaStream_t stream);
// Embedding = index_select / index_add along dim 0 of the weight [V, C]. (Unlike the CPU version
// the forward takes V: an id outside [0, V) gives a zero row instead of a read out of bounds.)
template <class T, class I>
void embedding_forward(int64_t n, int64_t V, int64_t C, const I* ids, const T* weight, T* out,
                       cudaStream_t stream);
template <class T, class I>
void embedding_backward(int64_t n, int64_t V, int64_t C, const I* ids, const T* gout, T* gweight, cudaStream_t stream,
                        bool accumulate = false);

// ---- dropout (dropout.cu) -----------------------------------------------------------------------------------
// The same mask as kernels::dropout_apply on the CPU for the same (seed, offset): bit for bit.
template <class T>
void dropout_apply(int64_t n, double p, uint64_t seed, uint64_t offset, const T* x, T* y, cudaStream_t stream);

// ---- attention (attention.cu) ----------------------------------------------------------------------------------
// Our own fallback kernel (FlashAttention-style online softmax, never materialising [Tq, Tk]),
// same semantics as kernels/attention.h; o.key_valid must point to device memory. T: float, double.
// The backward recomputes probabilities from q, k and lse; dq and dk/dv come from two kernels
// (one over queries, one over keys), each summing in a fixed order: deterministic, no atomics.
template <class T>
void attention_forward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k, const T* v,
                       T* out, T* lse, cudaStream_t stream);
template <class T>
void attention_backward(const AttentionShape& s, const AttentionOptions& o, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv, cudaStream_t stream);

// ---- optimizer (optim.cu) ----------------------------------------------------------------------------------------
// One parameter tensor of a multi-tensor update (all pointers on the device, float32).
struct AdamWTensor {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t n;
  float weight_decay;  // per tensor: biases and LayerNorm weights usually get 0
  // The parameter's autocast copy (engine/ops/autocast_copy.h), written with the new values when
  // set (at most one of the two).
  bf16* copy_bf16 = nullptr;
  f16* copy_f16 = nullptr;
};
// AdamW over every tensor in one launch; p.weight_decay is ignored (each tensor has its own).
// Same arithmetic as kernels::adamw_update on the CPU.
void adamw_multi(const AdamWTensor* tensors, int count, const AdamWParams& p, cudaStream_t stream);
// sqrt(sum of squares of every grads[i][0, sizes[i])) into *norm (one float on the device),
// accumulated in double in a fixed order.
void global_grad_norm(const float* const* grads, const int64_t* sizes, int count, float* norm,
                      cudaStream_t stream);
// grads *= min(1, max_norm / (*norm + 1e-6)), reading *norm on the device (clipping without a
// host round trip).
void clip_by_norm(float* const* grads, const int64_t* sizes, int count, const float* norm, float max_norm,
                  cudaStream_t stream);

// ---- GEMM through cuBLASLt (gemm.cpp) --------------------------------------------------------------------------
// Row-major, same conventions as kernels/gemm.h (see sgemm_strided_batched). T: float, double,
// bf16, f16; 16-bit operands accumulate in float (the result is rounded to T once).
struct BlasContext {
  cublasLtContext* lt = nullptr;  // cublasLtHandle_t
  void* workspace = nullptr;      // device memory for cuBLASLt
  size_t workspace_bytes = 0;
};
template <class T>
void gemm_strided_batched(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                          float alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                          int64_t stride_b, float beta, T* C, int64_t ldc, int64_t stride_c, int64_t batch,
                          cudaStream_t stream);
// float32 GEMMs use TF32 tensor cores when enabled (default off: full fp32, matching the CPU).
void set_tf32(bool enabled);
bool tf32_enabled();
// HONE_GEMM_AUTOTUNE=1 (off by default: a choice by timing may differ between runs): each cuBLASLt
// configuration runs the fastest of the heuristic's candidates, timed on its first call with beta 0.
// Since the process started: configurations timed, those that took another algorithm than the
// heuristic's first, and what that saves per call of each, summed (microseconds).
struct GemmAutotuneStats {
  int64_t timed = 0, changed = 0;
  double saved_us_per_call = 0;
};
GemmAutotuneStats gemm_autotune_stats();

// ---- GEMM with a fused epilogue (gemm.cpp; the fallback's own kernels in gemm_epilogue.cu) ---------------------
// C [M, N] = op(A) op(B) with one of the epilogues of kernels/gemm_epilogue.h (bias, tanh GELU with its
// pre-activation kept in aux, the GELU gradient with the bias gradient, the bias gradient of A or B), row-major
// as gemm_strided_batched (one product, alpha 1, beta 0). T: float, double, bf16, f16; the bias (gradient)
// vector and the aux matrix are T (cuBLASLt's default: the output's type), the epilogue itself runs in float
// (double for double) before C is rounded to T once.
template <class T>
struct Epilogue {
  EpilogueKind kind = EpilogueKind::None;
  T* bias = nullptr;   // Bias, BiasGeluTanh: read, [N]; DGeluBgrad, BgradB: written, [N]; BgradA: written, [M];
                       // DGelu: unused
  T* aux = nullptr;    // BiasGeluTanh: written, [M, aux_ld] (null: not kept); DGeluBgrad, DGelu: read
  int64_t aux_ld = 0;  // leading dimension of aux (>= N; cuBLASLt needs a multiple of 8)
};
// One cuBLASLt call with the epilogue when cuBLASLt can do it; otherwise the plain GEMM followed by
// gemm_epilogue_apply and/or strided_sum (the fallback). The fallback runs when the operands break cuBLASLt's
// rules (kernels::lt_epilogue_ineligibility), when its heuristic has no algorithm for the configuration (then
// remembered, so the configuration is not asked about again), or when epilogues are switched off. Returns true
// when no pass besides the GEMM ran. Throws std::invalid_argument for missing vectors (check_epilogue_args).
template <class T>
bool gemm_epilogue(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, const Epilogue<T>& ep,
                   cudaStream_t stream);
// Autocast's weight gradients: C [M, N] = op(A) op(B) + beta C from 16-bit operands (T: bf16, f16) in float32
// (beta 1: added into a gradient being accumulated), with the bias gradient of A (BgradA) or B (BgradB) written
// in float32 too when `kind` asks for it (None: no bias). The
// float32 master weights take it as it is: no rounding to 16 bits, no cast pass. cuBLASLt's 16-bit-in,
// float32-out GEMM (the plain GEMM, then strided_sum from the operand; with HONE_GEMM_BGRAD_EPILOGUE=1 cuBLASLt's
// epilogue where it has one). Returns false, having
// written nothing, for an empty product or where cuBLASLt has no such GEMM: the caller then runs its 16-bit path.
template <class T>
bool gemm_f32_out(const BlasContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                  int64_t lda, const T* B, int64_t ldb, float* C, int64_t ldc, float beta, EpilogueKind kind,
                  float* bias, cudaStream_t stream);
// Fused epilogues on or off (default on; HONE_GEMM_EPILOGUE=0 in the environment switches them off at start).
void set_gemm_epilogues(bool enabled);
bool gemm_epilogues_enabled();
// The memo of configurations that cuBLASLt had no epilogue algorithm for: its size, and a reset.
size_t gemm_epilogue_fallback_count();
void clear_gemm_epilogue_fallbacks();

// The epilogue as a pass of its own over C [M, N] (leading dimension ldc) holding the plain product: Bias adds
// bias[j]; BiasGeluTanh adds bias[j], keeps the sum in aux (when not null) and writes its GELU; DGeluBgrad
// and DGelu multiply by gelu_tanh'(aux); the other kinds leave C alone. One thread per element, in acc_t<T>.
template <class T>
void gemm_epilogue_apply(EpilogueKind kind, int64_t M, int64_t N, T* C, int64_t ldc, const T* bias, T* aux,
                         int64_t aux_ld, cudaStream_t stream);
// out[i] = sum over j < n_red of x[i * stride_out + j * stride_red] for i < n_out (the bias gradients): fixed
// chunks of j summed in double (16-bit columns with stride_out 1, aligned: in float within a chunk of 128 rows,
// 16-byte loads), then each output's chunk partials added in a fixed order: deterministic, no atomics.
// n_red == 0 writes zeros. TOut: T, or float for 16-bit T.
template <class T, class TOut = T>
void strided_sum(int64_t n_out, int64_t n_red, const T* x, int64_t stride_out, int64_t stride_red, TOut* out,
                 cudaStream_t stream);

// ---- conv2d (conv.cu, conv_cudnn.cpp) ----------------------------------------------------------------------------
// Same layouts and semantics as kernels/conv.h; T: float, double, bf16, f16 (16-bit: cuDNN's tensor-core
// convolutions with float accumulation, autocast's path; the direct kernels also accumulate in float). Built with cuDNN (HONE_HAVE_CUDNN), forward, data and filter gradients go through cuDNN's
// convolution API with a deterministic algorithm picked once per shape (cached); float32 runs in plain FMA math
// (no TF32) unless set_tf32(true). Without cuDNN, or for a shape cuDNN rejects, our direct kernels run instead
// (one thread per output / per input element / one block per weight: simple, deterministic, no atomics).
// The bias gradient (and the bias add of the forward) are always our own kernels. HONE_CUDNN=0 in the environment,
// or cuDNN failing to start at run time (its sub-libraries missing), also selects the direct kernels.
struct ConvContext {
  int device = 0;
  // Workspace memory (the engine passes its caching allocator); null: stream-ordered cudaMallocAsync.
  // Freed right after the work is enqueued, which is safe because every kernel of a device runs on one stream.
  void* (*alloc)(size_t bytes, int device) = nullptr;
  void (*release)(void* p, int device) = nullptr;
};
template <class T>
void conv2d_forward(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* weight, const T* bias, T* y,
                    cudaStream_t stream);
template <class T>
void conv2d_backward_data(const ConvContext& ctx, const Conv2dGeometry& g, const T* gy, const T* weight, T* gx,
                          cudaStream_t stream);
template <class T>
void conv2d_backward_weight(const ConvContext& ctx, const Conv2dGeometry& g, const T* x, const T* gy, T* gw,
                            cudaStream_t stream);
// gb[c] = sum of gy over the batch and pixels of channel c: one block per channel, in double.
template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* gb, cudaStream_t stream);
// True when this build calls cuDNN for convolutions.
bool conv2d_uses_cudnn();
// The cuDNN algorithm chosen for each convolution run so far (pass, dtype, geometry: algorithm, measured time or
// "from the heuristics", workspace; or hone's direct kernels): `hone bench resnet` prints them. Empty without cuDNN.
std::vector<std::string> cudnn_conv_choices();

// ---- float32 attention through cuBLAS GEMMs (attention_gemm.cu) ------------------------------------------------
// The semantics of attention_forward/attention_backward (causal bottom-right, key padding, the same Philox dropout
// mask, lse -inf and zero rows for a query that sees no key) with the score matrix materialised per call in
// `scratch` (attention_gemm_scratch_elems floats, rows padded to 16 bytes; the backward takes two): every product a
// strided-batched GEMM over the B*H heads (TF32 when set_tf32(true)). q, k, v, out, dout and the gradients contiguous
// [B, H, T, D]; lse [B, H, Tq]. Every extent at least 1.
int64_t attention_gemm_scratch_elems(const AttentionShape& s);
void attention_gemm_forward(const BlasContext& blas, const AttentionShape& s, const AttentionOptions& o, const float* q,
                            const float* k, const float* v, float* out, float* lse, float* scratch,
                            cudaStream_t stream);
void attention_gemm_backward(const BlasContext& blas, const AttentionShape& s, const AttentionOptions& o,
                             const float* q, const float* k, const float* v, const float* out, const float* lse,
                             const float* dout, float* dq, float* dk, float* dv, float* scratch, float* scratch2,
                             cudaStream_t stream);

// ---- attention through cuDNN's fused SDPA (attention_cudnn.cpp) ---------------------------------------------------
// Built with cuDNN and the cuDNN frontend headers (HONE_HAVE_CUDNN_SDPA; tools/fetch-cudnn-frontend.sh): bf16/f16
// attention as cuDNN's fused flash-attention graphs (the frontend's sdpa / sdpa_backward nodes), same semantics as
// kernels/attention.h. Each call either does all the work, or does nothing and says why not (the caller then runs
// our own kernel, attention_forward/backward above):
//  - the graphs of one SdpaGraphKey (kernels/attention.h) are built once and cached, failures too; a training
//    forward also builds the backward graph, so that a forward that ran here always has its backward here;
//  - the padding mask becomes an additive bias [B, 1, 1, Tk] (or [B, 1, Tq, Tk] when cuDNN takes only that) of
//    0 / kSdpaPaddingBias, and the output rows (and dout rows) of queries that see no key at all are zeroed, as our
//    kernel gives them, so the gradients of those rows are 0 as well;
//  - dropout: a 0/1 mask [B, H, Tq, Tk] in T, drawn from our Philox stream (attention_dropout_mask), enters the
//    graphs as cuDNN's custom dropout mask with the scale 1/(1-p): the same elements are dropped as on the CPU and
//    in our kernel for the same seed and offset. The mask lives for one call; the backward draws it again;
//  - the backward asks for cuDNN's deterministic algorithm, and takes the non-deterministic one only when that
//    is all cuDNN offers (the path name then says so);
//  - at most kSdpaMaxGraphs keys per process: a run with ever-new shapes stops paying for graph builds.
// Workspaces come from ctx (the engine's caching allocator) or cudaMallocAsync.
struct CudnnSdpaArgs {
  AttentionShape shape{};
  float scale = 1.f;
  bool causal = false;                 // bottom-right aligned, as kernels/attention.h
  const uint8_t* key_valid = nullptr;  // device [B, Tk], 1 = attend, or null
  bool training = false;               // the forward also writes stats and makes sure the backward graph builds
  float dropout_p = 0.f;               // dropout on the probabilities, with the Philox stream (seed, offset)
  uint64_t seed = 0, offset = 0;       // as AttentionOptions
  // SdpaCall::qkv_packed: q, k, v point into one [B, T, 3C] tensor (k = q + C, v = q + 2C elements) and out
  // is [B, T, C]; in the backward dq, dk, dv point into one [B, T, 3C] gradient the same way and dout is
  // [B, T, C]. Needs Tq = Tk and no key_valid.
  bool qkv_packed = false;
};
constexpr int kSdpaMaxGraphs = 64;
struct CudnnSdpaStatus {
  bool ran = false;
  std::string why_not;        // when !ran: "cuDNN could not build a plan: ...", "built without ...", ...
  bool deterministic = true;  // the backward graph of a training call uses cuDNN's deterministic algorithm
};
// T: bf16 or f16. q [B,H,Tq,D], k and v [B,H,Tk,D], out [B,H,Tq,D], contiguous (or, with a.qkv_packed, slices
// of [B,T,3C] and out [B,T,C]) and 16-byte aligned; stats float32 [B,H,Tq] (the softmax statistics the backward
// needs; written when a.training, else may be null).
template <class T>
CudnnSdpaStatus cudnn_sdpa_forward(const ConvContext& ctx, const CudnnSdpaArgs& a, const T* q, const T* k,
                                   const T* v, T* out, float* stats, cudaStream_t stream);
// The backward of a forward that ran here with a.training (same args): dq, dk, dv overwritten. Returns "" when it
// ran, else why not (nothing written).
template <class T>
std::string cudnn_sdpa_backward(const ConvContext& ctx, const CudnnSdpaArgs& a, const T* q, const T* k, const T* v,
                                const T* out, const float* stats, const T* dout, T* dq, T* dk, T* dv,
                                cudaStream_t stream);

// For tests without a device: makes the graphs of a call (the forward, and for training the backward) and runs the
// frontend's validation on them for compute capability sm (90: sm_90), without building plans. "" or the frontend's
// complaint. Needs the cuDNN library (its version decides what the frontend accepts), not a GPU.
std::string cudnn_sdpa_validate(const SdpaCall& c, float scale, bool training, int sm);

// Helpers of that path (attention.cu), T: bf16 or f16. bias[b, r, j] = key_valid[b, j] ? 0 : kSdpaPaddingBias for
// r < rows (rows = 1 or Tq).
template <class T>
void attention_padding_bias(int64_t batch, int64_t rows, int64_t kv_len, const uint8_t* key_valid, T* bias,
                            cudaStream_t stream);
// mask[b, h, i, j] = 1 where our kernels keep probability (b, h, i, j) under dropout p with the Philox stream
// (seed, offset) (kernels/attention.h: philox::uniform(seed, offset, ((b*H + h)*Tq + i)*Tk + j) >= p), else 0.
template <class T>
void attention_dropout_mask(const AttentionShape& s, float p, uint64_t seed, uint64_t offset, T* mask,
                            cudaStream_t stream);
// dst[i] = factor * src[i] for i < n (cuDNN's dropout backward reads O * (1 - p)).
template <class T>
void attention_scale_copy(int64_t n, float factor, const T* src, T* dst, cudaStream_t stream);
// dst = src with the rows [b, h, i, :] of queries that see no key (padding everywhere they look) set to 0; dst may
// be src.
template <class T>
void attention_zero_unseeing_rows(const AttentionShape& s, bool causal, const uint8_t* key_valid, const T* src, T* dst,
                                  cudaStream_t stream);

// ---- pooling (pool.cu) --------------------------------------------------------------------------------------------
// Same semantics as kernels/pool.h (T: float, double, bf16, f16). Forwards: one thread per output. Backwards
// gather: one thread per input element sums the gradients of the outputs whose window holds it, in output
// order (as the CPU adds them): no atomics, deterministic.
template <class T>
void max_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, int64_t* argmax, cudaStream_t stream);
template <class T>
void max_pool2d_backward(const Pool2dGeometry& g, const T* gy, const int64_t* argmax, T* gx, cudaStream_t stream);
template <class T>
void avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, cudaStream_t stream);
template <class T>
void avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx, cudaStream_t stream);
template <class T>
void adaptive_avg_pool2d_forward(const Pool2dGeometry& g, const T* x, T* y, cudaStream_t stream);
template <class T>
void adaptive_avg_pool2d_backward(const Pool2dGeometry& g, const T* gy, T* gx, cudaStream_t stream);

// ---- batch norm (batchnorm.cu) ------------------------------------------------------------------------------------
// Same semantics as kernels/batchnorm.h (T: float, double, bf16, f16). Per-channel sums are two-level: blocks
// (channel, fixed slice of the N*S values) write partial sums in double, a second kernel adds each channel's
// partials in slice order. The slicing depends on the shape only: deterministic, no atomics.
template <class T>
void batchnorm_stats(int64_t N, int64_t C, int64_t S, const T* x, acc_t<T>* mean, acc_t<T>* var, cudaStream_t stream);
// Training epilogue, in double as the CPU op does: invstd = 1 / sqrt(var + eps) and, for each running statistic
// given (float64 arrays; null: absent), new = (1 - momentum) old + momentum batch (the variance unbiased by
// M / (M - 1), M = N * S). The new running statistics go to *_out (the engine copies them back in place).
template <class A>
void batchnorm_train_epilogue(int64_t C, const A* mean, const A* var, double eps, double momentum, double M,
                              const double* running_mean, double* running_mean_out, const double* running_var,
                              double* running_var_out, A* invstd, cudaStream_t stream);
// Evaluation: mean = running_mean, invstd = 1 / sqrt(running_var + eps) (running stats as float64 arrays).
template <class A>
void batchnorm_eval_stats(int64_t C, const double* running_mean, const double* running_var, double eps, A* mean,
                          A* invstd, cudaStream_t stream);
template <class T>
void batchnorm_forward(int64_t N, int64_t C, int64_t S, const T* x, const acc_t<T>* mean, const acc_t<T>* invstd,
                       const T* weight, const T* bias, T* y, cudaStream_t stream);
template <class T>
void batchnorm_backward(int64_t N, int64_t C, int64_t S, const T* x, const T* gy, const acc_t<T>* mean,
                        const acc_t<T>* invstd, const T* weight, bool training, T* gx, T* gweight, T* gbias,
                        cudaStream_t stream);

// ---- resampling (resample.cu) -------------------------------------------------------------------------------------
// Same semantics as kernels/resample.h (T: float, double, bf16, f16). The per-axis source indices and weights are
// computed on the host with the CPU kernels' formulas and uploaded; backwards gather (one thread per input
// element, over the outputs that read it, in output order): no atomics, deterministic.
template <class T>
void upsample_nearest2d_forward(const Resample2dGeometry& g, const T* x, T* y, cudaStream_t stream);
template <class T>
void upsample_nearest2d_backward(const Resample2dGeometry& g, const T* gy, T* gx, cudaStream_t stream);
template <class T>
void upsample_bilinear2d_forward(const Resample2dGeometry& g, const T* x, T* y, cudaStream_t stream);
template <class T>
void upsample_bilinear2d_backward(const Resample2dGeometry& g, const T* gy, T* gx, cudaStream_t stream);

}  // namespace hone::kernels::cuda
