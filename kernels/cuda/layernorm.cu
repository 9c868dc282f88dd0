// CUDA layer norm over the rows of a contiguous [rows, cols] array.
//
// Forward: one block per row, two passes for the statistics (mean, then squared deviations: no
// cancellation when |mean| >> std), as on the CPU.
// Backward: deterministic without atomics. One kernel reads x and gy once for dx and for the
// dweight/dbias partial sums of its block's rows (kept in shared memory, one column per thread),
// and a second kernel adds each column's partials in block order (in double); float32 rows of up to 1024
// columns (GPT-2's, BERT's) are held in registers, two at a time, by a twin of that kernel. Rows too wide for
// the shared memory take two passes: dx one block per row, then partials over fixed chunks of
// kRowChunk rows per column tile.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/env_switch.h"

namespace hone::kernels::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kRowChunk = 64;
constexpr int kColTile = 256;

template <class T, class A>
__global__ void layernorm_forward_kernel(int64_t rows, int64_t cols, const T* x, const T* w, const T* b, A eps,
                                         T* y, A* mean_out, A* rstd_out) {
  __shared__ A scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    A s = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += load(xr[i]);
    const A mean = block_sum(s, scratch) / A(cols);
    A v = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      const A d = load(xr[i]) - mean;
      v += d * d;
    }
    const A var = block_sum(v, scratch) / A(cols);
    const A rstd = A(1) / sqrt(var + eps);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      A o = (load(xr[i]) - mean) * rstd;
      if (w) o *= load(w[i]);
      if (b) o += load(b[i]);
      y[r * cols + i] = store<T>(o);
    }
    if (threadIdx.x == 0) {
      mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = gy * w and xhat = (x - mean) rstd (G: gy's type,
// T or 16 bits for layernorm_backward_lowp_gy), and, when part_w or part_b is given, the dweight/dbias
// partial sums, in one pass over x and gy. Block b takes row group b (rows_per_block rows, in order;
// blocks stride over the groups), and thread t owns columns t, t + blockDim.x, ..., whose partial sums
// it alone keeps in shared memory (2 * cols of A): no atomics, a fixed order, one partial per group
// for layernorm_dwdb_total_kernel. Without partials it is the dx kernel (no shared memory needed).
template <class T, class G, class A>
__global__ void layernorm_backward_fused_kernel(int64_t rows, int64_t cols, int64_t rows_per_block, const T* x,
                                                const T* w, const A* mean, const A* rstd, const G* gy, T* gx,
                                                bool accumulate, G* gx_lowp, A* part_w, A* part_b) {
  __shared__ A scratch[64];
  extern __shared__ unsigned char smem_raw[];
  A* acc_w = part_w || part_b ? reinterpret_cast<A*>(smem_raw) : nullptr;
  A* acc_b = acc_w ? acc_w + cols : nullptr;
  const int64_t groups = (rows + rows_per_block - 1) / rows_per_block;
  for (int64_t group = blockIdx.x; group < groups; group += gridDim.x) {
    if (acc_w)
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) acc_w[i] = A(0), acc_b[i] = A(0);
    const int64_t r_begin = group * rows_per_block, r_end = min(rows, r_begin + rows_per_block);
    for (int64_t r = r_begin; r < r_end; ++r) {
      const T* xr = x + r * cols;
      const G* gr = gy + r * cols;
      const A mu = mean[r], rs = rstd[r];
      A g_mean = 0, gx_mean = 0;
      if (gx) {
        A sg = 0, sgx = 0;
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
          const A g = w ? load(gr[i]) * load(w[i]) : load(gr[i]);
          sg += g;
          sgx += g * (load(xr[i]) - mu) * rs;
        }
        block_sum2(sg, sgx, scratch);
        g_mean = sg / A(cols);
        gx_mean = sgx / A(cols);
      }
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
        const A gyv = load(gr[i]);
        const A xhat = (load(xr[i]) - mu) * rs;
        if (gx) {
          const A g = w ? gyv * load(w[i]) : gyv;
          const T dx = store<T>(rs * (g - g_mean - xhat * gx_mean));
          const T out = accumulate ? store<T>(load(gx[r * cols + i]) + load(dx)) : dx;
          gx[r * cols + i] = out;
          if (gx_lowp) gx_lowp[r * cols + i] = store<G>(load(out));
        }
        if (acc_w) {
          acc_w[i] += gyv * xhat;
          acc_b[i] += gyv;
        }
      }
    }
    for (int64_t i = threadIdx.x; acc_w && i < cols; i += blockDim.x) {
      if (part_w) part_w[group * cols + i] = acc_w[i];
      if (part_b) part_b[group * cols + i] = acc_b[i];
    }
  }
}

