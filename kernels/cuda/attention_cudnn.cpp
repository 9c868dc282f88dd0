// bf16/f16 attention through cuDNN's fused scaled-dot-product attention, built with the cuDNN
// frontend's graph API (cudnn_frontend::graph::Graph with its sdpa and sdpa_backward nodes; a
// header-only library that tools/fetch-cudnn-frontend.sh puts in .cache/cudnn-frontend). The
// contract is in kernels/cuda_api.h; in short:
//
//  - One cache entry per SdpaGraphKey (device, B, H, Tq, Tk, D, dtype, causal, mask, training,
//    scale, dropout): the forward graph and, for training, the backward graph, built once (under the cache
//    lock) with cuDNN's heuristics (modes A, then fallback) and kept with their workspace sizes.
//    A key cuDNN refuses is kept with the frontend's message, so it is not tried again. At most
//    kSdpaMaxGraphs keys per process; later new shapes run our kernel.
//  - Layouts: q, k, v, out, dout, dq, dk, dv packed [B, H, T, D]; or, for a packed-qkv call
//    (SdpaCall::qkv_packed), q, k, v and dq, dk, dv the C-wide slices of [B, T, 3C] tensors
//    (strides [T*3C, D, 3C, 1] over [B, H, T, D]) and out, dout [B, T, C] (strides [T*C, D, C, 1]).
//    The softmax statistics float32 packed [B, H, Tq, 1] (= our [B, H, Tq]).
//  - Causal: cuDNN's top-left diagonal when Tq == Tk (the same mask as ours then), else its
//    bottom-right one (ours is bottom-right aligned; cuDNN takes that only without a bias and with
//    Tq <= Tk, which cudnn_sdpa_unsupported in kernels/attention.h checks first).
//  - Padding mask: an additive bias of 0 / kSdpaPaddingBias built from key_valid for each call,
//    one [B, Tk] row per batch given as [B, 1, Tq, Tk] with stride 0 over queries (bias_dims), or, when cuDNN builds no
//    plan for that (or HONE_CUDNN_ATTENTION_BIAS=full is set, a diagnostic switch), [B, 1, Tq, Tk]. A query whose keys
//    are all padding sees a finite uniform softmax in cuDNN and nothing in our kernel: its output row is zeroed after
//    the forward, and its dout row before the backward, which makes its dq row and its share of dk, dv exactly 0, as
//    ours.
//  - Dropout: cuDNN's custom-mask form (the frontend's set_dropout(mask, scale)): a 0/1 mask
//    [B, H, Tq, Tk] in the io dtype that attention_dropout_mask draws from our Philox stream, and
//    the constant 1/(1-p); the backward reads O * (1-p), which its sum(dO * O) term needs (see
//    backward_graph). cuDNN's own RNG is never used: its mask would differ from the CPU's. The
//    mask is made for the call and released after it; the backward draws it again.
//  - The backward asks for cuDNN's deterministic algorithm first (no atomics, as every hone
//    kernel); the non-deterministic one is taken only when that is all cuDNN can build, or first
//    with HONE_DETERMINISTIC=0 (it skips the deterministic one's separate dQ pass).
//  - The frontend's own workspace and the bias come from the context's allocator (or
//    cudaMallocAsync) and go back right after the work is enqueued; the handle is bound to the
//    engine's stream.
#include "kernels/cuda_api.h"

#include <string>

#if defined(HONE_HAVE_CUDNN_SDPA)
#include <cudnn_frontend.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cuda/cudnn_common.h"

