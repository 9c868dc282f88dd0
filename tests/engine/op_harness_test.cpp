#include "op_harness.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"
#include "kernels/philox.h"

namespace hone::test {

Tensor f64(const Tensor& t) { return t.detach().to(DType::F64).contiguous(); }
std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
Tensor from_values(const std::vector<double>& v, const Shape& shape) { return Tensor::from_vector(v, shape); }

const std::vector<OpCase>& all_op_cases() {
  static const std::vector<OpCase> cases = [] {
    std::vector<OpCase> c;
    add_elementwise_cases(c);
    add_reduce_cases(c);
    add_matmul_cases(c);
    add_softmax_cases(c);
    add_norm_cases(c);
    add_loss_cases(c);
    add_embedding_cases(c);
    add_dropout_cases(c);
    add_indexing_cases(c);
    add_attention_cases(c);
    add_view_cases(c);
    add_cnn_cases(c);
    add_fused_cases(c);
    return c;
  }();
  return cases;
}

namespace {

const OpCase& find_case(const std::string& name) {
  for (const OpCase& c : all_op_cases())
    if (c.name == name) return c;
  throw std::logic_error("no op case " + name);
}

// Inputs in float64, deterministic per case and input position.
std::vector<Tensor> make_inputs(const OpCase& c) {
  std::vector<Tensor> out;
  const uint64_t seed = std::hash<std::string>{}(c.name);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const InputSpec& s = c.inputs[i];
    const int64_t n = shape_numel(s.shape);
    std::vector<double> v(n);
    for (int64_t k = 0; k < n; ++k) v[k] = philox::uniform(seed, i * 1000003ull, k);
    if (s.kind == InputSpec::Kind::Float) {
      for (double& x : v) x = s.lo + (s.hi - s.lo) * x;
      out.push_back(Tensor::from_vector(v, s.shape));
    } else if (s.kind == InputSpec::Kind::Index) {
      std::vector<int64_t> ids(n);
      for (int64_t k = 0; k < n; ++k) ids[k] = std::min<int64_t>(int64_t(v[k] * s.hi), int64_t(s.hi) - 1);
      out.push_back(Tensor::from_vector(ids, s.shape));
    } else {
      std::vector<uint8_t> m(n);
      for (int64_t k = 0; k < n; ++k) m[k] = v[k] < s.hi ? 1 : 0;
      out.push_back(Tensor::from_vector(m, s.shape));
    }
  }
  return out;
}

// Float inputs converted to `dtype`; optionally re-laid out as transposed views.
std::vector<Tensor> cast_inputs(const OpCase& c, const std::vector<Tensor>& base, DType dtype,
                                bool noncontiguous, bool requires_grad) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < base.size(); ++i) {
    Tensor t = base[i];
    if (c.inputs[i].kind == InputSpec::Kind::Float) t = t.to(dtype);
    if (noncontiguous && t.dim() >= 2) {
      Shape swapped = t.shape();
      std::swap(swapped[swapped.size() - 1], swapped[swapped.size() - 2]);
      Tensor storage = Tensor::empty(swapped, t.dtype());
      Tensor view = storage.transpose(-1, -2);
      view.copy_(t);
      t = view;
    } else {
      t = t.clone();
    }
    if (requires_grad && c.inputs[i].kind == InputSpec::Kind::Float && c.inputs[i].differentiable)
      t.requires_grad_(true);
    out.push_back(t);
  }
  return out;
}

double scale_of(const std::vector<double>& v) {
  double m = 1.0;
  for (double x : v)
    if (std::isfinite(x)) m = std::max(m, std::fabs(x));
  return m;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double atol = tol * scale_of(want);
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
    const bool same_inf = std::isinf(got[i]) && got[i] == want[i];
    if (both_nan || same_inf) continue;
    if (!(std::fabs(got[i] - want[i]) <= atol + tol * std::fabs(want[i]))) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << want[i]
                    << " (tolerance " << atol << ")";
      if (++reported == 5) return;
    }
  }
}

// Weights for the scalar loss sum(out * w) used by the gradient checks.
Tensor loss_weights(const Shape& shape, DType dtype) {
  return Tensor::rand(shape, 4242, -1.0, 1.0, DType::F64).to(dtype);
}

