// Tests of the emulated cuDNN backend graph API (cudnn_backend.cpp, cudnn_graph_exec.cpp) through
// the C calls themselves: the operation semantics the attention graphs rely on (broadcasting,
// GEN_INDEX, comparisons and BINARY_SELECT, reductions, a transposing reshape, a batched matmul,
// rounding to the declared types), and the failures a real engine reports: an operation it cannot
// run fails the plan with the reason, a missing or short buffer fails the execution. End to end, the
// frontend's attention graphs run on it in tests/kernels/attention_cudnn_test.cpp.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

// An owned backend descriptor.
struct D {
  cudnnBackendDescriptor_t h = nullptr;
  explicit D(cudnnBackendDescriptorType_t type) {
    EXPECT_EQ(cudnnBackendCreateDescriptor(type, &h), CUDNN_STATUS_SUCCESS);
  }
  ~D() { cudnnBackendDestroyDescriptor(h); }
  D(const D&) = delete;
  D& operator=(const D&) = delete;
  template <class T>
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const std::vector<T>& v) {
    ASSERT_EQ(cudnnBackendSetAttribute(h, name, type, int64_t(v.size()), v.data()), CUDNN_STATUS_SUCCESS) << name;
  }
  void set_desc(cudnnBackendAttributeName_t name, const std::vector<const D*>& ds) {
    std::vector<cudnnBackendDescriptor_t> hs;
    for (const D* d : ds) hs.push_back(d->h);
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, hs);
  }
  cudnnStatus_t finalize() { return cudnnBackendFinalize(h); }
};

std::vector<int64_t> packed(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) st[i] = st[i + 1] * dims[i + 1];
  return st;
}

std::unique_ptr<D> tensor(int64_t uid, std::vector<int64_t> dims, cudnnDataType_t type = CUDNN_DATA_FLOAT,
                          bool is_virtual = false, std::vector<int64_t> strides = {}) {
  auto t = std::make_unique<D>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  if (strides.empty()) strides = packed(dims);
  t->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, std::vector<int64_t>{uid});
  t->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, std::vector<cudnnDataType_t>{type});
  t->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims);
  t->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides);
  t->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, std::vector<int64_t>{16});
  t->set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, std::vector<char>{char(is_virtual)});
  EXPECT_EQ(t->finalize(), CUDNN_STATUS_SUCCESS);
  return t;
}

// A float scalar passed by value (how the frontend passes its constants): the variant pack points
// at host memory.
std::unique_ptr<D> by_value_scalar(int64_t uid) {
  auto t = std::make_unique<D>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, std::vector<int64_t>{uid});
  t->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, std::vector<cudnnDataType_t>{CUDNN_DATA_FLOAT});
  t->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, std::vector<int64_t>{1, 1});
  t->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, std::vector<int64_t>{1, 1});
  t->set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, std::vector<char>{1});
  EXPECT_EQ(t->finalize(), CUDNN_STATUS_SUCCESS);
  return t;
}

// The pieces of one graph, kept alive together.
struct Graph {
  std::vector<std::unique_ptr<D>> keep;
  std::vector<const D*> ops;
  const D* add(std::unique_ptr<D> d) {
    keep.push_back(std::move(d));
    return keep.back().get();
  }
  using Links = std::vector<std::pair<cudnnBackendAttributeName_t, const D*>>;
  // An operation of `type` whose descriptor-valued attributes are `links`, added to the graph.
  void operation(cudnnBackendDescriptorType_t type, const Links& links) {
    auto op = std::make_unique<D>(type);
    for (const auto& [name, d] : links) op->set_desc(name, {d});
    EXPECT_EQ(op->finalize(), CUDNN_STATUS_SUCCESS);
    ops.push_back(add(std::move(op)));
  }
  // A finalized descriptor of `type` with the attributes `set` gives it, kept with the graph.
  template <class Set>
  const D* config(cudnnBackendDescriptorType_t type, Set&& set) {
    auto d = std::make_unique<D>(type);
    set(*d);
    EXPECT_EQ(d->finalize(), CUDNN_STATUS_SUCCESS);
    return add(std::move(d));
  }
  static void float_compute(D& d, cudnnBackendAttributeName_t name) {
    d.set(name, CUDNN_TYPE_DATA_TYPE, std::vector<cudnnDataType_t>{CUDNN_DATA_FLOAT});
  }