// layernorm_backward_fused_kernel for float32 rows of a multiple of 4 columns, at most 4 * kBlock (GPT-2's,
// BERT's), with what that kernel reads twice or keeps in shared memory held in registers: thread t owns the
// 4 columns [4t, 4t + 4) (blockDim.x: cols / 4 rounded up to a warp) of kRegRows rows at a time, whose x,
// gy and (accumulating) prior gx it loads before their row sums, in 16-byte units (float4; 8 bytes for
// 16-bit gy and gx's copy), so that those rows cost one memory latency together; w is loaded once per
// block and the dweight/dbias partials stay in registers. On an H200, GPT-2's 16384 x 768 (~200 MB) took
// 86 us a call in the fused kernel, 75 us in a two-row register kernel with one element per load (taken
// out), 60 us here. The same per-element arithmetic; each thread's part of a row sum adds its 4 columns in
// order, so the row sums round differently from the fused kernel's. HONE_LAYERNORM_BACKWARD_VEC=0 turns it
// off.
constexpr int kRegRows = 2;
constexpr int kVecCols = 4;
template <class T, class G, class A>
__global__ void __launch_bounds__(kBlock)
    layernorm_backward_vec_kernel(int64_t rows, int64_t cols, int64_t rows_per_block, const T* x, const T* w,
                                  const A* mean, const A* rstd, const G* gy, T* gx, bool accumulate, G* gx_lowp,
                                  A* part_w, A* part_b) {
  using TV = Vec<T, kVecCols>;
  using GV = Vec<G, kVecCols>;
  __shared__ A scratch[32 * 2 * kRegRows];
  const int64_t c0 = int64_t(threadIdx.x) * kVecCols;
  const bool mine = c0 < cols;  // cols is a multiple of kVecCols: all four columns or none
  A wv[kVecCols], pw[kVecCols], pb[kVecCols];
  {
    TV wl{};
    if (w && mine) wl = *reinterpret_cast<const TV*>(w + c0);
#pragma unroll
    for (int j = 0; j < kVecCols; ++j) wv[j] = w && mine ? A(load(wl.v[j])) : A(1);
  }
  const int64_t groups = (rows + rows_per_block - 1) / rows_per_block;
  for (int64_t group = blockIdx.x; group < groups; group += gridDim.x) {
#pragma unroll
    for (int j = 0; j < kVecCols; ++j) pw[j] = A(0), pb[j] = A(0);
    const int64_t r_begin = group * rows_per_block, r_end = min(rows, r_begin + rows_per_block);
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kRegRows) {
      A xv[kRegRows][kVecCols], gv[kRegRows][kVecCols], prior[kRegRows][kVecCols], mu[kRegRows], rs[kRegRows];
#pragma unroll
      for (int q = 0; q < kRegRows; ++q) {
        const int64_t r = r0 + q;
        const bool in = r < r_end && mine;
        mu[q] = r < r_end ? mean[r] : A(0);
        rs[q] = r < r_end ? rstd[r] : A(0);
        TV xl{}, pl{};
        GV gl{};
        if (in) {
          xl = *reinterpret_cast<const TV*>(x + r * cols + c0);
          gl = *reinterpret_cast<const GV*>(gy + r * cols + c0);
          if (gx && accumulate) pl = *reinterpret_cast<const TV*>(gx + r * cols + c0);
        }
#pragma unroll
        for (int j = 0; j < kVecCols; ++j) {
          xv[q][j] = in ? A(load(xl.v[j])) : A(0);
          gv[q][j] = in ? A(load(gl.v[j])) : A(0);
          prior[q][j] = in && gx && accumulate ? A(load(pl.v[j])) : A(0);
        }
      }
      // Per row: the sums of g = gy w and of g xhat, reduced together (columns outside the row add 0).
      A sums[2 * kRegRows];
#pragma unroll
      for (int q = 0; q < kRegRows; ++q) {
        A sg = 0, sgx = 0;
#pragma unroll
        for (int j = 0; j < kVecCols; ++j) {
          const A g = w ? gv[q][j] * wv[j] : gv[q][j];
          sg += g;
          sgx += g * (xv[q][j] - mu[q]) * rs[q];
        }
        sums[2 * q] = sg, sums[2 * q + 1] = sgx;
      }
      if (gx) block_sums(sums, scratch);
#pragma unroll
      for (int q = 0; q < kRegRows; ++q) {
        const int64_t r = r0 + q;
        if (r >= r_end) break;
        if (!mine) continue;
        const A g_mean = gx ? sums[2 * q] / A(cols) : A(0), gx_mean = gx ? sums[2 * q + 1] / A(cols) : A(0);
        TV out;
        GV low;
#pragma unroll
        for (int j = 0; j < kVecCols; ++j) {
          const A gyv = gv[q][j];
          const A xhat = (xv[q][j] - mu[q]) * rs[q];
          const A g = w ? gyv * wv[j] : gyv;
          const T dx = store<T>(rs[q] * (g - g_mean - xhat * gx_mean));
          out.v[j] = accumulate ? store<T>(prior[q][j] + load(dx)) : dx;
          low.v[j] = store<G>(load(out.v[j]));
          pw[j] += gyv * xhat;
          pb[j] += gyv;
        }
        if (gx) {
          *reinterpret_cast<TV*>(gx + r * cols + c0) = out;
          if (gx_lowp) *reinterpret_cast<GV*>(gx_lowp + r * cols + c0) = low;
        }
      }
    }
    if (mine) {
#pragma unroll
      for (int j = 0; j < kVecCols; ++j) {
        if (part_w) part_w[group * cols + c0 + j] = pw[j];
        if (part_b) part_b[group * cols + c0 + j] = pb[j];
      }
    }
  }
}

