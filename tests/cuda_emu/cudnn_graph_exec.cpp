// The emulated cuDNN's one engine (tests/cuda_emu; cudnn_backend.h says why): it runs an operation
// graph on the host. Every tensor is a dense array of doubles in its logical (dimension) order;
// a virtual tensor's value is rounded to its declared type (float, bf16, f16, int, bool) as a real
// engine holds it, a non-virtual one is read and written through its strides in device memory, and
// a by-value tensor is the host scalar the variant pack points at. Operations run in dependency order.
//
// The semantics are cuDNN's documented ones:
//  - pointwise: y = op(x[, b[, t]]) elementwise, each input broadcast where its dimension is 1;
//    GEN_INDEX gives the output coordinate along its axis; BINARY_SELECT is t ? x : b.
//  - matmul: C[..., m, n] = sum_k A[..., m, k] B[..., k, n]; a batch dimension of A or B that is 1,
//    or a divisor of C's (grouped heads), is broadcast.
//  - reduction: y reduces x over the dimensions where y's is 1 (add, mul, min, max, amax, avg).
//  - reshape: y is x's memory read through y's dimensions and strides (a transpose is a reshape).
//  - the fused SDPA forward (cuDNN 9.13+): O = softmax(scale Q K^T) V per batch and head, with the
//    statistics max + log(sum exp) of each row; P rounded to the I/O type before P V, as the
//    fused kernels do.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_emu/device.h"
#include "cudnn_backend.h"

namespace hone::emu::cudnn {
namespace {

[[noreturn]] void unsupported(const std::string& why) { throw std::runtime_error(why); }

struct TensorInfo {
  int64_t uid = 0;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  std::vector<int64_t> dims, strides;
  bool is_virtual = false, by_value = false;
};

int64_t numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

TensorInfo tensor_info(const DescPtr& d, const char* role) {
  if (!d || d->type != CUDNN_BACKEND_TENSOR_DESCRIPTOR) unsupported(std::string("no tensor for ") + role);
  TensorInfo t;
  t.uid = d->get<int64_t>(CUDNN_ATTR_TENSOR_UNIQUE_ID);
  t.type = d->get<cudnnDataType_t>(CUDNN_ATTR_TENSOR_DATA_TYPE);
  t.dims = d->all<int64_t>(CUDNN_ATTR_TENSOR_DIMENSIONS);
  t.strides = d->all<int64_t>(CUDNN_ATTR_TENSOR_STRIDES);
  t.is_virtual = d->get_or<bool>(CUDNN_ATTR_TENSOR_IS_VIRTUAL, false);
  t.by_value = d->get_or<bool>(CUDNN_ATTR_TENSOR_IS_BY_VALUE, false);
  if (d->has(CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC)) unsupported("ragged tensors");
  if (d->get_or<int64_t>(CUDNN_ATTR_TENSOR_VECTOR_COUNT, 1) != 1) unsupported("vectorized tensors");
  if (t.dims.empty() || t.dims.size() != t.strides.size()) unsupported("tensor " + std::to_string(t.uid) + " shape");
  for (int64_t x : t.dims)
    if (x < 1) unsupported("tensor " + std::to_string(t.uid) + " has dimensions " + dims_str(t.dims));
  switch (t.type) {
    case CUDNN_DATA_FLOAT:
    case CUDNN_DATA_DOUBLE:
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16:
    case CUDNN_DATA_INT32:
    case CUDNN_DATA_INT64:
    case CUDNN_DATA_BOOLEAN:
      break;
    default:
      unsupported("tensor " + std::to_string(t.uid) + " data type " + std::to_string(int(t.type)));
  }
  if (t.type == CUDNN_DATA_BOOLEAN && !t.is_virtual) unsupported("a boolean tensor in memory");
  return t;
}

size_t type_size(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_DOUBLE:
    case CUDNN_DATA_INT64:
      return 8;
    case CUDNN_DATA_HALF:
    case CUDNN_DATA_BFLOAT16:
      return 2;
    case CUDNN_DATA_BOOLEAN:
      return 1;
    default:
      return 4;
  }
}

// v as a tensor of type t holds it.
double rounded(cudnnDataType_t t, double v) {
  switch (t) {
    case CUDNN_DATA_DOUBLE:
      return v;
    case CUDNN_DATA_BOOLEAN:
      return v != 0 ? 1 : 0;
    case CUDNN_DATA_INT32:
    case CUDNN_DATA_INT64:
      return std::trunc(v);
    default: {
      unsigned char buf[8];
      store(t, buf, 0, v);
      return load(t, buf, 0);
    }
  }
}

// A tensor's value: its elements in row-major order of its dimensions.
struct Dense {
  std::vector<int64_t> dims;
  std::vector<double> v;
};

// Calls f(coord) for every coordinate of dims in row-major order.
void for_each_coord(const std::vector<int64_t>& dims, const std::function<void(const std::vector<int64_t>&)>& f) {
  std::vector<int64_t> c(dims.size(), 0);
  const int64_t n = numel(dims);
  for (int64_t i = 0; i < n; ++i) {
    f(c);
    for (size_t d = dims.size(); d-- > 0;) {
      if (++c[d] < dims[d]) break;
      c[d] = 0;
    }
  }
}

int64_t offset_of(const std::vector<int64_t>& c, const std::vector<int64_t>& strides) {
  int64_t o = 0;
  for (size_t d = 0; d < c.size(); ++d) o += c[d] * strides[d];
  return o;
}

// Where each element of `out`-shaped iteration reads an input of dims `in`: the input's row-major
// strides, 0 where the input is broadcast.
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                                       const char* what) {
  if (in.size() != out.size()) unsupported(std::string(what) + ": rank " + dims_str(in) + " vs " + dims_str(out));
  std::vector<int64_t> st(in.size(), 0);
  int64_t s = 1;
  for (size_t d = in.size(); d-- > 0;) {
    if (in[d] != out[d] && in[d] != 1)
      unsupported(std::string(what) + ": " + dims_str(in) + " does not broadcast to " + dims_str(out));
    st[d] = in[d] == 1 ? 0 : s;
    s *= in[d];
  }
  return st;
}

