// CUDA optimizer kernels over many tensors in one launch (multi-tensor apply): AdamW, the global
// gradient norm and clipping by it.
//
// The host cuts every tensor into chunks of kChunk elements and uploads a table of
// (tensor, start) entries; block c of a launch handles chunk c. One launch instead of one per
// parameter matters for models with hundreds of small tensors (biases, norms).
// The norm is deterministic: each chunk's sum of squares goes to its own slot, and one block adds
// the slots in a fixed tree order, in double.
#include <cmath>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace hone::kernels::cuda {

namespace {

constexpr int64_t kChunk = 1 << 14;
static_assert(kChunk % 4 == 0, "adamw_kernel's vectors of 4 start at chunk starts");
constexpr int kBlock = 256;

struct ChunkRef {
  int32_t tensor;
  int64_t start;
};

std::vector<ChunkRef> make_chunks(const int64_t* sizes, int count) {
  std::vector<ChunkRef> chunks;
  for (int t = 0; t < count; ++t)
    for (int64_t s = 0; s < sizes[t]; s += kChunk) chunks.push_back({t, s});
  return chunks;
}

__global__ void adamw_kernel(const AdamWTensor* tensors, const ChunkRef* chunks, float beta1, float beta2,
                             float eps, float lr, float step_size, float inv_sqrt_bc2) {
  const ChunkRef c = chunks[blockIdx.x];
  const AdamWTensor t = tensors[c.tensor];
  const int64_t end = min(t.n, c.start + kChunk);
  const float decay = 1.0f - lr * t.weight_decay;
  // One element: the same float arithmetic, in the same order, as kernels/cpu/optim.cpp.
  auto update = [&](float& p, float g, float& m, float& v) {
    m = beta1 * m + (1.0f - beta1) * g;
    v = beta2 * v + (1.0f - beta2) * g * g;
    const float denom = sqrtf(v) * inv_sqrt_bc2 + eps;
    p = p * decay - step_size * m / denom;
  };
  // The autocast copy of element i (what casting the new weight would write).
  auto write_copy = [&](int64_t i, float p) {
    if (t.copy_bf16) reinterpret_cast<__nv_bfloat16*>(t.copy_bf16)[i] = store<__nv_bfloat16>(p);
    if (t.copy_f16) reinterpret_cast<__half*>(t.copy_f16)[i] = store<__half>(p);
  };
  const bool has_copy = t.copy_bf16 || t.copy_f16;
  // 16-byte vectors of 4 when all four arrays are aligned (chunks start at multiples of kChunk): one
  // load and one store instruction per array per 4 elements; the chunk's tail element by element.
  int64_t i = c.start;
  if (aligned16(t.param) && aligned16(t.grad) && aligned16(t.m) && aligned16(t.v)) {
    const int64_t units = (end - c.start) / 4;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      const int64_t at = (c.start >> 2) + u;
      Pack16<float> p = reinterpret_cast<const Pack16<float>*>(t.param)[at];
      const Pack16<float> g = reinterpret_cast<const Pack16<float>*>(t.grad)[at];
      Pack16<float> m = reinterpret_cast<const Pack16<float>*>(t.m)[at];
      Pack16<float> v = reinterpret_cast<const Pack16<float>*>(t.v)[at];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        update(p.v[j], g.v[j], m.v[j], v.v[j]);
        if (has_copy) write_copy(at * 4 + j, p.v[j]);
      }
      reinterpret_cast<Pack16<float>*>(t.param)[at] = p;
      reinterpret_cast<Pack16<float>*>(t.m)[at] = m;
      reinterpret_cast<Pack16<float>*>(t.v)[at] = v;
    }
    i += units * 4;
  }
  for (i += threadIdx.x; i < end; i += blockDim.x) {
    float p = t.param[i], m = t.m[i], v = t.v[i];
    update(p, t.grad[i], m, v);
    t.m[i] = m;
    t.v[i] = v;
    t.param[i] = p;
    if (has_copy) write_copy(i, p);
  }
}