// The frontend's headers carry an experimental RMSNorm+SiLU engine that compiles its kernel with
// NVRTC (cudnn_frontend/experimental/); hone never builds such a graph, and linking libnvrtc
// (~100 MB) for it would be a waste. These stand-ins satisfy the linker and report an error if ever
// called. They are hidden (never exported, so they cannot stand in for anyone else's NVRTC calls;
// cuDNN's own run-time compiled engines dlopen libnvrtc and look their symbols up there) and weak.
extern "C" {
#define HONE_NO_NVRTC(name, ...)                                             \
  __attribute__((weak, visibility("hidden"))) nvrtcResult name(__VA_ARGS__) { \
    return NVRTC_ERROR_INTERNAL_ERROR;                                        \
  }
HONE_NO_NVRTC(nvrtcCreateProgram, nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*)
HONE_NO_NVRTC(nvrtcDestroyProgram, nvrtcProgram*)
HONE_NO_NVRTC(nvrtcCompileProgram, nvrtcProgram, int, const char* const*)
HONE_NO_NVRTC(nvrtcGetCUBINSize, nvrtcProgram, size_t*)
HONE_NO_NVRTC(nvrtcGetCUBIN, nvrtcProgram, char*)
HONE_NO_NVRTC(nvrtcGetProgramLogSize, nvrtcProgram, size_t*)
HONE_NO_NVRTC(nvrtcGetProgramLog, nvrtcProgram, char*)
#undef HONE_NO_NVRTC
}
#endif

namespace hone::kernels::cuda {

#if defined(HONE_HAVE_CUDNN_SDPA)

namespace {

namespace fe = cudnn_frontend;
using GraphPtr = std::shared_ptr<fe::graph::Graph>;
using TensorPtr = std::shared_ptr<fe::graph::Tensor_attributes>;

enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kBias, kDO, kDQ, kDK, kDV, kDropoutMask };

struct Entry {
  std::string error;  // non-empty: cuDNN takes no call of this key
  GraphPtr fwd, bwd;
  int64_t fwd_workspace = 0, bwd_workspace = 0;
  bool bias_per_query = false;  // the bias is [B, 1, Tq, Tk] rather than [B, 1, 1, Tk]
  bool deterministic = true;
};

// What one graph is built for.
struct Spec {
  AttentionShape s;
  float scale;
  bool causal, mask, bias_per_query;
  float dropout_p;  // 0: no dropout
  bool qkv_packed;  // SdpaCall::qkv_packed: q, k, v (and their gradients) strided in [B, T, 3C], out in [B, T, C]
  fe::DataType_t io;
  int sm;  // the device's compute capability (90 for sm_90), given to the frontend instead of its own query
};

template <class T> AttentionDType dtype_of();
template <> AttentionDType dtype_of<bf16>() { return AttentionDType::BF16; }
template <> AttentionDType dtype_of<f16>() { return AttentionDType::F16; }

fe::DataType_t io_type(AttentionDType t) {
  return t == AttentionDType::BF16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF;
}

std::vector<int64_t> packed_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) st[i] = st[i + 1] * dims[i + 1];
  return st;
}

TensorPtr input(const GraphPtr& g, const char* name, int64_t uid, const std::vector<int64_t>& dims,
                fe::DataType_t type = fe::DataType_t::NOT_SET, std::vector<int64_t> strides = {}) {
  auto attrs = fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dims).set_stride(
      strides.empty() ? packed_strides(dims) : strides);
  if (type != fe::DataType_t::NOT_SET) attrs.set_data_type(type);
  return g->tensor(attrs);
}

void output(const TensorPtr& t, int64_t uid, const std::vector<int64_t>& dims, std::vector<int64_t> strides = {}) {
  t->set_output(true).set_uid(uid).set_dim(dims).set_stride(strides.empty() ? packed_strides(dims) : strides);
}

// Strides over [B, H, T, D] of q, k, v and their gradients, and of out and dout: packed, or for a
// packed-qkv call the heads of [B, T, 3C] and [B, T, C] rows.
std::vector<int64_t> qkv_strides(const Spec& p, int64_t len) {
  const int64_t H = p.s.heads, D = p.s.head_dim;
  if (p.qkv_packed) return {len * 3 * H * D, D, 3 * H * D, 1};
  return packed_strides({p.s.batch, H, len, D});
}
std::vector<int64_t> out_strides(const Spec& p) {
  const int64_t H = p.s.heads, D = p.s.head_dim;
  if (p.qkv_packed) return {p.s.q_len * H * D, D, H * D, 1};
  return packed_strides({p.s.batch, H, p.s.q_len, D});
}