enum class Kind { Pointwise, Matmul, Reduction, Reshape, SdpaForward };

struct Op {
  Kind kind;
  std::vector<TensorInfo> in;  // in the order the kind's evaluation reads them
  std::vector<TensorInfo> out;
  cudnnPointwiseMode_t mode = CUDNN_POINTWISE_IDENTITY;
  int64_t axis = 0;
  cudnnReduceTensorOp_t reduce = CUDNN_REDUCE_TENSOR_ADD;
  bool has_stats = false, has_scale = false;
};

int pointwise_arity(cudnnPointwiseMode_t m) {
  switch (m) {
    case CUDNN_POINTWISE_EXP:
    case CUDNN_POINTWISE_LOG:
    case CUDNN_POINTWISE_NEG:
    case CUDNN_POINTWISE_ABS:
    case CUDNN_POINTWISE_SQRT:
    case CUDNN_POINTWISE_RSQRT:
    case CUDNN_POINTWISE_RECIPROCAL:
    case CUDNN_POINTWISE_IDENTITY:
    case CUDNN_POINTWISE_TANH_FWD:
    case CUDNN_POINTWISE_SIGMOID_FWD:
    case CUDNN_POINTWISE_LOGICAL_NOT:
    case CUDNN_POINTWISE_GEN_INDEX:
      return 1;
    case CUDNN_POINTWISE_ADD:
    case CUDNN_POINTWISE_SUB:
    case CUDNN_POINTWISE_MUL:
    case CUDNN_POINTWISE_DIV:
    case CUDNN_POINTWISE_MAX:
    case CUDNN_POINTWISE_MIN:
    case CUDNN_POINTWISE_POW:
    case CUDNN_POINTWISE_CMP_EQ:
    case CUDNN_POINTWISE_CMP_NEQ:
    case CUDNN_POINTWISE_CMP_GT:
    case CUDNN_POINTWISE_CMP_GE:
    case CUDNN_POINTWISE_CMP_LT:
    case CUDNN_POINTWISE_CMP_LE:
    case CUDNN_POINTWISE_LOGICAL_AND:
    case CUDNN_POINTWISE_LOGICAL_OR:
      return 2;
    case CUDNN_POINTWISE_BINARY_SELECT:
      return 3;
    default:
      return 0;  // not emulated
  }
}