  void pointwise(cudnnPointwiseMode_t mode, std::vector<const D*> in, const D* y, int64_t axis = -1) {
    const D* pw = config(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, [&](D& d) {
      d.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, std::vector<cudnnPointwiseMode_t>{mode});
      float_compute(d, CUDNN_ATTR_POINTWISE_MATH_PREC);
      if (axis >= 0) d.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, std::vector<int64_t>{axis});
    });
    const cudnnBackendAttributeName_t names[] = {CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                                 CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                                 CUDNN_ATTR_OPERATION_POINTWISE_TDESC};
    Links links{{CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw}, {CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y}};
    for (size_t i = 0; i < in.size(); ++i) links.push_back({names[i], in[i]});
    operation(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, links);
  }
  void reduction(cudnnReduceTensorOp_t mode, const D* x, const D* y) {
    const D* rd = config(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, [&](D& d) {
      d.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE,
            std::vector<cudnnReduceTensorOp_t>{mode});
      float_compute(d, CUDNN_ATTR_REDUCTION_COMP_TYPE);
    });
    operation(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, {{CUDNN_ATTR_OPERATION_REDUCTION_DESC, rd},
                                                             {CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x},
                                                             {CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y}});
  }
  void reshape(const D* x, const D* y) {
    operation(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR,
              {{CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x}, {CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y}});
  }
  void matmul(const D* a, const D* b, const D* c) {
    const D* md = config(CUDNN_BACKEND_MATMUL_DESCRIPTOR, [&](D& d) { float_compute(d, CUDNN_ATTR_MATMUL_COMP_TYPE); });
    operation(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, {{CUDNN_ATTR_OPERATION_MATMUL_DESC, md},
                                                          {CUDNN_ATTR_OPERATION_MATMUL_ADESC, a},
                                                          {CUDNN_ATTR_OPERATION_MATMUL_BDESC, b},
                                                          {CUDNN_ATTR_OPERATION_MATMUL_CDESC, c}});
  }
  // The plan of the graph through heuristics (as the frontend gets it): its finalize status, and
  // the plan in `plan`.
  cudnnStatus_t build(cudnnHandle_t h, std::unique_ptr<D>& plan) {
    auto g = std::make_unique<D>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    g->set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, std::vector<cudnnHandle_t>{h});
    g->set_desc(CUDNN_ATTR_OPERATIONGRAPH_OPS, ops);
    EXPECT_EQ(g->finalize(), CUDNN_STATUS_SUCCESS);
    D heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, {g.get()});
    heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, std::vector<cudnnBackendHeurMode_t>{CUDNN_HEUR_MODE_A});
    EXPECT_EQ(heur.finalize(), CUDNN_STATUS_SUCCESS);
    int64_t n = -1;
    EXPECT_EQ(
        cudnnBackendGetAttribute(heur.h, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, nullptr),
        CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(n, 1);
    auto config = std::make_unique<D>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    EXPECT_EQ(cudnnBackendGetAttribute(heur.h, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                       &config->h),
              CUDNN_STATUS_SUCCESS);
    plan = std::make_unique<D>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, std::vector<cudnnHandle_t>{h});
    plan->set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, {config.get()});
    add(std::move(g));
    add(std::move(config));
    return plan->finalize();
  }
};