GraphPtr new_graph(const Spec& p) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(p.io).set_intermediate_data_type(fe::DataType_t::FLOAT).set_compute_data_type(
      fe::DataType_t::FLOAT);
  g->set_sm_version(p.sm);
  return g;
}

std::vector<int64_t> stats_dims(const AttentionShape& s) { return {s.batch, s.heads, s.q_len, 1}; }
// The bias as a [B, 1, Tq, Tk] tensor: one row per batch broadcast over the queries with stride 0, or
// (bias_per_query) a row per query. The query dimension is always Tq long, as PyTorch hands cuDNN an
// expanded mask: cuDNN 9's backward misreads a bias whose query dimension is 1 (its dQ, dK, dV came out
// wrong on an H200 while the forward was right), and a stride of 0 is the layout it is tested with.
std::vector<int64_t> bias_dims(const Spec& p) { return {p.s.batch, 1, p.s.q_len, p.s.kv_len}; }
std::vector<int64_t> bias_strides(const Spec& p) {
  const int64_t rows = p.bias_per_query ? p.s.q_len : 1;
  return {rows * p.s.kv_len, rows * p.s.kv_len, p.bias_per_query ? p.s.kv_len : 0, 1};
}

std::vector<int64_t> dropout_mask_dims(const AttentionShape& s) { return {s.batch, s.heads, s.q_len, s.kv_len}; }

// The dropout mask input of a graph, and 1/(1-p), the scale of the kept probabilities (a constant of the graph).
TensorPtr dropout_mask_input(const GraphPtr& g, const Spec& p) {
  return input(g, "dropout_mask", kDropoutMask, dropout_mask_dims(p.s), p.io);
}
TensorPtr constant(float value) { return std::make_shared<fe::graph::Tensor_attributes>(value); }
float keep_scale(const Spec& p) { return 1.f / (1.f - p.dropout_p); }  // as our kernels compute it, in float

// The causal mask and the padding bias, the same on both graphs.
template <class Attributes>
void set_masks(const GraphPtr& g, const Spec& p, Attributes& a) {
  if (p.causal) {
    if (p.s.q_len == p.s.kv_len)
      a.set_causal_mask(true);
    else
      a.set_causal_mask_bottom_right(true);
  }
  if (p.mask) a.set_bias(input(g, "bias", kBias, bias_dims(p), fe::DataType_t::NOT_SET, bias_strides(p)));
}

// The forward graph of p, not built yet (the frontend reports some errors by throwing).
GraphPtr forward_graph(const Spec& p, bool training) {
  const AttentionShape& s = p.s;
  GraphPtr g = new_graph(p);
  const auto none = fe::DataType_t::NOT_SET;
  auto Q = input(g, "Q", kQ, {s.batch, s.heads, s.q_len, s.head_dim}, none, qkv_strides(p, s.q_len));
  auto K = input(g, "K", kK, {s.batch, s.heads, s.kv_len, s.head_dim}, none, qkv_strides(p, s.kv_len));
  auto V = input(g, "V", kV, {s.batch, s.heads, s.kv_len, s.head_dim}, none, qkv_strides(p, s.kv_len));
  auto attrs = fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(training).set_attn_scale(p.scale);
  set_masks(g, p, attrs);
  if (p.dropout_p > 0.f) attrs.set_dropout(dropout_mask_input(g, p), constant(keep_scale(p)));
  auto [O, Stats] = g->sdpa(Q, K, V, attrs);
  output(O, kO, {s.batch, s.heads, s.q_len, s.head_dim}, out_strides(p));
  if (training) {
    if (!Stats) throw std::runtime_error("the frontend's sdpa node gave no stats output");
    output(Stats, kStats, stats_dims(s));
    Stats->set_data_type(fe::DataType_t::FLOAT);
  }
  return g;
}