double pointwise(cudnnPointwiseMode_t m, double x, double b, double t) {
  switch (m) {
    case CUDNN_POINTWISE_EXP:
      return std::exp(x);
    case CUDNN_POINTWISE_LOG:
      return std::log(x);
    case CUDNN_POINTWISE_NEG:
      return -x;
    case CUDNN_POINTWISE_ABS:
      return std::fabs(x);
    case CUDNN_POINTWISE_SQRT:
      return std::sqrt(x);
    case CUDNN_POINTWISE_RSQRT:
      return 1 / std::sqrt(x);
    case CUDNN_POINTWISE_RECIPROCAL:
      return 1 / x;
    case CUDNN_POINTWISE_IDENTITY:
      return x;
    case CUDNN_POINTWISE_TANH_FWD:
      return std::tanh(x);
    case CUDNN_POINTWISE_SIGMOID_FWD:
      return 1 / (1 + std::exp(-x));
    case CUDNN_POINTWISE_LOGICAL_NOT:
      return x == 0;
    case CUDNN_POINTWISE_ADD:
      return x + b;
    case CUDNN_POINTWISE_SUB:
      return x - b;
    case CUDNN_POINTWISE_MUL:
      return x * b;
    case CUDNN_POINTWISE_DIV:
      return x / b;
    case CUDNN_POINTWISE_MAX:
      return std::max(x, b);
    case CUDNN_POINTWISE_MIN:
      return std::min(x, b);
    case CUDNN_POINTWISE_POW:
      return std::pow(x, b);
    case CUDNN_POINTWISE_CMP_EQ:
      return x == b;
    case CUDNN_POINTWISE_CMP_NEQ:
      return x != b;
    case CUDNN_POINTWISE_CMP_GT:
      return x > b;
    case CUDNN_POINTWISE_CMP_GE:
      return x >= b;
    case CUDNN_POINTWISE_CMP_LT:
      return x < b;
    case CUDNN_POINTWISE_CMP_LE:
      return x <= b;
    case CUDNN_POINTWISE_LOGICAL_AND:
      return x != 0 && b != 0;
    case CUDNN_POINTWISE_LOGICAL_OR:
      return x != 0 || b != 0;
    case CUDNN_POINTWISE_BINARY_SELECT:
      return t != 0 ? x : b;
    default:
      unsupported("pointwise mode " + std::to_string(int(m)));
  }
}

// A scaling attribute (alpha1/alpha2) that must be 1: the emulation has no use for others yet.
void require_unit_alpha(const Desc& op, cudnnBackendAttributeName_t name) {
  auto it = op.attrs.find(name);
  if (it == op.attrs.end()) return;
  double a = 1;
  if (it->second.type == CUDNN_TYPE_FLOAT) a = op.get<float>(name);
  if (it->second.type == CUDNN_TYPE_DOUBLE) a = op.get<double>(name);
  if (a != 1) unsupported("a pointwise alpha other than 1");
}