Tensor weighted_loss(const Tensor& out, DType dtype) {
  return ops::sum(ops::mul(out, loss_weights(out.shape(), dtype)));
}

class OpHarness : public ::testing::TestWithParam<std::string> {};

TEST_P(OpHarness, ForwardMatchesReference) {
  const OpCase& c = find_case(GetParam());
  const std::vector<Tensor> base = make_inputs(c);
  for (DType dt : c.dtypes) {
    const std::vector<Tensor> in = cast_inputs(c, base, dt, false, false);
    std::vector<Tensor> in64;
    for (size_t i = 0; i < in.size(); ++i)
      in64.push_back(c.inputs[i].kind == InputSpec::Kind::Float ? f64(in[i]) : in[i]);
    const Tensor want = c.reference(in64);
    const Tensor got = c.forward(in);
    ASSERT_EQ(got.shape(), want.shape()) << c.name << " " << dtype_name(dt);
    if (is_floating(dt) && is_floating(got.dtype())) {
      EXPECT_EQ(got.dtype(), dt) << c.name;
    }
    const double tol = dt == DType::F64 ? 1e-10 : (dt == DType::F32 ? c.tol_f32 : c.tol_half);
    expect_close(values(got), values(want), tol, c.name + " forward " + dtype_name(dt));
  }
}

TEST_P(OpHarness, BackwardMatchesFiniteDifferences) {
  const OpCase& c = find_case(GetParam());
  if (!c.check_grad) return;  // not differentiable
  const std::vector<Tensor> base = make_inputs(c);
  std::vector<Tensor> in = cast_inputs(c, base, DType::F64, false, true);
  const Tensor out = c.forward(in);
  weighted_loss(out, DType::F64).backward();

  NoGradGuard no_grad;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].requires_grad()) continue;
    ASSERT_TRUE(in[i].grad().defined()) << c.name << ": input " << i << " got no gradient";
    ASSERT_EQ(in[i].grad().shape(), in[i].shape()) << c.name << ": gradient shape of input " << i;
    const std::vector<double> analytic = values(in[i].grad());
    const int64_t n = in[i].numel();
    // At most 48 probed elements per input, spread over the tensor (first and last included).
    const int64_t probes = std::min<int64_t>(n, 48);
    for (int64_t p = 0; p < probes; ++p) {
      const int64_t k = probes == 1 ? 0 : p * (n - 1) / (probes - 1);
      std::vector<Tensor> shifted = in;
      auto eval = [&](double delta) {
        std::vector<double> v = values(in[i]);
        v[k] += delta;
        shifted[i] = Tensor::from_vector(v, in[i].shape());
        return weighted_loss(c.forward(shifted), DType::F64).item();
      };
      const double h = 1e-6;
      const double fd = (eval(h) - eval(-h)) / (2 * h);
      EXPECT_NEAR(analytic[k], fd, c.grad_tol * std::max(1.0, std::fabs(fd)))
          << c.name << ": d loss / d input" << i << "[" << k << "]";
    }
  }
}

// The backward in bfloat16 (what autocast runs for matmuls, attention and convolutions) against
// the float32 backward from the same bf16-rounded inputs: each gradient within the case's 16-bit
// tolerance (twice it: the backward rounds at more op boundaries than the forward).
TEST_P(OpHarness, Bf16BackwardTracksFloat32) {
  const OpCase& c = find_case(GetParam());
  if (!c.check_grad || std::find(c.dtypes.begin(), c.dtypes.end(), DType::BF16) == c.dtypes.end()) return;
  const std::vector<Tensor> base = make_inputs(c);
  std::vector<Tensor> in16 = cast_inputs(c, base, DType::BF16, false, true);
  std::vector<Tensor> in32;
  for (size_t i = 0; i < in16.size(); ++i) {
    Tensor t = in16[i].detach();
    if (c.inputs[i].kind == InputSpec::Kind::Float) t = t.to(DType::F32);
    if (in16[i].requires_grad()) t.requires_grad_();
    in32.push_back(t);
  }
  weighted_loss(c.forward(in16), DType::BF16).backward();
  weighted_loss(c.forward(in32), DType::F32).backward();
  for (size_t i = 0; i < in16.size(); ++i) {
    if (!in16[i].requires_grad()) continue;
    ASSERT_TRUE(in16[i].grad().defined()) << c.name << ": input " << i << " got no bfloat16 gradient";
    EXPECT_EQ(in16[i].grad().dtype(), DType::BF16) << c.name << ": gradient of input " << i;
    expect_close(values(in16[i].grad()), values(in32[i].grad()), 2 * c.tol_half,
                 c.name + " bfloat16 gradient of input " + std::to_string(i));
  }
}