// Threads per block of layernorm_backward_vec_kernel for rows of `cols`, or 0 where it cannot take them:
// float32 x and gx (16-byte units), 4 columns a thread, every row and pointer aligned for the units.
template <class T, class G>
int layernorm_backward_vec_threads(int64_t cols, const T* x, const T* w, const G* gy, const T* gx, const G* gx_lowp) {
  if constexpr (!std::is_same_v<T, float>) {
    return 0;
  } else {
    using TV = Vec<T, kVecCols>;
    using GV = Vec<G, kVecCols>;
    const bool aligned = aligned_for<TV>(x) && (!w || aligned_for<TV>(w)) && aligned_for<GV>(gy) &&
                         (!gx || aligned_for<TV>(gx)) && (!gx_lowp || aligned_for<GV>(gx_lowp));
    if (cols <= 0 || cols % kVecCols != 0 || cols > int64_t(kVecCols) * kBlock || !aligned) return 0;
    if (switched_off("HONE_LAYERNORM_BACKWARD_VEC")) return 0;
    return int((cols / kVecCols + 31) / 32 * 32);
  }
}

// (A warp-per-8-rows variant, row sums by shuffles and the partials in registers, measured 175 us a
// call on an H200 for GPT-2's 16384 x 768 against this kernel's 86 us: it was taken out again.)
// Rows per block of the fused backward: at least 16 (a block's reductions and partials pay for
// themselves), and at most ~2048 blocks (the partials' scratch stays small).
int64_t fused_rows_per_block(int64_t rows) { return std::max<int64_t>(16, (rows + 2047) / 2048); }
// A block's shared memory without opting in is 48 KB, static (the reduction scratch) and dynamic
// together: the partials get what the scratch leaves, with room to spare.
constexpr size_t kMaxFusedShared = 47 * 1024;

// Partial sums of gy * xhat and gy over the rows of one chunk, for one tile of columns.
template <class T, class G, class A>
__global__ void layernorm_dwdb_partial_kernel(int64_t rows, int64_t cols, const T* x, const A* mean, const A* rstd,
                                              const G* gy, A* part_w, A* part_b) {
  const int64_t i = int64_t(blockIdx.x) * kColTile + threadIdx.x;
  if (i >= cols) return;
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  // gridDim.y is at most 65535: blocks walk the chunks with a stride (more than 4M rows).
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t r_end = min(rows, (chunk + 1) * kRowChunk);
    A sw = 0, sb = 0;
    for (int64_t r = chunk * kRowChunk; r < r_end; ++r) {
      const A g = load(gy[r * cols + i]);
      sw += g * ((load(x[r * cols + i]) - mean[r]) * rstd[r]);
      sb += g;
    }
    if (part_w) part_w[chunk * cols + i] = sw;
    if (part_b) part_b[chunk * cols + i] = sb;
  }
}