Op describe(const DescPtr& d) {
  Op op;
  switch (d->type) {
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR: {
      op.kind = Kind::Pointwise;
      const DescPtr pw = d->desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR);
      if (!pw) unsupported("pointwise operation without its descriptor");
      op.mode = pw->get<cudnnPointwiseMode_t>(CUDNN_ATTR_POINTWISE_MODE);
      const int arity = pointwise_arity(op.mode);
      if (arity == 0) unsupported("pointwise mode " + std::to_string(int(op.mode)));
      if (op.mode == CUDNN_POINTWISE_GEN_INDEX) op.axis = pw->get<int64_t>(CUDNN_ATTR_POINTWISE_AXIS);
      if (d->has(CUDNN_ATTR_OPERATION_POINTWISE_DXDESC) || d->has(CUDNN_ATTR_OPERATION_POINTWISE_DYDESC))
        unsupported("backward pointwise modes");
      require_unit_alpha(*d, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1);
      require_unit_alpha(*d, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2);
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC), "pointwise x"));
      if (arity >= 2) op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC), "pointwise b"));
      if (arity >= 3) op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC), "pointwise t"));
      op.out.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC), "pointwise y"));
      const auto& y = op.out[0].dims;
      if (op.mode == CUDNN_POINTWISE_GEN_INDEX && (op.axis < 0 || op.axis >= int64_t(y.size())))
        unsupported("GEN_INDEX axis " + std::to_string(op.axis));
      for (const TensorInfo& t : op.in) broadcast_strides(t.dims, y, "pointwise input");
      break;
    }
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR: {
      op.kind = Kind::Matmul;
      for (auto a : {CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC,
                     CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC})
        if (d->desc(a)) unsupported("matmul with M/N/K overrides");
      const DescPtr md = d->desc(CUDNN_ATTR_OPERATION_MATMUL_DESC);
      if (md && md->has(CUDNN_ATTR_MATMUL_PADDING_VALUE)) unsupported("matmul with a padding value");
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC), "matmul A"));
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC), "matmul B"));
      op.out.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC), "matmul C"));
      const auto &a = op.in[0].dims, &b = op.in[1].dims, &c = op.out[0].dims;
      const size_t r = c.size();
      if (r < 2 || a.size() != r || b.size() != r || a[r - 2] != c[r - 2] || b[r - 1] != c[r - 1] ||
          a[r - 1] != b[r - 2])
        unsupported("matmul " + dims_str(a) + " x " + dims_str(b) + " -> " + dims_str(c));
      for (size_t i = 0; i + 2 < r; ++i)
        if (c[i] % a[i] != 0 || c[i] % b[i] != 0)
          unsupported("matmul batch " + dims_str(a) + " x " + dims_str(b) + " -> " + dims_str(c));
      break;
    }
    case CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR: {
      op.kind = Kind::Reduction;
      const DescPtr rd = d->desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC);
      if (!rd) unsupported("reduction without its descriptor");
      op.reduce = rd->get<cudnnReduceTensorOp_t>(CUDNN_ATTR_REDUCTION_OPERATOR);
      switch (op.reduce) {
        case CUDNN_REDUCE_TENSOR_ADD:
        case CUDNN_REDUCE_TENSOR_MUL:
        case CUDNN_REDUCE_TENSOR_MIN:
        case CUDNN_REDUCE_TENSOR_MAX:
        case CUDNN_REDUCE_TENSOR_AMAX:
        case CUDNN_REDUCE_TENSOR_AVG:
          break;
        default:
          unsupported("reduction operator " + std::to_string(int(op.reduce)));
      }
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC), "reduction x"));
      op.out.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC), "reduction y"));
      broadcast_strides(op.out[0].dims, op.in[0].dims, "reduction output");
      break;
    }
    case CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR: {
      op.kind = Kind::Reshape;
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC), "reshape x"));
      op.out.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC), "reshape y"));
      if (numel(op.in[0].dims) != numel(op.out[0].dims))
        unsupported("reshape " + dims_str(op.in[0].dims) + " -> " + dims_str(op.out[0].dims));
      break;
    }
    case CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR: {
      op.kind = Kind::SdpaForward;
      for (const auto& [name, value] : d->attrs) {
        switch (name) {
          case CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC:
          case CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC:
          case CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC:
          case CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC:
          case CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC:
          case CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC:
            break;
          default:
            unsupported("fused SDPA forward attribute " + std::to_string(int(name)));
        }
      }
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC), "SDPA Q"));
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC), "SDPA K"));
      op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC), "SDPA V"));
      op.has_scale = d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC) != nullptr;
      if (op.has_scale) op.in.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC), "SDPA scale"));
      op.out.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC), "SDPA O"));
      op.has_stats = d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC) != nullptr;
      if (op.has_stats) op.out.push_back(tensor_info(d->desc(CUDNN_ATTR_OPERATION_SDPA_FWD_STATSDESC), "SDPA stats"));
      const auto &q = op.in[0].dims, &k = op.in[1].dims, &v = op.in[2].dims, &o = op.out[0].dims;
      if (q.size() != 4 || k.size() != 4 || v.size() != 4 || o.size() != 4 || k[0] != q[0] || v[0] != q[0] ||
          k[1] != q[1] || v[1] != q[1] || k[3] != q[3] || v[2] != k[2] ||
          o != std::vector<int64_t>{q[0], q[1], q[2], v[3]})
        unsupported("fused SDPA Q " + dims_str(q) + " K " + dims_str(k) + " V " + dims_str(v) + " O " + dims_str(o));
      if (op.has_stats && op.out[1].dims != std::vector<int64_t>{q[0], q[1], q[2], 1})
        unsupported("fused SDPA stats " + dims_str(op.out[1].dims));
      if (op.has_scale && numel(op.in[3].dims) != 1) unsupported("fused SDPA scale is not a scalar");
      break;
    }
    default:
      unsupported("operation descriptor type " + std::to_string(int(d->type)));
  }
  for (const TensorInfo& t : op.out)
    if (t.by_value) unsupported("an output passed by value");
  return op;
}

