// The CUDA emulator's cuBLASLt (tests/cuda_emu): the descriptor calls hone makes and a plain
// column-major matmul that follows cuBLASLt's documented semantics (cublasLt.h), so that an emulated
// build checks what kernels/cuda/gemm.cpp asks of cuBLASLt (layouts, transposes, batch strides,
// leading dimensions, the epilogues' bias / aux / bias-gradient contracts) without a GPU:
//
//   D = epilogue(alpha * op(A) op(B) + beta * C)        (C is not read when beta == 0)
//   BIAS: + bias[row]; GELU (tanh form): gelu(x); *_AUX: aux[row + col * aux_ld] = the GELU input;
//   DGELU: D * gelu'(aux); *_BGRAD: bias[row] = sum over columns of D; BGRADA: bias[row] = sum over k
//   of op(A); BGRADB: bias[col] = sum over k of op(B).
//
// Products accumulate in double from inputs rounded as the compute type says (TF32: 10 mantissa
// bits). What it checks like the library: dimensions that agree, ld >= rows, an aux leading dimension
// that is a multiple of 8 and >= rows, the pointers an epilogue needs. Epilogues with batch > 1
// answer NOT_SUPPORTED (hone then takes its fallback path, which the tests thereby also run).
#include <cublasLt.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "activity.h"
#include "cuda_emu/counters.h"
#include "cuda_emu/device.h"

namespace {

struct Desc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  void* bias = nullptr;
  void* aux = nullptr;
  int64_t aux_ld = 0;
};

struct Layout {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
  int32_t batch = 1;
  int64_t stride = 0;
};

struct Pref {
  uint64_t workspace = 0;
};

Desc* desc_of(cublasLtMatmulDesc_t d) { return reinterpret_cast<Desc*>(d); }
Layout* layout_of(cublasLtMatrixLayout_t l) { return reinterpret_cast<Layout*>(l); }