cudnnStatus_t execute(cudnnHandle_t h, const D& plan, const std::vector<int64_t>& uids,
                      const std::vector<void*>& ptrs) {
  D pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids);
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, ptrs);
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, std::vector<void*>{nullptr});
  EXPECT_EQ(pack.finalize(), CUDNN_STATUS_SUCCESS);
  return cudnnBackendExecute(h, plan.h, pack.h);
}

std::string last_error() {
  char msg[1024];
  cudnnGetLastErrorString(msg, sizeof msg);
  return msg;
}

template <class T>
T* device_copy(const std::vector<T>& h) {
  T* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, h.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return p;
}
template <class T>
std::vector<T> host_copy(const T* p, size_t n) {
  std::vector<T> h(n);
  EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

class EmulatedCudnnGraph : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cudnnCreate(&h_), CUDNN_STATUS_SUCCESS); }
  void TearDown() override { cudnnDestroy(h_); }
  cudnnHandle_t h_ = nullptr;
};

// A causal mask as the frontend spells it: row >= col from two GEN_INDEXes, then
// y = select(mask, x * scale, -1e9) with scale passed by value, its row max by reduction, and the
// max written as bf16. x is read through a transposing reshape of a [2, 3] tensor stored [3, 2].
TEST_F(EmulatedCudnnGraph, MaskSelectScaleReduceAndTranspose) {
  Graph g;
  const D* xt = g.add(tensor(1, {3, 2}));                                 // stored transposed: x^T
  const D* x = g.add(tensor(2, {2, 3}, CUDNN_DATA_FLOAT, true, {1, 2}));  // x = reshape(x^T) through strides
  g.reshape(xt, x);
  const D* scale = g.add(by_value_scalar(3));
  const D* scaled = g.add(tensor(4, {2, 3}, CUDNN_DATA_FLOAT, true));
  g.pointwise(CUDNN_POINTWISE_MUL, {x, scale}, scaled);
  const D* row = g.add(tensor(5, {2, 3}, CUDNN_DATA_INT32, true));
  const D* col = g.add(tensor(6, {2, 3}, CUDNN_DATA_INT32, true));
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, {scaled}, row, 0);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, {scaled}, col, 1);
  const D* keep = g.add(tensor(7, {2, 3}, CUDNN_DATA_BOOLEAN, true));
  g.pointwise(CUDNN_POINTWISE_CMP_GE, {row, col}, keep);
  const D* fill = g.add(tensor(8, {1, 1}));
  const D* masked = g.add(tensor(9, {2, 3}));
  g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, {scaled, fill, keep}, masked);
  const D* mx = g.add(tensor(10, {2, 1}, CUDNN_DATA_BFLOAT16));
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, masked, mx);
  std::unique_ptr<D> plan;
  ASSERT_EQ(g.build(h_, plan), CUDNN_STATUS_SUCCESS) << last_error();

  const std::vector<float> x_t{1.f, 4.f, 2.f, 5.f, 3.f, 6.f};  // x = [[1 2 3] [4 5 6]]
  float* dxt = device_copy(x_t);
  float* dfill = device_copy(std::vector<float>{-1e9f});
  float* dmasked = device_copy(std::vector<float>(6, 0.f));
  __nv_bfloat16* dmx = nullptr;
  ASSERT_EQ(cudaMalloc(&dmx, 2 * sizeof(__nv_bfloat16)), cudaSuccess);
  float scale_value = 1.5f;
  ASSERT_EQ(execute(h_, *plan, {1, 3, 8, 9, 10}, {dxt, &scale_value, dfill, dmasked, dmx}), CUDNN_STATUS_SUCCESS)
      << last_error();
  const std::vector<float> want_masked{1.5f, -1e9f, -1e9f, 6.f, 7.5f, -1e9f};
  EXPECT_EQ(host_copy(dmasked, 6), want_masked);
  const std::vector<__nv_bfloat16> got_mx = host_copy(dmx, 2);
  EXPECT_EQ(__bfloat162float(got_mx[0]), 1.5f);
  EXPECT_EQ(__bfloat162float(got_mx[1]), 7.5f);
  for (void* p : std::initializer_list<void*>{dxt, dfill, dmasked, dmx}) cudaFree(p);
}