// The operations of a graph in an order where each runs after the operations producing its inputs.
std::vector<Op> schedule(const Desc& graph) {
  std::vector<Op> ops;
  for (const DescPtr& d : graph.descs(CUDNN_ATTR_OPERATIONGRAPH_OPS)) ops.push_back(describe(d));
  if (ops.empty()) unsupported("an empty operation graph");
  std::set<int64_t> produced_by_some_op, done;
  for (const Op& op : ops)
    for (const TensorInfo& t : op.out)
      if (!produced_by_some_op.insert(t.uid).second) unsupported("tensor " + std::to_string(t.uid) + " written twice");
  std::vector<Op> order;
  std::vector<bool> placed(ops.size(), false);
  while (order.size() < ops.size()) {
    bool progress = false;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (placed[i]) continue;
      bool ready = true;
      for (const TensorInfo& t : ops[i].in) ready = ready && (!produced_by_some_op.count(t.uid) || done.count(t.uid));
      if (!ready) continue;
      placed[i] = progress = true;
      for (const TensorInfo& t : ops[i].out) done.insert(t.uid);
      order.push_back(ops[i]);
    }
    if (!progress) unsupported("a cycle in the operation graph");
  }
  for (const Op& op : order)
    for (const TensorInfo& t : op.in)
      if (t.is_virtual && !produced_by_some_op.count(t.uid))
        unsupported("virtual tensor " + std::to_string(t.uid) + " is read but never written");
  return order;
}

// One execution: tensor values by uid, loaded from memory on first use.
class Run {
 public:
  explicit Run(const std::map<int64_t, void*>& pointers) : pointers_(pointers) {}

  const Dense& read(const TensorInfo& t) {
    auto it = values_.find(t.uid);
    if (it != values_.end()) return it->second;
    Dense d{t.dims, std::vector<double>(size_t(numel(t.dims)))};
    const void* p = pointer(t);
    size_t i = 0;
    for_each_coord(t.dims, [&](const std::vector<int64_t>& c) { d.v[i++] = load(t.type, p, offset_of(c, t.strides)); });
    return values_[t.uid] = std::move(d);
  }

  void write(const TensorInfo& t, Dense d) {
    if (d.dims != t.dims)
      unsupported("tensor " + std::to_string(t.uid) + " written with dimensions " + dims_str(d.dims));
    for (double& x : d.v) x = rounded(t.type, x);
    if (!t.is_virtual) {
      void* p = pointer(t);
      size_t i = 0;
      for_each_coord(t.dims,
                     [&](const std::vector<int64_t>& c) { store(t.type, p, offset_of(c, t.strides), d.v[i++]); });
    }
    values_[t.uid] = std::move(d);
  }

 private:
  // The memory of a non-virtual tensor: a device range covering every element (or the host scalar
  // of a by-value tensor).
  void* pointer(const TensorInfo& t) const {
    if (t.is_virtual) unsupported("virtual tensor " + std::to_string(t.uid) + " read before it is written");
    auto it = pointers_.find(t.uid);
    if (it == pointers_.end() || !it->second)
      unsupported("no pointer in the variant pack for tensor " + std::to_string(t.uid));
    if (t.by_value) {
      if (numel(t.dims) != 1) unsupported("by-value tensor " + std::to_string(t.uid) + " is not a scalar");
      return it->second;
    }
    int64_t last = 0;
    for (size_t d = 0; d < t.dims.size(); ++d) {
      if (t.strides[d] < 0) unsupported("negative strides");
      last += (t.dims[d] - 1) * t.strides[d];
    }
    const size_t bytes = size_t(last + 1) * type_size(t.type);
    if (!is_device_range(it->second, bytes))
      unsupported("tensor " + std::to_string(t.uid) + " (" + dims_str(t.dims) + ", " + std::to_string(bytes) +
                  " bytes) is not inside one device allocation");
    return it->second;
  }