// The backward graph of p, not built yet.
GraphPtr backward_graph(const Spec& p, bool deterministic) {
  const AttentionShape& s = p.s;
  const std::vector<int64_t> qdims{s.batch, s.heads, s.q_len, s.head_dim}, kdims{s.batch, s.heads, s.kv_len, s.head_dim};
  GraphPtr g = new_graph(p);
  const auto none = fe::DataType_t::NOT_SET;
  const std::vector<int64_t> qst = qkv_strides(p, s.q_len), kst = qkv_strides(p, s.kv_len), ost = out_strides(p);
  auto Q = input(g, "Q", kQ, qdims, none, qst);
  auto K = input(g, "K", kK, kdims, none, kst);
  auto V = input(g, "V", kV, kdims, none, kst);
  auto O = input(g, "O", kO, qdims, none, ost);
  auto dO = input(g, "dO", kDO, qdims, none, ost);
  auto Stats = input(g, "Stats", kStats, stats_dims(s), fe::DataType_t::FLOAT);
  auto attrs = fe::graph::SDPA_backward_attributes()
                   .set_name("sdpa_backward")
                   .set_attn_scale(p.scale)
                   .set_deterministic_algorithm(deterministic);
  set_masks(g, p, attrs);
  // The third constant, the frontend's "scale_inv", should turn sum(dO * O) into sum(dO * O) * (1 - p);
  // cuDNN 9's backward leaves that sum unscaled whatever is passed (its dQ on an H200 matched
  // s * P * (dP - sum(dO * O)) exactly, with s = 1/(1-p)). So the backward is given O * (1 - p) (see
  // cudnn_sdpa_backward) and 1 here: right whether or not a cuDNN honours the constant.
  if (p.dropout_p > 0.f) attrs.set_dropout(dropout_mask_input(g, p), constant(keep_scale(p)), constant(1.f));
  auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, Stats, attrs);
  output(dQ, kDQ, qdims, qst);
  output(dK, kDK, kdims, kst);
  output(dV, kDV, kdims, kst);
  return g;
}