template <class V>
cublasStatus_t read_attr(V& out, const void* buf, size_t size) {
  if (size != sizeof(V) || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(&out, buf, sizeof(V));
  return CUBLAS_STATUS_SUCCESS;
}

hone::emu::Elem elem_of(cudaDataType_t t) {
  using hone::emu::Elem;
  switch (t) {
    case CUDA_R_32F: return Elem::F32;
    case CUDA_R_64F: return Elem::F64;
    case CUDA_R_16BF: return Elem::BF16;
    case CUDA_R_16F: return Elem::F16;
    default: return Elem::None;
  }
}
double load(cudaDataType_t t, const void* base, int64_t i) { return hone::emu::load_elem(elem_of(t), base, i); }
void store(cudaDataType_t t, void* base, int64_t i, double v) { hone::emu::store_elem(elem_of(t), base, i, v); }

// An input as the compute type sees it: TF32 keeps 10 mantissa bits (round to nearest, ties away).
double as_computed(double v, cublasComputeType_t c) {
  if (c != CUBLAS_COMPUTE_32F_FAST_TF32) return v;
  float f = float(v);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & 0xffffe000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

double gelu_tanh(double z) { return 0.5 * z * (1 + std::tanh(0.7978845608028654 * (z + 0.044715 * z * z * z))); }
double gelu_tanh_slope(double z) {
  const double t = std::tanh(0.7978845608028654 * (z + 0.044715 * z * z * z));
  const double du = 0.7978845608028654 * (1 + 3 * 0.044715 * z * z);
  return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du;
}

bool has(uint32_t epilogue, uint32_t bits) { return (epilogue & bits) == bits; }

std::mutex g_calls_mu;
std::vector<hone::emu::GemmCall> g_calls;  // every matmul that ran (gemm_calls())
std::atomic<uint64_t> g_heuristic_queries{0};

void record_call(const Desc& d, const Layout& a, const Layout& b, const Layout& dl, int64_t k, const void* A,
                 const void* B, const void* D) {
  hone::emu::GemmCall c;
  c.elem_bytes = int(hone::emu::elem_bytes(elem_of(a.type)));
  c.d_elem_bytes = int(hone::emu::elem_bytes(elem_of(dl.type)));
  c.m = int64_t(dl.rows), c.n = int64_t(dl.cols), c.k = k, c.batch = dl.batch;
  c.lda = a.ld, c.ldb = b.ld, c.ldd = dl.ld;
  c.stride_a = a.stride, c.stride_b = b.stride, c.stride_d = dl.stride;
  c.a = uintptr_t(A), c.b = uintptr_t(B), c.d = uintptr_t(D);
  c.bias = (d.epilogue & (CUBLASLT_EPILOGUE_BIAS | CUBLASLT_EPILOGUE_BGRADA | CUBLASLT_EPILOGUE_BGRADB))
               ? uintptr_t(d.bias)
               : 0;
  c.epilogue = d.epilogue;
  std::lock_guard<std::mutex> lock(g_calls_mu);
  g_calls.push_back(c);
}

// Everything a matmul of these descriptors needs that cuBLASLt would check; SUCCESS or why not.
cublasStatus_t validate(const Desc& d, const Layout& a, const Layout& b, const Layout& c, const Layout& dl) {
  const uint64_t m = dl.rows, n = dl.cols;
  const uint64_t a_rows = d.trans_a == CUBLAS_OP_N ? a.rows : a.cols, k = d.trans_a == CUBLAS_OP_N ? a.cols : a.rows;
  const uint64_t b_rows = d.trans_b == CUBLAS_OP_N ? b.rows : b.cols, b_cols = d.trans_b == CUBLAS_OP_N ? b.cols : b.rows;
  if (a_rows != m || b_rows != k || b_cols != n || c.rows != m || c.cols != n) return CUBLAS_STATUS_INVALID_VALUE;
  for (const Layout* l : {&a, &b, &c, &dl}) {
    if (l->ld < int64_t(l->rows) || l->ld < 1 || elem_of(l->type) == hone::emu::Elem::None) return CUBLAS_STATUS_INVALID_VALUE;
    if (l->batch != dl.batch) return CUBLAS_STATUS_INVALID_VALUE;
  }
  const bool fp64 = d.compute == CUBLAS_COMPUTE_64F;
  if (fp64 != (dl.type == CUDA_R_64F)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (d.trans_a == CUBLAS_OP_C || d.trans_b == CUBLAS_OP_C) return CUBLAS_STATUS_NOT_SUPPORTED;
  const uint32_t known[] = {CUBLASLT_EPILOGUE_DEFAULT,       CUBLASLT_EPILOGUE_BIAS,  CUBLASLT_EPILOGUE_GELU,
                            CUBLASLT_EPILOGUE_GELU_BIAS,     CUBLASLT_EPILOGUE_GELU_AUX,
                            CUBLASLT_EPILOGUE_GELU_AUX_BIAS, CUBLASLT_EPILOGUE_DGELU, CUBLASLT_EPILOGUE_DGELU_BGRAD,
                            CUBLASLT_EPILOGUE_BGRADA,        CUBLASLT_EPILOGUE_BGRADB};
  bool ok = false;
  for (uint32_t e : known) ok |= e == d.epilogue;
  if (!ok) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (d.epilogue == CUBLASLT_EPILOGUE_DEFAULT) return CUBLAS_STATUS_SUCCESS;
  if (dl.batch > 1) return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool needs_bias = d.epilogue != CUBLASLT_EPILOGUE_GELU && d.epilogue != CUBLASLT_EPILOGUE_GELU_AUX &&
                          d.epilogue != CUBLASLT_EPILOGUE_DGELU;
  if (needs_bias && !d.bias) return CUBLAS_STATUS_INVALID_VALUE;
  if (has(d.epilogue, 128)) {  // an aux matrix (the GELU input), m x n with leading dimension aux_ld
    if (!d.aux || d.aux_ld < int64_t(m) || d.aux_ld % 8 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}

template <class Impl, class Handle, class... Args>
cublasStatus_t create(Handle* out, Args... args) {
  hone::emu::make_handle<Impl>(out, args...);
  return CUBLAS_STATUS_SUCCESS;
}
template <class Impl, class Handle>
cublasStatus_t destroy(Handle h) {
  hone::emu::free_handle<Impl>(h);
  return CUBLAS_STATUS_SUCCESS;
}

struct Lt {};

}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) { return create<Lt>(handle); }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) { return destroy<Lt>(handle); }
const char* cublasLtGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS (emulated)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (emulated)";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED (emulated)";
    default: return "cuBLAS error (emulated)";
  }
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  return create<Desc>(d, compute, scale);
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { return destroy<Desc>(d); }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  Desc& d = *desc_of(desc);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return read_attr(d.trans_a, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return read_attr(d.trans_b, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return read_attr(d.epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return read_attr(d.bias, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return read_attr(d.aux, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return read_attr(d.aux_ld, buf, size);
    default: return CUBLAS_STATUS_INVALID_VALUE;  // an attribute hone does not set today: emulate it first
  }
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
  return create<Layout>(l, type, rows, cols, ld);
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { return destroy<Layout>(l); }
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void* buf, size_t size) {
  Layout& l = *layout_of(layout);
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return read_attr(l.batch, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return read_attr(l.stride, buf, size);
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) { return create<Pref>(p); }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { return destroy<Pref>(p); }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return read_attr(reinterpret_cast<Pref*>(p)->workspace, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
      uint32_t align = 0;
      return read_attr(align, buf, size);
    }
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t* results, int* found) {
  g_heuristic_queries.fetch_add(1);
  *found = 0;
  if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
  const cublasStatus_t st = validate(*desc_of(desc), *layout_of(a), *layout_of(b), *layout_of(c), *layout_of(d));
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  // Up to three candidates (all the same emulated kernel), so that a caller's choice among several runs.
  const int n = requested < 3 ? requested : 3;
  for (int i = 0; i < n; ++i) {
    std::memset(&results[i], 0, sizeof results[i]);
    results[i].state = CUBLAS_STATUS_SUCCESS;
    results[i].wavesCount = 1.f;
  }
  *found = n;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a_layout, const void* B, cublasLtMatrixLayout_t b_layout,
                              const void* beta, const void* C, cublasLtMatrixLayout_t c_layout, void* D,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t*, void*, size_t,
                              cudaStream_t) {
  const hone::emu::DeviceAccess access;  // the matmul reads and writes device memory
  const Desc& d = *desc_of(desc);
  const Layout &a = *layout_of(a_layout), &b = *layout_of(b_layout), &c = *layout_of(c_layout),
               &dl = *layout_of(d_layout);
  if (const cublasStatus_t st = validate(d, a, b, c, dl); st != CUBLAS_STATUS_SUCCESS) return st;
  record_call(d, a, b, dl, int64_t(d.trans_a == CUBLAS_OP_N ? a.cols : a.rows), A, B, D);
  // For a CUPTI client (tests/cuda_emu/cupti.cpp): one "kernel" per matmul, named as cuBLASLt's are.
  const hone::emu::KernelActivity activity("sm90_emulated_cublasLt_gemm");
  const bool f64 = d.scale == CUDA_R_64F;
  const double al = f64 ? *static_cast<const double*>(alpha) : *static_cast<const float*>(alpha);
  const double be = f64 ? *static_cast<const double*>(beta) : *static_cast<const float*>(beta);
  const int64_t m = int64_t(dl.rows), n = int64_t(dl.cols);
  const int64_t k = int64_t(d.trans_a == CUBLAS_OP_N ? a.cols : a.rows);
  auto opA = [&](int64_t base, int64_t i, int64_t kk) {
    return as_computed(load(a.type, A, base + (d.trans_a == CUBLAS_OP_N ? i + kk * a.ld : kk + i * a.ld)), d.compute);
  };
  auto opB = [&](int64_t base, int64_t kk, int64_t j) {
    return as_computed(load(b.type, B, base + (d.trans_b == CUBLAS_OP_N ? kk + j * b.ld : j + kk * b.ld)), d.compute);
  };
  const uint32_t e = d.epilogue;
  std::vector<double> out(size_t(m * n));
  for (int64_t batch = 0; batch < dl.batch; ++batch) {
    const int64_t ab = batch * a.stride, bb = batch * b.stride, cb = batch * c.stride, db = batch * dl.stride;
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) {
        double acc = 0;
        for (int64_t kk = 0; kk < k; ++kk) acc += opA(ab, i, kk) * opB(bb, kk, j);
        double v = al * acc;
        if (be != 0) v += be * load(c.type, C, cb + i + j * c.ld);
        if (has(e, CUBLASLT_EPILOGUE_BIAS)) v += load(dl.type, d.bias, i);  // BIAS, GELU_BIAS, GELU_AUX_BIAS
        if (has(e, CUBLASLT_EPILOGUE_GELU)) {
          if (has(e, 128)) store(dl.type, d.aux, i + j * d.aux_ld, v);
          v = gelu_tanh(v);
        }
        if (has(e, CUBLASLT_EPILOGUE_DGELU)) v *= gelu_tanh_slope(load(dl.type, d.aux, i + j * d.aux_ld));
        out[size_t(i + j * m)] = v;
      }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < m; ++i) store(dl.type, D, db + i + j * dl.ld, out[size_t(i + j * m)]);
    if (e == CUBLASLT_EPILOGUE_DGELU_BGRAD) {
      for (int64_t i = 0; i < m; ++i) {
        double s = 0;
        for (int64_t j = 0; j < n; ++j) s += out[size_t(i + j * m)];
        store(dl.type, d.bias, i, s);
      }
    } else if (e == CUBLASLT_EPILOGUE_BGRADA) {
      for (int64_t i = 0; i < m; ++i) {
        double s = 0;
        for (int64_t kk = 0; kk < k; ++kk) s += load(a.type, A, ab + (d.trans_a == CUBLAS_OP_N ? i + kk * a.ld : kk + i * a.ld));
        store(dl.type, d.bias, i, s);
      }
    } else if (e == CUBLASLT_EPILOGUE_BGRADB) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t kk = 0; kk < k; ++kk) s += load(b.type, B, bb + (d.trans_b == CUBLAS_OP_N ? kk + j * b.ld : j + kk * b.ld));
        store(dl.type, d.bias, j, s);
      }
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

namespace hone::emu {

std::string GemmCall::misaligned() const {
  const struct {
    const char* what;
    int64_t value;
    int elem;  // bytes per element the value counts (0: it is an address)
  } checks[] = {{"A's address", int64_t(a), 0},
                {"B's address", int64_t(b), 0},
                {"D's address", int64_t(d), 0},
                {"the bias's address", int64_t(bias), 0},
                {"lda", lda, elem_bytes},
                {"ldb", ldb, elem_bytes},
                {"ldd", ldd, d_elem_bytes},
                {"A's batch stride", batch > 1 ? stride_a : 0, elem_bytes},
                {"B's batch stride", batch > 1 ? stride_b : 0, elem_bytes},
                {"D's batch stride", batch > 1 ? stride_d : 0, d_elem_bytes}};
  for (const auto& c : checks) {
    const int64_t b = c.elem ? c.value * c.elem : c.value;
    if (b % 16 != 0)
      return std::string(c.what) + " " + std::to_string(c.value) + (c.elem ? " elements" : "") + " (" +
             std::to_string(c.elem) + "-byte elements)";
  }
  return "";
}

std::vector<GemmCall> gemm_calls() {
  std::lock_guard<std::mutex> lock(g_calls_mu);
  return g_calls;
}
uint64_t heuristic_queries() { return g_heuristic_queries.load(); }

}  // namespace hone::emu