  const std::map<int64_t, void*>& pointers_;
  std::map<int64_t, Dense> values_;
};

Dense run_pointwise(const Op& op, Run& run) {
  const std::vector<int64_t>& y = op.out[0].dims;
  Dense out{y, std::vector<double>(size_t(numel(y)))};
  std::vector<const Dense*> in;
  std::vector<std::vector<int64_t>> bst;
  for (const TensorInfo& t : op.in) {
    in.push_back(&run.read(t));
    bst.push_back(broadcast_strides(t.dims, y, "pointwise input"));
  }
  size_t i = 0;
  for_each_coord(y, [&](const std::vector<int64_t>& c) {
    double a[3] = {0, 0, 0};
    for (size_t k = 0; k < in.size(); ++k) a[k] = in[k]->v[size_t(offset_of(c, bst[k]))];
    out.v[i++] =
        op.mode == CUDNN_POINTWISE_GEN_INDEX ? double(c[size_t(op.axis)]) : pointwise(op.mode, a[0], a[1], a[2]);
  });
  return out;
}

Dense run_matmul(const Op& op, Run& run) {
  const Dense &A = run.read(op.in[0]), &B = run.read(op.in[1]);
  const std::vector<int64_t>& cd = op.out[0].dims;
  const size_t r = cd.size();
  const int64_t M = cd[r - 2], N = cd[r - 1], K = A.dims[r - 1];
  const std::vector<int64_t> batch(cd.begin(), cd.end() - 2);
  Dense C{cd, std::vector<double>(size_t(numel(cd)))};
  int64_t bi = 0;
  auto batch_offset = [&](const std::vector<int64_t>& c, const std::vector<int64_t>& dims) {
    int64_t o = 0;
    for (size_t d = 0; d < c.size(); ++d) o = o * dims[d] + c[d] * dims[d] / batch[d];  // broadcast or grouped
    return o;
  };
  for_each_coord(batch.empty() ? std::vector<int64_t>{1} : batch, [&](const std::vector<int64_t>& c) {
    const std::vector<int64_t> bc = batch.empty() ? std::vector<int64_t>{} : c;
    const double* a = A.v.data() + batch_offset(bc, A.dims) * M * K;
    const double* b = B.v.data() + batch_offset(bc, B.dims) * K * N;
    double* out = C.v.data() + bi++ * M * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        const double am = a[m * K + k];
        for (int64_t n = 0; n < N; ++n) out[m * N + n] += am * b[k * N + n];
      }
  });
  return C;
}

Dense run_reduction(const Op& op, Run& run) {
  const Dense& x = run.read(op.in[0]);
  const std::vector<int64_t>& y = op.out[0].dims;
  const std::vector<int64_t> yst = broadcast_strides(y, x.dims, "reduction output");
  const double start = op.reduce == CUDNN_REDUCE_TENSOR_MUL   ? 1
                       : op.reduce == CUDNN_REDUCE_TENSOR_MIN ? std::numeric_limits<double>::infinity()
                       : op.reduce == CUDNN_REDUCE_TENSOR_MAX ? -std::numeric_limits<double>::infinity()
                                                              : 0;
  Dense out{y, std::vector<double>(size_t(numel(y)), start)};
  size_t i = 0;
  for_each_coord(x.dims, [&](const std::vector<int64_t>& c) {
    double& acc = out.v[size_t(offset_of(c, yst))];
    const double v = x.v[i++];
    switch (op.reduce) {
      case CUDNN_REDUCE_TENSOR_MUL:
        acc *= v;
        break;
      case CUDNN_REDUCE_TENSOR_MIN:
        acc = std::min(acc, v);
        break;
      case CUDNN_REDUCE_TENSOR_MAX:
        acc = std::max(acc, v);
        break;
      case CUDNN_REDUCE_TENSOR_AMAX:
        acc = std::max(acc, std::fabs(v));
        break;
      default:
        acc += v;
        break;  // ADD, AVG
    }
  });
  if (op.reduce == CUDNN_REDUCE_TENSOR_AVG)
    for (double& v : out.v) v /= double(numel(x.dims) / numel(y));
  return out;
}