// Makes a graph and builds its plans (heuristics modes A, then fallback) with h, or only runs the
// frontend's validation when h is null (no device needed). "" or the frontend's message.
template <class Make>
std::string build(Make&& make, cudnnHandle_t h, GraphPtr& out, int64_t& workspace) {
  try {
    GraphPtr g = make();
    auto st = h ? g->build(h, {fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}) : g->validate();
    if (st.is_bad()) return st.get_message();
    if (h) {
      st = g->get_workspace_size(workspace);
      if (st.is_bad()) return st.get_message();
    }
    out = g;
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// The frontend's messages can run to pages (one paragraph per engine it tried): the first line is
// what the path log shows.
std::string first_line(const std::string& msg) {
  std::string s = msg.substr(0, msg.find('\n'));
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

// Tries the layouts in order of preference: bias [B,1,1,Tk] before [B,1,Tq,Tk], a deterministic
// backward before a non-deterministic one (the other way round with HONE_DETERMINISTIC=0). The first failure's message
// explains a refusal. A null h only validates the graphs (cudnn_sdpa_validate).
Entry build_entry(const SdpaCall& c, float scale, bool training, int sm, cudnnHandle_t h) {
  Entry e;
  std::string first_error;
  auto keep = [&](const std::string& err) {
    if (first_error.empty()) first_error = err.empty() ? "unknown error" : first_line(err);
  };
  // HONE_CUDNN_ATTENTION_BIAS=full skips the broadcast bias (a diagnostic switch).
  const char* bias_env = std::getenv("HONE_CUDNN_ATTENTION_BIAS");
  const bool full_bias_only = bias_env && std::string(bias_env) == "full";
  for (bool per_query : {false, true}) {
    if (per_query && !c.key_mask) break;
    if (!per_query && c.key_mask && full_bias_only) continue;
    const Spec p{
        c.shape,          scale, c.causal, c.key_mask, per_query, c.dropout_p > 0.f ? c.dropout_p : 0.f, c.qkv_packed,
        io_type(c.dtype), sm};
    GraphPtr fwd;
    int64_t fwd_ws = 0;
    if (const std::string err = build([&] { return forward_graph(p, training); }, h, fwd, fwd_ws); !err.empty()) {
      keep(err);
      continue;
    }
    const bool prefer = deterministic_algorithms();  // else the non-deterministic backward first
    for (bool deterministic : {prefer, !prefer}) {
      GraphPtr bwd;
      int64_t bwd_ws = 0;
      if (training) {
        if (const std::string err = build([&] { return backward_graph(p, deterministic); }, h, bwd, bwd_ws);
            !err.empty()) {
          keep(err);
          continue;
        }
      }
      e.fwd = fwd;
      e.bwd = bwd;
      e.fwd_workspace = fwd_ws;
      e.bwd_workspace = bwd_ws;
      e.bias_per_query = per_query;
      e.deterministic = deterministic;
      return e;
    }
  }
  e.error = "cuDNN could not build a plan: " + first_error;
  return e;
}

struct Cache {
  std::mutex mu;
  std::map<SdpaGraphKey, std::shared_ptr<Entry>> entries;
};
Cache& cache() {
  static auto* c = new Cache();  // never destroyed
  return *c;
}

// Compute capability of a device as the frontend writes it (90 for sm_90).
int sm_of(int device) {
  int major = 0, minor = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
  return major * 10 + minor;
}

// The entry of key, built on first use. Null with `why` set when the cache is full.
std::shared_ptr<const Entry> entry_for(const SdpaGraphKey& key, const SdpaCall& c, float scale, bool training,
                                       int device, cudnnHandle_t h, std::string& why) {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  auto it = ca.entries.find(key);
  if (it != ca.entries.end()) return it->second;
  if (ca.entries.size() >= static_cast<size_t>(kSdpaMaxGraphs)) {
    why = "more than " + std::to_string(kSdpaMaxGraphs) + " attention shapes in this process (cuDNN builds graphs per shape)";
    return nullptr;
  }
  auto e = std::make_shared<Entry>(build_entry(c, scale, training, sm_of(device), h));
  ca.entries.emplace(key, e);
  return e;
}

// A plan that failed to run is not tried again for this key.
void forget(const SdpaGraphKey& key, const std::string& why) {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  auto e = std::make_shared<Entry>();
  e->error = why;
  ca.entries[key] = e;
}

bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// The checks both passes make before touching cuDNN: "" or why not.
std::string precheck(const SdpaCall& c) {
  std::string why = cudnn_sdpa_unsupported(c);
  if (why.empty() && !cudnn_attention_enabled()) why = "turned off by HONE_CUDNN_ATTENTION=0 or HONE_CUDNN=0";
  return why;
}

// Runs one plan; "" or why it failed (the key is then forgotten).
std::string execute(const SdpaGraphKey& key, const GraphPtr& g, cudnnHandle_t h,
                    std::unordered_map<int64_t, void*>& pack, void* workspace, const char* pass) {
  std::string msg;
  try {
    auto st = g->execute(h, pack, workspace);
    if (st.is_good()) return "";
    msg = st.get_message();
  } catch (const std::exception& e) {
    msg = e.what();
  }
  const std::string why = std::string("cuDNN could not run the ") + pass + " plan: " + first_line(msg);
  forget(key, why);
  return why;
}

// The 0/1 dropout mask of a call, drawn on the stream when it has dropout (else null), released with this.
template <class T>
class DropoutMask {
 public:
  DropoutMask(const ConvContext& ctx, const CudnnSdpaArgs& a, cudaStream_t stream)
      : buf_(ctx, a.dropout_p > 0.f ? size_t(a.shape.batch * a.shape.heads * a.shape.q_len * a.shape.kv_len) * sizeof(T) : 0,
             stream) {
    if (a.dropout_p > 0.f) attention_dropout_mask<T>(a.shape, a.dropout_p, a.seed, a.offset, buf_.as<T>(), stream);
  }
  void* get() const { return buf_.get(); }

 private:
  cudnn::Workspace buf_;
};

}  // namespace

template <class T>
CudnnSdpaStatus cudnn_sdpa_forward(const ConvContext& ctx, const CudnnSdpaArgs& a, const T* q, const T* k,
                                   const T* v, T* out, float* stats, cudaStream_t stream) {
  CudnnSdpaStatus status;
  const SdpaCall c{a.shape, dtype_of<T>(), a.causal, a.key_valid != nullptr, a.dropout_p, a.qkv_packed};
  status.why_not = precheck(c);
  if (status.why_not.empty() && !aligned16({q, k, v, out, stats})) status.why_not = "operands not 16-byte aligned";
  if (status.why_not.empty() && a.training && !stats) status.why_not = "no buffer for the softmax statistics";
  if (!status.why_not.empty()) return status;
  cudnnHandle_t h = cudnn::handle(ctx.device);
  if (!h) {
    status.why_not = "cuDNN unavailable (HONE_CUDNN=0, or cudnnCreate failed)";
    return status;
  }
  const SdpaGraphKey key = sdpa_graph_key(ctx.device, c, a.scale, a.training);
  std::shared_ptr<const Entry> e = entry_for(key, c, a.scale, a.training, ctx.device, h, status.why_not);
  if (!e) return status;
  if (!e->error.empty()) {
    status.why_not = e->error;
    return status;
  }
  const AttentionShape& s = a.shape;
  cudnn::check(cudnnSetStream(h, stream), "cudnnSetStream");
  const int64_t bias_rows = e->bias_per_query ? s.q_len : 1;
  cudnn::Workspace bias(ctx, a.key_valid ? size_t(s.batch * bias_rows * s.kv_len) * sizeof(T) : 0, stream);
  if (a.key_valid) attention_padding_bias<T>(s.batch, bias_rows, s.kv_len, a.key_valid, bias.as<T>(), stream);
  const DropoutMask<T> mask(ctx, a, stream);
  cudnn::Workspace ws(ctx, size_t(e->fwd_workspace), stream);
  std::unordered_map<int64_t, void*> pack{{kQ, const_cast<T*>(q)}, {kK, const_cast<T*>(k)}, {kV, const_cast<T*>(v)},
                                          {kO, out}};
  if (a.key_valid) pack[kBias] = bias.get();
  if (mask.get()) pack[kDropoutMask] = mask.get();
  if (a.training) pack[kStats] = stats;
  status.why_not = execute(key, e->fwd, h, pack, ws.get(), "forward");
  if (!status.why_not.empty()) return status;
  if (a.key_valid) attention_zero_unseeing_rows<T>(s, a.causal, a.key_valid, out, out, stream);
  status.ran = true;
  status.deterministic = e->deterministic;
  return status;
}

template <class T>
std::string cudnn_sdpa_backward(const ConvContext& ctx, const CudnnSdpaArgs& a, const T* q, const T* k, const T* v,
                                const T* out, const float* stats, const T* dout, T* dq, T* dk, T* dv,
                                cudaStream_t stream) {
  const SdpaCall c{a.shape, dtype_of<T>(), a.causal, a.key_valid != nullptr, a.dropout_p, a.qkv_packed};
  std::string why = precheck(c);
  if (!why.empty()) return why;
  if (!aligned16({q, k, v, out, stats, dout, dq, dk, dv})) return "operands not 16-byte aligned";
  cudnnHandle_t h = cudnn::handle(ctx.device);
  if (!h) return "cuDNN unavailable (HONE_CUDNN=0, or cudnnCreate failed)";
  const SdpaGraphKey key = sdpa_graph_key(ctx.device, c, a.scale, true);
  std::shared_ptr<const Entry> e = entry_for(key, c, a.scale, true, ctx.device, h, why);
  if (!e) return why;
  if (!e->error.empty()) return e->error;
  if (!e->bwd) return "no cuDNN backward graph for this call";
  const AttentionShape& s = a.shape;
  cudnn::check(cudnnSetStream(h, stream), "cudnnSetStream");
  const int64_t bias_rows = e->bias_per_query ? s.q_len : 1;
  cudnn::Workspace bias(ctx, a.key_valid ? size_t(s.batch * bias_rows * s.kv_len) * sizeof(T) : 0, stream);
  // dout with the rows of queries that see no key zeroed (see the top of this file).
  cudnn::Workspace dout_masked(ctx, a.key_valid ? size_t(s.batch * s.heads * s.q_len * s.head_dim) * sizeof(T) : 0,
                               stream);
  const T* d = dout;
  if (a.key_valid) {
    attention_padding_bias<T>(s.batch, bias_rows, s.kv_len, a.key_valid, bias.as<T>(), stream);
    attention_zero_unseeing_rows<T>(s, a.causal, a.key_valid, dout, dout_masked.as<T>(), stream);
    d = dout_masked.as<T>();
  }
  const DropoutMask<T> mask(ctx, a, stream);
  // With dropout, O * (1 - p) in O's layout (backward_graph says why).
  const T* o = out;
  cudnn::Workspace out_scaled(ctx, a.dropout_p > 0.f ? size_t(s.batch * s.heads * s.q_len * s.head_dim) * sizeof(T) : 0,
                              stream);
  if (a.dropout_p > 0.f) {
    attention_scale_copy<T>(s.batch * s.heads * s.q_len * s.head_dim, 1.f - a.dropout_p, out, out_scaled.as<T>(),
                            stream);
    o = out_scaled.as<T>();
  }
  cudnn::Workspace ws(ctx, size_t(e->bwd_workspace), stream);
  std::unordered_map<int64_t, void*> pack{{kQ, const_cast<T*>(q)},
                                          {kK, const_cast<T*>(k)},
                                          {kV, const_cast<T*>(v)},
                                          {kO, const_cast<T*>(o)},
                                          {kDO, const_cast<T*>(d)},
                                          {kStats, const_cast<float*>(stats)},
                                          {kDQ, dq},
                                          {kDK, dk},
                                          {kDV, dv}};
  if (a.key_valid) pack[kBias] = bias.get();
  if (mask.get()) pack[kDropoutMask] = mask.get();
  return execute(key, e->bwd, h, pack, ws.get(), "backward");
}

std::string cudnn_sdpa_validate(const SdpaCall& c, float scale, bool training, int sm) {
  return build_entry(c, scale, training, sm, nullptr).error;
}

#else  // no cuDNN frontend in this build

namespace {
std::string not_built() {
#if defined(HONE_HAVE_CUDNN)
  return "this build has no cuDNN frontend headers (tools/fetch-cudnn-frontend.sh)";
#else
  return "this build has no cuDNN";
#endif
}
}  // namespace

template <class T>
CudnnSdpaStatus cudnn_sdpa_forward(const ConvContext&, const CudnnSdpaArgs&, const T*, const T*, const T*, T*, float*,
                                   cudaStream_t) {
  CudnnSdpaStatus status;
  status.why_not = not_built();
  return status;
}

template <class T>
std::string cudnn_sdpa_backward(const ConvContext&, const CudnnSdpaArgs&, const T*, const T*, const T*, const T*,
                                const float*, const T*, T*, T*, T*, cudaStream_t) {
  return not_built();
}

std::string cudnn_sdpa_validate(const SdpaCall&, float, bool, int) { return not_built(); }

#endif  // HONE_HAVE_CUDNN_SDPA

#define HONE_INSTANTIATE(T)                                                                                        \
  template CudnnSdpaStatus cudnn_sdpa_forward<T>(const ConvContext&, const CudnnSdpaArgs&, const T*, const T*,     \
                                                 const T*, T*, float*, cudaStream_t);                              \
  template std::string cudnn_sdpa_backward<T>(const ConvContext&, const CudnnSdpaArgs&, const T*, const T*,        \
                                              const T*, const T*, const float*, const T*, T*, T*, T*, cudaStream_t);
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE

}  // namespace hone::kernels::cuda