// The totals of the partials: one block per kTotalCols columns, whose kTotalCols x kTotalRows threads
// each sum (in double) the partials c = ty, ty + kTotalRows, ... of their column, coalesced across the
// columns (a warp reads four 32-byte rows of eight columns); thread row 0 then adds the column's
// kTotalRows sums in a fixed order (no atomics). GPT-2's 768 columns make 96 blocks. A thread per
// column walking all ~1000 partials alone took 123 us a call on an H200, 32 columns x 16 rows per
// block (24 blocks for 768 columns, a fifth of the SMs) 32 us.
constexpr int kTotalCols = 8, kTotalRows = 64;
template <class T, class A>
__global__ void __launch_bounds__(kTotalCols* kTotalRows)
    layernorm_dwdb_total_kernel(int64_t chunks, int64_t cols, const A* part_w, const A* part_b, T* gw, T* gb) {
  __shared__ double sums_w[kTotalRows][kTotalCols + 1], sums_b[kTotalRows][kTotalCols + 1];
  const int64_t i = int64_t(blockIdx.x) * kTotalCols + threadIdx.x;
  double sw = 0, sb = 0;
  if (i < cols)
    for (int64_t c = threadIdx.y; c < chunks; c += kTotalRows) {
      if (part_w) sw += double(part_w[c * cols + i]);
      if (part_b) sb += double(part_b[c * cols + i]);
    }
  sums_w[threadIdx.y][threadIdx.x] = sw;
  sums_b[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y != 0 || i >= cols) return;
  double tw = 0, tb = 0;
  for (int r = 0; r < kTotalRows; ++r) tw += sums_w[r][threadIdx.x], tb += sums_b[r][threadIdx.x];
  if (gw) gw[i] = store<T>(A(tw));
  if (gb) gb[i] = store<T>(A(tb));
}
template <class T, class A>
void launch_dwdb_total(int64_t chunks, int64_t cols, const A* part_w, const A* part_b, T* gw, T* gb,
                       cudaStream_t stream) {
  if (cols <= 0) return;
  layernorm_dwdb_total_kernel<<<unsigned((cols + kTotalCols - 1) / kTotalCols), dim3(kTotalCols, kTotalRows), 0,
                                stream>>>(chunks, cols, part_w, part_b, gw, gb);
  check_launch("layernorm_backward (dweight/dbias totals)");
}

}  // namespace

template <class T>
void layernorm_forward(int64_t rows, int64_t cols, const T* x, const T* weight, const T* bias, double eps, T* y,
                       acc_t<T>* mean, acc_t<T>* rstd, cudaStream_t stream) {
  if (rows == 0) return;
  using A = acc_t<T>;
  layernorm_forward_kernel<<<row_blocks(rows), kBlock, 0, stream>>>(rows, cols, dptr(x), dptr(weight), dptr(bias),
                                                                    A(eps), dptr(y), mean, rstd);
  check_launch("layernorm_forward");
}