TEST_P(OpHarness, NonContiguousInputsGiveTheSameResults) {
  const OpCase& c = find_case(GetParam());
  if (!c.check_noncontiguous) return;
  const std::vector<Tensor> base = make_inputs(c);
  bool any = false;
  for (const Tensor& t : base) any = any || t.dim() >= 2;
  if (!any) return;  // no input of 2+ dims: nothing to re-lay out
  std::vector<Tensor> a = cast_inputs(c, base, DType::F64, false, c.check_grad);
  std::vector<Tensor> b = cast_inputs(c, base, DType::F64, true, c.check_grad);
  const Tensor oa = c.forward(a), ob = c.forward(b);
  expect_close(values(ob), values(oa), 1e-12, c.name + " non-contiguous forward");
  if (!c.check_grad) return;
  weighted_loss(oa, DType::F64).backward();
  weighted_loss(ob, DType::F64).backward();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].requires_grad())
      expect_close(values(b[i].grad()), values(a[i].grad()), 1e-12,
                   c.name + " non-contiguous gradient of input " + std::to_string(i));
}

TEST_P(OpHarness, OneAndTwoThreadsAgreeBitForBit) {
  const OpCase& c = find_case(GetParam());
  const std::vector<Tensor> base = make_inputs(c);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<Tensor> in = cast_inputs(c, base, DType::F32, false, c.check_grad);
    std::vector<std::vector<uint8_t>> bytes;
    const Tensor out = c.forward(in).contiguous();
    auto raw = [](const Tensor& t) {
      const Tensor ct = t.detach().contiguous();
      const uint8_t* p = static_cast<const uint8_t*>(ct.data_ptr());
      return std::vector<uint8_t>(p, p + ct.nbytes());
    };
    bytes.push_back(raw(out));
    if (c.check_grad) {
      weighted_loss(out, DType::F32).backward();
      for (const Tensor& t : in)
        if (t.requires_grad()) bytes.push_back(raw(t.grad()));
    }
    return bytes;
  };
  const int saved = omp_get_max_threads();
  const auto one = run(1);
  const auto two = run(2);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_TRUE(one[i] == two[i]) << c.name << ": result " << i << " differs between 1 and 2 threads";
}

// Registered only when a CUDA device is present (test_main prints one line when it is not).
class OpHarnessCuda : public ::testing::TestWithParam<std::string> {};

// The same inputs on the device; leaves that require grad on the CPU do so on the device too.
std::vector<Tensor> to_cuda(const std::vector<Tensor>& cpu_in) {
  std::vector<Tensor> gpu_in;
  for (const Tensor& t : cpu_in) {
    Tensor g = t.detach().to(Device::cuda());
    if (t.requires_grad()) g.requires_grad_(true);
    gpu_in.push_back(g);
  }
  return gpu_in;
}

TEST_P(OpHarnessCuda, CudaMatchesCpu) {
  const OpCase& c = find_case(GetParam());
  const std::vector<Tensor> base = make_inputs(c);
  const std::vector<Tensor> cpu_in = cast_inputs(c, base, DType::F32, false, false);
  const std::vector<Tensor> gpu_in = to_cuda(cpu_in);
  const Tensor want = c.forward(cpu_in);
  const Tensor got_dev = c.forward(gpu_in);
  EXPECT_TRUE(got_dev.device().is_cuda()) << c.name << ": the result left the device";
  const Tensor got = got_dev.to(Device::cpu());
  expect_close(values(got), values(want), c.tol_f32 * 10, c.name + " CUDA forward");
}