__global__ void sumsq_kernel(const float* const* grads, const int64_t* sizes, const ChunkRef* chunks, double* partial) {
  __shared__ double scratch[32];
  const ChunkRef c = chunks[blockIdx.x];
  const float* g = grads[c.tensor];
  const int64_t end = min(sizes[c.tensor], c.start + kChunk);
  double s = 0;
  for (int64_t i = c.start + threadIdx.x; i < end; i += blockDim.x) s += double(g[i]) * double(g[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

constexpr int kTotalThreads = 1024;

// One block of 1024 threads: the bounds keep nvcc's register use launchable at that size.
__global__ void __launch_bounds__(kTotalThreads) norm_total_kernel(int64_t n, const double* partial, float* norm) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *norm = float(sqrt(s));
}

__global__ void clip_kernel(float* const* grads, const int64_t* sizes, const ChunkRef* chunks, const float* norm,
                            float max_norm) {
  const float total = *norm;
  if (!(total > max_norm)) return;  // also leaves the gradients alone when the norm is NaN
  const float scale = max_norm / (total + 1e-6f);
  const ChunkRef c = chunks[blockIdx.x];
  float* g = grads[c.tensor];
  const int64_t end = min(sizes[c.tensor], c.start + kChunk);
  for (int64_t i = c.start + threadIdx.x; i < end; i += blockDim.x) g[i] *= scale;
}

void check_chunk_count(size_t n) {
  if (n > 0x7fffffffu) throw std::invalid_argument("cuda multi-tensor op: too many chunks");
}

}  // namespace

void adamw_multi(const AdamWTensor* tensors, int count, const AdamWParams& p, cudaStream_t stream) {
  std::vector<int64_t> sizes(count);
  for (int i = 0; i < count; ++i) sizes[i] = tensors[i].n;
  const std::vector<ChunkRef> chunks = make_chunks(sizes.data(), count);
  if (chunks.empty()) return;
  check_chunk_count(chunks.size());
  Scratch dt(count * sizeof(AdamWTensor), stream), dc(chunks.size() * sizeof(ChunkRef), stream);
  upload(dt, tensors, count, stream);
  upload(dc, chunks.data(), chunks.size(), stream);
  // Bias corrections on the host, in float, exactly as the CPU kernel.
  const float bc1 = 1.0f - std::pow(p.beta1, static_cast<float>(p.step));
  const float bc2 = 1.0f - std::pow(p.beta2, static_cast<float>(p.step));
  adamw_kernel<<<unsigned(chunks.size()), kBlock, 0, stream>>>(dt.as<AdamWTensor>(), dc.as<ChunkRef>(), p.beta1,
                                                               p.beta2, p.eps, p.lr, p.lr / bc1,
                                                               1.0f / std::sqrt(bc2));
  check_launch("adamw_multi");
}

void global_grad_norm(const float* const* grads, const int64_t* sizes, int count, float* norm, cudaStream_t stream) {
  const std::vector<ChunkRef> chunks = make_chunks(sizes, count);
  check_chunk_count(chunks.size());
  Scratch dg(count * sizeof(float*), stream), ds(count * sizeof(int64_t), stream);
  Scratch dc(chunks.size() * sizeof(ChunkRef), stream), partial(chunks.size() * sizeof(double), stream);
  if (!chunks.empty()) {
    upload(dg, grads, count, stream);
    upload(ds, sizes, count, stream);
    upload(dc, chunks.data(), chunks.size(), stream);
    sumsq_kernel<<<unsigned(chunks.size()), kBlock, 0, stream>>>(dg.as<const float*>(), ds.as<int64_t>(),
                                                                 dc.as<ChunkRef>(), partial.as<double>());
    check_launch("global_grad_norm (partials)");
  }
  norm_total_kernel<<<1, kTotalThreads, 0, stream>>>(int64_t(chunks.size()), partial.as<double>(), norm);
  check_launch("global_grad_norm (total)");
}

void clip_by_norm(float* const* grads, const int64_t* sizes, int count, const float* norm, float max_norm,
                  cudaStream_t stream) {
  const std::vector<ChunkRef> chunks = make_chunks(sizes, count);
  if (chunks.empty()) return;
  check_chunk_count(chunks.size());
  Scratch dg(count * sizeof(float*), stream), ds(count * sizeof(int64_t), stream);
  Scratch dc(chunks.size() * sizeof(ChunkRef), stream);
  upload(dg, grads, count, stream);
  upload(ds, sizes, count, stream);
  upload(dc, chunks.data(), chunks.size(), stream);
  clip_kernel<<<unsigned(chunks.size()), kBlock, 0, stream>>>(dg.as<float*>(), ds.as<int64_t>(), dc.as<ChunkRef>(),
                                                              norm, max_norm);
  check_launch("clip_by_norm");
}

}  // namespace hone::kernels::cuda