// y is x's memory (x laid out by its strides) read through y's dimensions and strides.
Dense run_reshape(const Op& op, Run& run) {
  const TensorInfo &xi = op.in[0], &yi = op.out[0];
  const Dense& x = run.read(xi);
  int64_t span = 1;
  for (size_t d = 0; d < xi.dims.size(); ++d) span += (xi.dims[d] - 1) * xi.strides[d];
  std::vector<double> memory(size_t(span), std::numeric_limits<double>::quiet_NaN());
  std::vector<bool> written(size_t(span), false);
  size_t i = 0;
  for_each_coord(xi.dims, [&](const std::vector<int64_t>& c) {
    const int64_t o = offset_of(c, xi.strides);
    if (written[size_t(o)]) unsupported("reshape of a tensor whose strides overlap");
    written[size_t(o)] = true;
    memory[size_t(o)] = x.v[i++];
  });
  Dense y{yi.dims, std::vector<double>(size_t(numel(yi.dims)))};
  i = 0;
  for_each_coord(yi.dims, [&](const std::vector<int64_t>& c) {
    const int64_t o = offset_of(c, yi.strides);
    if (o < 0 || o >= span || !written[size_t(o)]) unsupported("reshape reads memory its input does not cover");
    y.v[i++] = memory[size_t(o)];
  });
  return y;
}

// The fused SDPA forward: per batch and head, S = scale Q K^T, P = softmax(S), O = P V (P rounded
// to the I/O type first), stats = max + log(sum exp(S - max)).
void run_sdpa_forward(const Op& op, Run& run) {
  const Dense &Q = run.read(op.in[0]), &K = run.read(op.in[1]), &V = run.read(op.in[2]);
  const double scale = op.has_scale ? run.read(op.in[3]).v[0] : 1.0;
  const int64_t B = Q.dims[0], H = Q.dims[1], Tq = Q.dims[2], D = Q.dims[3], Tk = K.dims[2], Dv = V.dims[3];
  Dense O{op.out[0].dims, std::vector<double>(size_t(B * H * Tq * Dv))};
  Dense stats{{B, H, Tq, 1}, std::vector<double>(size_t(B * H * Tq))};
  std::vector<double> s(static_cast<size_t>(Tk));
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < Tq; ++i) {
      const double* q = Q.v.data() + (bh * Tq + i) * D;
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t j = 0; j < Tk; ++j) {
        const double* k = K.v.data() + (bh * Tk + j) * D;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += q[d] * k[d];
        s[size_t(j)] = scale * dot;
        mx = std::max(mx, s[size_t(j)]);
      }
      for (int64_t j = 0; j < Tk; ++j) sum += std::exp(s[size_t(j)] - mx);
      double* o = O.v.data() + (bh * Tq + i) * Dv;
      for (int64_t j = 0; j < Tk; ++j) {
        const double p = rounded(op.in[0].type, std::exp(s[size_t(j)] - mx) / sum);
        const double* v = V.v.data() + (bh * Tk + j) * Dv;
        for (int64_t d = 0; d < Dv; ++d) o[d] += p * v[d];
      }
      stats.v[size_t(bh * Tq + i)] = mx + std::log(sum);
    }
  run.write(op.out[0], std::move(O));
  if (op.has_stats) run.write(op.out[1], std::move(stats));
}

}  // namespace

std::string graph_unsupported(const Desc& graph) {
  try {
    schedule(graph);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string graph_execute(const Desc& graph, const std::map<int64_t, void*>& pointers) {
  try {
    const std::vector<Op> ops = schedule(graph);
    const DeviceAccess access;
    Run run(pointers);
    for (const Op& op : ops) {
      switch (op.kind) {
        case Kind::Pointwise:
          run.write(op.out[0], run_pointwise(op, run));
          break;
        case Kind::Matmul:
          run.write(op.out[0], run_matmul(op, run));
          break;
        case Kind::Reduction:
          run.write(op.out[0], run_reduction(op, run));
          break;
        case Kind::Reshape:
          run.write(op.out[0], run_reshape(op, run));
          break;
        case Kind::SdpaForward:
          run_sdpa_forward(op, run);
          break;
      }
    }
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace hone::emu::cudnn