// Backward on the device against the CPU backward: same float32 inputs, same loss weights.
TEST_P(OpHarnessCuda, CudaBackwardMatchesCpu) {
  const OpCase& c = find_case(GetParam());
  if (!c.check_grad) return;
  const std::vector<Tensor> base = make_inputs(c);
  std::vector<Tensor> cpu_in = cast_inputs(c, base, DType::F32, false, true);
  std::vector<Tensor> gpu_in = to_cuda(cpu_in);
  weighted_loss(c.forward(cpu_in), DType::F32).backward();
  const Tensor out = c.forward(gpu_in);
  ops::sum(ops::mul(out, loss_weights(out.shape(), DType::F32).to(out.device()))).backward();
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    ASSERT_TRUE(gpu_in[i].grad().defined()) << c.name << ": input " << i << " got no gradient on CUDA";
    EXPECT_TRUE(gpu_in[i].grad().device().is_cuda()) << c.name << ": gradient of input " << i << " left the device";
    expect_close(values(gpu_in[i].grad()), values(cpu_in[i].grad()), std::max(c.tol_f32 * 10, 1e-4),
                 c.name + " CUDA gradient of input " + std::to_string(i));
  }
}

// bfloat16 backward on the device against the CPU's bfloat16 backward: the 16-bit device paths
// (cuDNN convolutions and attention, cuBLASLt epilogues) that the float32 suites do not reach.
TEST_P(OpHarnessCuda, CudaBf16BackwardMatchesCpu) {
  const OpCase& c = find_case(GetParam());
  if (!c.check_grad || std::find(c.dtypes.begin(), c.dtypes.end(), DType::BF16) == c.dtypes.end()) return;
  const std::vector<Tensor> base = make_inputs(c);
  std::vector<Tensor> cpu_in = cast_inputs(c, base, DType::BF16, false, true);
  std::vector<Tensor> gpu_in = to_cuda(cpu_in);
  weighted_loss(c.forward(cpu_in), DType::BF16).backward();
  const Tensor out = c.forward(gpu_in);
  ops::sum(ops::mul(out, loss_weights(out.shape(), DType::BF16).to(out.device()))).backward();
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    ASSERT_TRUE(gpu_in[i].grad().defined()) << c.name << ": input " << i << " got no bfloat16 gradient on CUDA";
    expect_close(values(gpu_in[i].grad()), values(cpu_in[i].grad()), 2 * c.tol_half,
                 c.name + " CUDA bfloat16 gradient of input " + std::to_string(i));
  }
}

// bfloat16 forward on the device against the CPU's bfloat16 forward (for the cases that list it).
TEST_P(OpHarnessCuda, CudaBf16MatchesCpu) {
  const OpCase& c = find_case(GetParam());
  if (std::find(c.dtypes.begin(), c.dtypes.end(), DType::BF16) == c.dtypes.end()) return;
  const std::vector<Tensor> base = make_inputs(c);
  const std::vector<Tensor> cpu_in = cast_inputs(c, base, DType::BF16, false, false);
  const Tensor want = c.forward(cpu_in);
  const Tensor got = c.forward(to_cuda(cpu_in)).to(Device::cpu());
  ASSERT_EQ(got.dtype(), want.dtype()) << c.name;
  expect_close(values(got), values(want), c.tol_half, c.name + " CUDA bfloat16 forward");
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const OpCase& c : all_op_cases()) names.push_back(c.name);
  return names;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpHarness, ::testing::ValuesIn(case_names()), test_name);
INSTANTIATE_TEST_SUITE_P(Ops, OpHarnessCuda,
                         ::testing::ValuesIn(cuda_available() ? case_names() : std::vector<std::string>{}),
                         test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OpHarnessCuda);

TEST(OpHarnessTable, NamesAreUnique) {
  std::map<std::string, int> seen;
  for (const OpCase& c : all_op_cases()) EXPECT_EQ(++seen[c.name], 1) << "duplicate case " << c.name;
}

}  // namespace
}  // namespace hone::test