namespace {
// layernorm_backward with gy of type G (T, or 16 bits for the _lowp_gy form).
template <class T, class G>
void launch_layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                               const acc_t<T>* rstd, const G* gy, T* gx, T* gweight, T* gbias, cudaStream_t stream,
                               bool accumulate_gx, G* gx_lowp) {
  using A = acc_t<T>;
  const size_t fused_shared = 2 * size_t(cols) * sizeof(A);
  if ((gweight || gbias) && rows > 0 && cols > 0 && fused_shared <= kMaxFusedShared) {
    // One pass for dx and the parameter-gradient partials.
    const int64_t per_block = fused_rows_per_block(rows), blocks = (rows + per_block - 1) / per_block;
    Scratch sw(gweight ? blocks * cols * sizeof(A) : 0, stream), sb(gbias ? blocks * cols * sizeof(A) : 0, stream);
    if (const int threads = layernorm_backward_vec_threads(cols, x, weight, gy, gx, gx_lowp); threads > 0) {
      if constexpr (std::is_same_v<T, float>) {  // (the only type it takes: no other instantiations)
        layernorm_backward_vec_kernel<<<unsigned(blocks), threads, 0, stream>>>(
            rows, cols, per_block, dptr(x), dptr(weight), mean, rstd, dptr(gy), dptr(gx), accumulate_gx, dptr(gx_lowp),
            sw.as<A>(), sb.as<A>());
      }
    } else {
      layernorm_backward_fused_kernel<<<unsigned(blocks), kBlock, fused_shared, stream>>>(
          rows, cols, per_block, dptr(x), dptr(weight), mean, rstd, dptr(gy), dptr(gx), accumulate_gx, dptr(gx_lowp),
          sw.as<A>(), sb.as<A>());
    }
    check_launch("layernorm_backward (fused)");
    launch_dwdb_total(blocks, cols, sw.as<A>(), sb.as<A>(), dptr(gweight), dptr(gbias), stream);
    return;
  }
  // Wide rows (or no parameter gradients): dx one block per row, then the partials in a second pass.
  if (gx && rows > 0) {
    layernorm_backward_fused_kernel<<<row_blocks(rows), kBlock, 0, stream>>>(
        rows, cols, 1, dptr(x), dptr(weight), mean, rstd, dptr(gy), dptr(gx), accumulate_gx, dptr(gx_lowp),
        static_cast<A*>(nullptr), static_cast<A*>(nullptr));
    check_launch("layernorm_backward (dx)");
  }
  if (!gweight && !gbias) return;
  const int64_t chunks = (rows + kRowChunk - 1) / kRowChunk;
  Scratch sw(gweight ? chunks * cols * sizeof(A) : 0, stream), sb(gbias ? chunks * cols * sizeof(A) : 0, stream);
  if (chunks > 0 && cols > 0) {
    const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile),
                    static_cast<unsigned>(chunks > 65535 ? 65535 : chunks));
    layernorm_dwdb_partial_kernel<<<grid, kColTile, 0, stream>>>(rows, cols, dptr(x), mean, rstd, dptr(gy),
                                                                  sw.as<A>(), sb.as<A>());
    check_launch("layernorm_backward (dweight/dbias partials)");
  }
  launch_dwdb_total(chunks, cols, sw.as<A>(), sb.as<A>(), dptr(gweight), dptr(gbias), stream);
}
}  // namespace

template <class T>
void layernorm_backward(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                        const acc_t<T>* rstd, const T* gy, T* gx, T* gweight, T* gbias, cudaStream_t stream,
                        bool accumulate_gx) {
  launch_layernorm_backward(rows, cols, x, weight, mean, rstd, gy, gx, gweight, gbias, stream, accumulate_gx,
                            static_cast<T*>(nullptr));
}

template <class T, class H>
void layernorm_backward_lowp_gy(int64_t rows, int64_t cols, const T* x, const T* weight, const acc_t<T>* mean,
                                const acc_t<T>* rstd, const H* gy, T* gx, T* gweight, T* gbias, cudaStream_t stream,
                                bool accumulate_gx, H* gx_lowp) {
  launch_layernorm_backward(rows, cols, x, weight, mean, rstd, gy, gx, gweight, gbias, stream, accumulate_gx, gx_lowp);
}

#define HONE_INSTANTIATE(T)                                                                                            \
  template void layernorm_forward<T>(int64_t, int64_t, const T*, const T*, const T*, double, T*, acc_t<T>*, acc_t<T>*, \
                                     cudaStream_t);                                                                    \
  template void layernorm_backward<T>(int64_t, int64_t, const T*, const T*, const acc_t<T>*, const acc_t<T>*,          \
                                      const T*, T*, T*, T*, cudaStream_t, bool);
HONE_INSTANTIATE(float)
HONE_INSTANTIATE(double)
HONE_INSTANTIATE(bf16)
HONE_INSTANTIATE(f16)
#undef HONE_INSTANTIATE
template void layernorm_backward_lowp_gy<float, bf16>(int64_t, int64_t, const float*, const float*, const float*,
                                                      const float*, const bf16*, float*, float*, float*, cudaStream_t,
                                                      bool, bf16*);
template void layernorm_backward_lowp_gy<float, f16>(int64_t, int64_t, const float*, const float*, const float*,
                                                     const float*, const f16*, float*, float*, float*, cudaStream_t,
                                                     bool, f16*);

}  // namespace hone::kernels::cuda