// C[b] = A[b] B with B broadcast over the batch, and a sum over the rows of C (a reduction to [b, 1, n]).
TEST_F(EmulatedCudnnGraph, BatchedMatmulBroadcastsAndReduces) {
  Graph g;
  const D* a = g.add(tensor(1, {2, 2, 3}));
  const D* b = g.add(tensor(2, {1, 3, 2}));
  const D* c = g.add(tensor(3, {2, 2, 2}));
  const D* s = g.add(tensor(4, {2, 1, 2}));
  g.matmul(a, b, c);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, c, s);
  std::unique_ptr<D> plan;
  ASSERT_EQ(g.build(h_, plan), CUDNN_STATUS_SUCCESS) << last_error();
  float* da = device_copy(std::vector<float>{1, 2, 3, 4, 5, 6, -1, 0, 1, 2, 0, -2});
  float* db = device_copy(std::vector<float>{1, 0, 0, 1, 1, 1});
  float* dc = device_copy(std::vector<float>(8, 0.f));
  float* ds = device_copy(std::vector<float>(4, 0.f));
  ASSERT_EQ(execute(h_, *plan, {1, 2, 3, 4}, {da, db, dc, ds}), CUDNN_STATUS_SUCCESS) << last_error();
  EXPECT_EQ(host_copy(dc, 8), (std::vector<float>{4, 5, 10, 11, 0, 1, 0, -2}));
  EXPECT_EQ(host_copy(ds, 4), (std::vector<float>{14, 16, 0, -1}));
  for (float* p : {da, db, dc, ds}) cudaFree(p);
}

// The plan of y = mode(x) over 4 floats (x is uid 1, y uid 2).
cudnnStatus_t build_unary(cudnnHandle_t h, cudnnPointwiseMode_t mode, Graph& g, std::unique_ptr<D>& plan) {
  const D* x = g.add(tensor(1, {4}));
  const D* y = g.add(tensor(2, {4}));
  g.pointwise(mode, {x}, y);
  return g.build(h, plan);
}

TEST_F(EmulatedCudnnGraph, AnOperationItCannotRunFailsThePlanWithTheReason) {
  Graph g;
  std::unique_ptr<D> plan;
  EXPECT_EQ(build_unary(h_, CUDNN_POINTWISE_ERF, g, plan), CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN);
  EXPECT_NE(last_error().find("pointwise mode " + std::to_string(int(CUDNN_POINTWISE_ERF))), std::string::npos);
}

TEST_F(EmulatedCudnnGraph, AMissingOrShortBufferFailsTheExecution) {
  Graph g;
  std::unique_ptr<D> plan;
  ASSERT_EQ(build_unary(h_, CUDNN_POINTWISE_NEG, g, plan), CUDNN_STATUS_SUCCESS) << last_error();
  float* dx = device_copy(std::vector<float>{1, 2, 3, 4});
  float* short_y = device_copy(std::vector<float>{0, 0, 0});
  EXPECT_EQ(execute(h_, *plan, {1}, {dx}), CUDNN_STATUS_EXECUTION_FAILED);
  EXPECT_NE(last_error().find("no pointer in the variant pack for tensor 2"), std::string::npos);
  EXPECT_EQ(execute(h_, *plan, {1, 2}, {dx, short_y}), CUDNN_STATUS_EXECUTION_FAILED);
  EXPECT_NE(last_error().find("tensor 2 ([4], 16 bytes) is not inside one device allocation"), std::string::npos);
  float host_y[4];
  EXPECT_EQ(execute(h_, *plan, {1, 2}, {dx, host_y}), CUDNN_STATUS_EXECUTION_FAILED);
  cudaFree(dx);
  cudaFree(short_y);
}

}  // namespace
